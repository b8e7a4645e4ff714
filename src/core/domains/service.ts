import { and, count, eq, inArray, like, type SQL, sql } from 'drizzle-orm';
import type { Database, Executor } from '../../db/client.js';
import { accounts, domains } from '../../db/schema/index.js';
import { type Actor, mayAccessDomain } from '../actor.js';
import { normalizeDomain, unicodeDomain } from '../addresses.js';
import { type AuditService, changedFields } from '../audit/service.js';
import { ConflictError, ForbiddenError, InvalidError, NotFoundError } from '../errors.js';
import { publishDomainAccountsChange } from '../events/changes.js';
import { type Pop3DeleteMode, type Protocols, type QuotaLimits, type Status, withinCeiling } from '../limits.js';
import { decodeCursor, type Page, type PageRequest, toPage } from '../pagination.js';
import { checkRevision, type Revisioned, revisionOf } from '../revisions.js';
import { likePrefix, listOrder } from '../search.js';

export type SuspendedDelivery = 'receive' | 'reject';

export interface DomainSettings {
  status: Status;
  /** Whether the domain's suspended mailboxes still receive mail. */
  suspendedDelivery: SuspendedDelivery;
  defaults: { quota: QuotaLimits; protocols: Protocols; pop3DeleteMode: Pop3DeleteMode };
  limits: { maxMailboxes: number | null; maxQuota: QuotaLimits };
}

export interface DomainView extends DomainSettings {
  name: string;
  unicodeName: string;
  mailboxCount: number;
  createdAt: string;
  updatedAt: string;
}

export interface DomainChange {
  status?: Status;
  suspendedDelivery?: SuspendedDelivery;
  defaults?: { quota?: Partial<QuotaLimits>; protocols?: Partial<Protocols>; pop3DeleteMode?: Pop3DeleteMode };
  limits?: { maxMailboxes?: number | null; maxQuota?: Partial<QuotaLimits> };
}

export interface DomainFilter {
  q?: string;
  status?: Status;
}

export type DomainRow = typeof domains.$inferSelect;

const DEFAULT_SETTINGS: DomainSettings = {
  status: 'active',
  suspendedDelivery: 'receive',
  defaults: {
    quota: { storageBytes: null, messages: null },
    protocols: { imap: true, pop3: true },
    pop3DeleteMode: 'remove',
  },
  limits: { maxMailboxes: null, maxQuota: { storageBytes: null, messages: null } },
};

export function settingsOf(row: DomainRow): DomainSettings {
  return {
    status: row.status,
    suspendedDelivery: row.suspendedDelivery,
    defaults: {
      quota: { storageBytes: row.defaultQuotaBytes, messages: row.defaultQuotaMessages },
      protocols: { imap: row.defaultImap, pop3: row.defaultPop3 },
      pop3DeleteMode: row.defaultPop3DeleteMode,
    },
    limits: {
      maxMailboxes: row.maxMailboxes,
      maxQuota: { storageBytes: row.maxQuotaBytes, messages: row.maxQuotaMessages },
    },
  };
}

