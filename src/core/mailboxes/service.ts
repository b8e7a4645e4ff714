import { and, count, eq, inArray, like, type SQL, sql } from 'drizzle-orm';
import type { Database, Executor } from '../../db/client.js';
import { accounts, domains, messages } from '../../db/schema/index.js';
import { type Actor, mayAccessDomain } from '../actor.js';
import { normalizeAddress } from '../addresses.js';
import { type AuditService, changedFields } from '../audit/service.js';
import {
  checkPasswordPolicy,
  hashPassword,
  hashScheme,
  importPasswordHash,
  type PasswordPolicy,
} from '../auth/passwords.js';
import { defaultQuota, type DomainSettings, findDomain, settingsOf } from '../domains/service.js';
import { publishChange } from '../events/changes.js';
import { releaseBlobs } from '../mailstore/blobs.js';
import { createDefaultFolders } from '../mailstore/folders.js';
import { ConflictError, InvalidError, NotFoundError } from '../errors.js';
import { type Pop3DeleteMode, type Protocols, type QuotaLimits, type Status, withinCeiling } from '../limits.js';
import { decodeCursor, type Page, type PageRequest, toPage } from '../pagination.js';
import { checkRevision, type Revisioned, revisionOf } from '../revisions.js';
import { likePrefix, listOrder } from '../search.js';
import { enabledNow, expireSwitches, MAIL_PROTOCOLS, type ProtocolSwitch, requestedSwitch, type SwitchInput, type SwitchNote, switchOf } from './protocol-switches.js';

export interface MailboxSettings {
  displayName: string | null;
  status: Status;
  protocols: Protocols;
  /** Why each protocol is switched as it is, and until when; whether it is on is in protocols. */
  protocolSwitches: Record<keyof Protocols, SwitchNote>;
  pop3DeleteMode: Pop3DeleteMode;
  quota: QuotaLimits;
}

export interface MailboxView extends Omit<MailboxSettings, 'protocolSwitches'> {
  /** protocols with why and since when each is switched as it is. */
  protocolSwitches: Record<keyof Protocols, ProtocolSwitch>;
  address: string;
  domain: string;
  usage: { storageBytes: number; messages: number };
  lastLogin: { at: string; protocol: string; ip: string | null } | null;
  createdAt: string;
  updatedAt: string;
}

export interface MailboxChange {
  displayName?: string | null;
  status?: Status;
  protocols?: Partial<Record<keyof Protocols, SwitchInput>>;
  pop3DeleteMode?: Pop3DeleteMode;
  quota?: Partial<QuotaLimits>;
}

/** Exactly one of the two: a new password, or a hash exported from another system. */
export interface PasswordInput {
  password?: string;
  passwordHash?: string;
}

export interface MailboxFilter {
  domain?: string;
  q?: string;
  status?: Status;
  /** Only mailboxes with this protocol enabled. */
  protocol?: 'imap' | 'pop3';
}

export type AccountRow = typeof accounts.$inferSelect;

/** Both switches as they stand now, read at one instant. */
function switchesOf(row: AccountRow): Record<keyof Protocols, ProtocolSwitch> {
  const now = Date.now();
  return { imap: switchOf(row, 'imap', now), pop3: switchOf(row, 'pop3', now) };
}

export function settingsOfAccount(row: AccountRow, { imap, pop3 } = switchesOf(row)): MailboxSettings {
  return {
    displayName: row.displayName,
    status: row.status,
    protocols: { imap: imap.enabled, pop3: pop3.enabled },
    protocolSwitches: { imap: { reason: imap.reason, until: imap.until }, pop3: { reason: pop3.reason, until: pop3.until } },
    pop3DeleteMode: row.pop3DeleteMode,
    quota: { storageBytes: row.quotaBytes, messages: row.quotaMessages },
  };
}