function view(row: DomainRow, mailboxCount: number): DomainView {
  return {
    name: row.name,
    unicodeName: unicodeDomain(row.name),
    ...settingsOf(row),
    mailboxCount,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

function merge(current: DomainSettings, change: DomainChange): DomainSettings {
  return {
    status: change.status ?? current.status,
    suspendedDelivery: change.suspendedDelivery ?? current.suspendedDelivery,
    defaults: {
      quota: { ...current.defaults.quota, ...change.defaults?.quota },
      protocols: { ...current.defaults.protocols, ...change.defaults?.protocols },
      pop3DeleteMode: change.defaults?.pop3DeleteMode ?? current.defaults.pop3DeleteMode,
    },
    limits: {
      maxMailboxes:
        change.limits?.maxMailboxes === undefined ? current.limits.maxMailboxes : change.limits.maxMailboxes,
      maxQuota: { ...current.limits.maxQuota, ...change.limits?.maxQuota },
    },
  };
}

/** What a new mailbox gets: the default quota, or the domain's ceiling where the default is unlimited. */
export function defaultQuota({ defaults, limits }: DomainSettings): QuotaLimits {
  return {
    storageBytes: defaults.quota.storageBytes ?? limits.maxQuota.storageBytes,
    messages: defaults.quota.messages ?? limits.maxQuota.messages,
  };
}

/** A default quota beyond the domain's own ceiling would make every new mailbox fail. */
function checkDefaults(settings: DomainSettings): void {
  if (!withinCeiling(defaultQuota(settings), settings.limits.maxQuota)) {
    throw new InvalidError('default_quota_above_limit', 'The default quota exceeds the domain’s largest mailbox quota', {
      field: 'defaults.quota',
    });
  }
}

function columns(settings: DomainSettings) {
  return {
    suspendedDelivery: settings.suspendedDelivery,
    status: settings.status,
    defaultQuotaBytes: settings.defaults.quota.storageBytes,
    defaultQuotaMessages: settings.defaults.quota.messages,
    defaultImap: settings.defaults.protocols.imap,
    defaultPop3: settings.defaults.protocols.pop3,
    defaultPop3DeleteMode: settings.defaults.pop3DeleteMode,
    maxMailboxes: settings.limits.maxMailboxes,
    maxQuotaBytes: settings.limits.maxQuota.storageBytes,
    maxQuotaMessages: settings.limits.maxQuota.messages,
  };
}

async function mailboxCount(tx: Executor, domainId: number): Promise<number> {
  const [row] = await tx.select({ n: count() }).from(accounts).where(eq(accounts.domainId, domainId));
  return row?.n ?? 0;
}

/**
 * Finds a domain the actor may see, optionally locking its row. Domains outside the actor's
 * confinement are reported exactly like missing ones.
 */
export async function findDomain(tx: Executor, actor: Actor, input: string, lock = false): Promise<DomainRow> {
  const name = normalizeDomain(input);
  const query = tx.select().from(domains).where(eq(domains.name, name));
  const [row] = lock ? await query.for('update') : await query;
  if (!row || !mayAccessDomain(actor, name)) {
    throw new NotFoundError('domain_not_found', `There is no domain ${name}`);
  }
  return row;
}

export function createDomainService(db: Database, audit: AuditService) {
  return {
    async create(input: { name: string } & DomainChange, actor: Actor): Promise<Revisioned<DomainView>> {
      const name = normalizeDomain(input.name);
      if (!mayAccessDomain(actor, name)) {
        throw new ForbiddenError('domain_out_of_scope', `This API key is confined to other domains than ${name}`);
      }
      const settings = merge(DEFAULT_SETTINGS, input);
      checkDefaults(settings);
      return db.transaction(async (tx) => {
        const [row] = await tx
          .insert(domains)
          .values({ name, ...columns(settings) })
          .onConflictDoNothing()
          .returning();
        if (!row) throw new ConflictError('domain_exists', `The domain ${name} exists already`);
        const created = view(row, 0);
        await audit.record(tx, actor, {
          action: 'domain.create',
          targetType: 'domain',
          target: name,
          domain: name,
          after: { name, ...settings },
        });
        return { value: created, revision: revisionOf(row) };
      });
    },

    async get(name: string, actor: Actor): Promise<Revisioned<DomainView>> {
      const row = await findDomain(db, actor, name);
      return { value: view(row, await mailboxCount(db, row.id)), revision: revisionOf(row) };
    },

    async list(filter: DomainFilter, page: PageRequest, actor: Actor): Promise<Page<DomainView>> {
      const order = listOrder(domains.name, filter.q !== undefined);
      const conditions: (SQL | undefined)[] = [
        filter.q === undefined ? undefined : like(domains.name, likePrefix(filter.q.toLowerCase())),
        filter.status === undefined ? undefined : eq(domains.status, filter.status),
        page.cursor === undefined ? undefined : order.after(decodeCursor<string>(page.cursor, 'string')),
        actor.domains === null ? undefined : inArray(domains.name, [...actor.domains]),
      ];
      const rows = await db
        .select({
          domain: domains,
          // $count qualifies its columns; a hand-written subquery in a one-table select gets bare
          // names, and a bare "id" there means accounts.id.
          mailboxCount: db.$count(accounts, eq(accounts.domainId, domains.id)),
        })
        .from(domains)
        .where(and(...conditions))
        .orderBy(order.order)
        .limit(page.limit + 1);
      return toPage(rows, page.limit, (row) => row.domain.name, (row) => view(row.domain, row.mailboxCount));
    },

    async update(name: string, change: DomainChange, actor: Actor, expectedRevision?: readonly string[]) {
      return db.transaction(async (tx): Promise<Revisioned<DomainView>> => {
        const row = await findDomain(tx, actor, name, true);
        checkRevision(row, expectedRevision);
        const before = settingsOf(row);
        const after = merge(before, change);
        checkDefaults(after);
        const diff = changedFields(before, after);
        if (Object.keys(diff.after).length === 0) {
          return { value: view(row, await mailboxCount(tx, row.id)), revision: revisionOf(row) };
        }
        const [updated] = await tx
          .update(domains)
          .set({ ...columns(after), version: sql`${domains.version} + 1`, updatedAt: sql`now()` })
          .where(eq(domains.id, row.id))
          .returning();
        // Live sessions re-check their mailbox, which is now suspended with its domain, or free again.
        if (diff.after.status !== undefined) await publishDomainAccountsChange(tx, row.id, 'suspended');
        await audit.record(tx, actor, {
          action: 'domain.update',
          targetType: 'domain',
          target: row.name,
          domain: row.name,
          ...diff,
        });
        return { value: view(updated!, await mailboxCount(tx, row.id)), revision: revisionOf(updated!) };
      });
    },

    /** Refuses while the domain still has mailboxes, so no mail is lost by one request. */
    async delete(name: string, actor: Actor, expectedRevision?: readonly string[]): Promise<void> {
      await db.transaction(async (tx) => {
        const row = await findDomain(tx, actor, name, true);
        checkRevision(row, expectedRevision);
        const mailboxes = await mailboxCount(tx, row.id);
        if (mailboxes > 0) {
          throw new ConflictError('domain_not_empty', `The domain ${row.name} still has ${mailboxes} mailboxes; delete them first`, {
            mailboxCount: mailboxes,
          });
        }
        await tx.delete(domains).where(eq(domains.id, row.id));
        await audit.record(tx, actor, {
          action: 'domain.delete',
          targetType: 'domain',
          target: row.name,
          domain: row.name,
          before: { name: row.name, ...settingsOf(row) },
        });
      });
    },
  };
}

export type DomainService = ReturnType<typeof createDomainService>;