export function view(row: AccountRow): MailboxView {
  const switches = switchesOf(row);
  return {
    address: row.address,
    domain: row.address.slice(row.address.lastIndexOf('@') + 1),
    ...settingsOfAccount(row, switches),
    protocolSwitches: switches,
    usage: { storageBytes: row.usedBytes, messages: row.usedMessages },
    lastLogin:
      row.lastLoginAt && row.lastLoginProtocol
        ? { at: row.lastLoginAt.toISOString(), protocol: row.lastLoginProtocol, ip: row.lastLoginIp }
        : null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** What a new mailbox of the domain starts from, before the request's own fields. */
export function newMailboxSettings(domainSettings: DomainSettings): MailboxSettings {
  return {
    displayName: null,
    status: 'active',
    protocols: domainSettings.defaults.protocols,
    protocolSwitches: { imap: { reason: null, until: null }, pop3: { reason: null, until: null } },
    pop3DeleteMode: domainSettings.defaults.pop3DeleteMode,
    quota: defaultQuota(domainSettings),
  };
}

export function merge(current: MailboxSettings, change: MailboxChange): MailboxSettings {
  const protocols = { ...current.protocols };
  const protocolSwitches = { ...current.protocolSwitches };
  for (const protocol of MAIL_PROTOCOLS) {
    const input = change.protocols?.[protocol];
    if (input === undefined) continue;
    const { enabled, ...note } = requestedSwitch(protocol, input);
    protocols[protocol] = enabled;
    protocolSwitches[protocol] = note;
  }
  return {
    displayName: change.displayName === undefined ? current.displayName : change.displayName,
    status: change.status ?? current.status,
    protocols,
    protocolSwitches,
    pop3DeleteMode: change.pop3DeleteMode ?? current.pop3DeleteMode,
    quota: { ...current.quota, ...change.quota },
  };
}

export function columns(settings: MailboxSettings) {
  return {
    displayName: settings.displayName,
    status: settings.status,
    imapEnabled: settings.protocols.imap,
    imapReason: settings.protocolSwitches.imap.reason,
    imapUntil: dateOrNull(settings.protocolSwitches.imap.until),
    pop3Enabled: settings.protocols.pop3,
    pop3Reason: settings.protocolSwitches.pop3.reason,
    pop3Until: dateOrNull(settings.protocolSwitches.pop3.until),
    pop3DeleteMode: settings.pop3DeleteMode,
    quotaBytes: settings.quota.storageBytes,
    quotaMessages: settings.quota.messages,
  };
}

const dateOrNull = (iso: string | null) => (iso === null ? null : new Date(iso));

/** The protocols whose switch a change touched: they are stamped with the time of the change. */
function switchedAt(before: MailboxSettings, after: MailboxSettings) {
  const changed = (protocol: keyof Protocols) =>
    before.protocols[protocol] !== after.protocols[protocol] ||
    JSON.stringify(before.protocolSwitches[protocol]) !== JSON.stringify(after.protocolSwitches[protocol]);
  return {
    ...(changed('imap') ? { imapChangedAt: sql`now()` } : {}),
    ...(changed('pop3') ? { pop3ChangedAt: sql`now()` } : {}),
  };
}

/** Every door gets the same answer, whatever its own checks. */
export function checkDisplayName(name: string | null | undefined): void {
  if (typeof name === 'string' && (name.length > 256 || /[\u0000-\u001f\u007f]/.test(name))) {
    throw new InvalidError('invalid_display_name', 'A display name has at most 256 characters and no control characters', {
      field: 'displayName',
    });
  }
}

export function checkQuotaCeiling(quota: QuotaLimits, ceiling: QuotaLimits, domain: string): void {
  if (!withinCeiling(quota, ceiling)) {
    throw new InvalidError('quota_above_domain_limit', `The quota exceeds the largest quota ${domain} allows per mailbox`, {
      field: 'quota',
      maxQuota: ceiling,
    });
  }
}

/** Checks a password or hash to import: what to store is the hash, or the password once hashed. */
export function checkPasswordInput(input: PasswordInput, policy: PasswordPolicy, localPart: string): { hash: string } | { password: string } {
  if ((input.password === undefined) === (input.passwordHash === undefined)) {
    throw new InvalidError('password_required', 'Give exactly one of password or passwordHash', { field: 'password' });
  }
  if (input.passwordHash !== undefined) return { hash: importPasswordHash(input.passwordHash) };
  checkPasswordPolicy(input.password!, policy, localPart);
  return { password: input.password! };
}

/** Hashes outside any transaction: argon2 takes tens of milliseconds on the thread pool. */
async function storedHash(input: PasswordInput, policy: PasswordPolicy, localPart: string): Promise<string> {
  const checked = checkPasswordInput(input, policy, localPart);
  return 'hash' in checked ? checked.hash : hashPassword(checked.password);
}

async function findAccount(tx: Executor, actor: Actor, input: string, lock = false): Promise<AccountRow> {
  const missing = () => new NotFoundError('mailbox_not_found', `There is no mailbox ${input}`);
  let address: string;
  let domain: string;
  try {
    ({ address, domain } = normalizeAddress(input));
  } catch {
    throw missing();
  }
  if (!mayAccessDomain(actor, domain)) throw missing();
  const query = tx.select().from(accounts).where(eq(accounts.address, address));
  const [row] = lock ? await query.for('update') : await query;
  if (!row) throw missing();
  return row;
}

export function createMailboxService(db: Database, audit: AuditService, policy: PasswordPolicy) {
  return {
    async create(input: MailboxChange & PasswordInput & { address: string }, actor: Actor) {
      const { address, localPart, domain: domainName } = normalizeAddress(input.address);
      checkDisplayName(input.displayName);
      // Checked before the slow hashing, so a typo in the domain answers at once.
      await findDomain(db, actor, domainName);
      const passwordHash = await storedHash(input, policy, localPart);
      return db.transaction(async (tx): Promise<Revisioned<MailboxView>> => {
        // The domain row lock serialises creations in one domain, so the mailbox limit holds.
        const domain = await findDomain(tx, actor, domainName, true);
        const domainSettings = settingsOf(domain);
        const settings = merge(newMailboxSettings(domainSettings), input);
        checkQuotaCeiling(settings.quota, domainSettings.limits.maxQuota, domain.name);
        const [existing] = await tx.select({ id: accounts.id }).from(accounts).where(eq(accounts.address, address));
        if (existing) throw new ConflictError('mailbox_exists', `The mailbox ${address} exists already`);
        const maxMailboxes = domainSettings.limits.maxMailboxes;
        if (maxMailboxes !== null) {
          const [{ n } = { n: 0 }] = await tx.select({ n: count() }).from(accounts).where(eq(accounts.domainId, domain.id));
          if (n >= maxMailboxes) {
            throw new ConflictError(
              'domain_mailbox_limit_reached',
              `${domain.name} allows at most ${maxMailboxes} mailboxes and has ${n}`,
              { maxMailboxes },
            );
          }
        }
        const [row] = await tx
          .insert(accounts)
          .values({ domainId: domain.id, address, passwordHash, ...columns(settings) })
          .returning();
        await createDefaultFolders(tx, row!.id);
        await audit.record(tx, actor, {
          action: 'mailbox.create',
          targetType: 'mailbox',
          target: address,
          domain: domain.name,
          after: { address, ...settings, passwordScheme: hashScheme(passwordHash) },
        });
        return { value: view(row!), revision: revisionOf(row!) };
      });
    },

    /** The account behind an address the actor may see, for the mail routes. */
    async find(address: string, actor: Actor): Promise<{ id: number; address: string }> {
      const row = await findAccount(db, actor, address);
      return { id: row.id, address: row.address };
    },

    async get(address: string, actor: Actor): Promise<Revisioned<MailboxView>> {
      const row = await findAccount(db, actor, address);
      return { value: view(row), revision: revisionOf(row) };
    },

    async list(filter: MailboxFilter, page: PageRequest, actor: Actor): Promise<Page<MailboxView>> {
      const domain = filter.domain === undefined ? undefined : await findDomain(db, actor, filter.domain);
      const order = listOrder(accounts.address, filter.q !== undefined);
      const conditions: (SQL | undefined)[] = [
        domain === undefined ? undefined : eq(accounts.domainId, domain.id),
        filter.q === undefined ? undefined : like(accounts.address, likePrefix(filter.q.toLowerCase())),
        filter.status === undefined ? undefined : eq(accounts.status, filter.status),
        filter.protocol === undefined ? undefined : enabledNow(filter.protocol),
        page.cursor === undefined ? undefined : order.after(decodeCursor<string>(page.cursor, 'string')),
        actor.domains === null
          ? undefined
          : inArray(
              accounts.domainId,
              db.select({ id: domains.id }).from(domains).where(inArray(domains.name, [...actor.domains])),
            ),
      ];
      const rows = await db
        .select()
        .from(accounts)
        .where(and(...conditions))
        .orderBy(order.order)
        .limit(page.limit + 1);
      return toPage(rows, page.limit, (row) => row.address, view);
    },

    async update(address: string, change: MailboxChange, actor: Actor, expectedRevision?: readonly string[]) {
      checkDisplayName(change.displayName);
      return db.transaction(async (tx): Promise<Revisioned<MailboxView>> => {
        let row = await findAccount(tx, actor, address, true);
        checkRevision(row, expectedRevision);
        // A switch past its end is stored flipped first, audited as the sweep would, so this change starts from it.
        const ended = [row.imapUntil, row.pop3Until].some((until) => until !== null && until.getTime() <= Date.now());
        if (ended && (await expireSwitches(tx, audit, row.id)) > 0) row = await findAccount(tx, actor, address);
        const before = settingsOfAccount(row);
        const after = merge(before, change);
        const diff = changedFields(before, after);
        if (Object.keys(diff.after).length === 0) return { value: view(row), revision: revisionOf(row) };
        const domain = await findDomain(tx, actor, view(row).domain);
        if (diff.after.quota) checkQuotaCeiling(after.quota, settingsOf(domain).limits.maxQuota, domain.name);
        const [updated] = await tx
          .update(accounts)
          .set({ ...columns(after), ...switchedAt(before, after), version: sql`${accounts.version} + 1`, updatedAt: sql`now()` })
          .where(eq(accounts.id, row.id))
          .returning();
        await audit.record(tx, actor, {
          action: 'mailbox.update',
          targetType: 'mailbox',
          target: row.address,
          domain: domain.name,
          ...diff,
        });
        // Live sessions re-check what they may still do; switching a protocol off ends them.
        if (diff.after.protocols) await publishChange(tx, { kind: 'account', accountId: row.id, reason: 'protocols' });
        if (diff.after.status) await publishChange(tx, { kind: 'account', accountId: row.id, reason: 'suspended' });
        return { value: view(updated!), revision: revisionOf(updated!) };
      });
    },

    async setPassword(address: string, input: PasswordInput, actor: Actor): Promise<void> {
      const row = await findAccount(db, actor, address);
      const passwordHash = await storedHash(input, policy, row.address.slice(0, row.address.lastIndexOf('@')));
      await db.transaction(async (tx) => {
        const [updated] = await tx
          .update(accounts)
          .set({
            passwordHash,
            passwordVersion: sql`${accounts.passwordVersion} + 1`,
            passwordChangedAt: sql`now()`,
            version: sql`${accounts.version} + 1`,
            updatedAt: sql`now()`,
          })
          .where(eq(accounts.id, row.id))
          .returning({ passwordVersion: accounts.passwordVersion });
        if (!updated) throw new NotFoundError('mailbox_not_found', `There is no mailbox ${row.address}`);
        await audit.record(tx, actor, {
          action: 'mailbox.password.set',
          targetType: 'mailbox',
          target: row.address,
          domain: view(row).domain,
          after: { passwordVersion: updated.passwordVersion, passwordScheme: hashScheme(passwordHash) },
        });
        await publishChange(tx, { kind: 'account', accountId: row.id, reason: 'password' });
      });
    },

    async delete(address: string, actor: Actor, expectedRevision?: readonly string[]): Promise<void> {
      await db.transaction(async (tx) => {
        const row = await findAccount(tx, actor, address, true);
        checkRevision(row, expectedRevision);
        const stored = await tx.select({ blobHash: messages.blobHash }).from(messages).where(eq(messages.accountId, row.id));
        // The account's folders and messages go with it (cascade); then their bytes, unless shared.
        await tx.delete(accounts).where(eq(accounts.id, row.id));
        await releaseBlobs(tx, stored.map((m) => m.blobHash));
        await publishChange(tx, { kind: 'account', accountId: row.id, reason: 'deleted' });
        await audit.record(tx, actor, {
          action: 'mailbox.delete',
          targetType: 'mailbox',
          target: row.address,
          domain: view(row).domain,
          before: { address: row.address, ...settingsOfAccount(row), usage: view(row).usage },
        });
      });
    },
  };
}

export type MailboxService = ReturnType<typeof createMailboxService>;
