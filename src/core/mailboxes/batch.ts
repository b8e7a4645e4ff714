import { asc, type Column, count, eq, type SQL, sql } from 'drizzle-orm';
import type { Database, Transaction } from '../../db/client.js';
import { accounts, domains, messages } from '../../db/schema/index.js';
import { type Actor, mayAccessDomain } from '../actor.js';
import { normalizeAddress } from '../addresses.js';
import { type AuditEntry, type AuditService, changedFields } from '../audit/service.js';
import { hashPassword, hashScheme, type PasswordPolicy } from '../auth/passwords.js';
import { type DomainRow, settingsOf } from '../domains/service.js';
import { ConflictError, DomainError, InvalidError, NotFoundError } from '../errors.js';
import { type AccountChangeReason, publishChange } from '../events/changes.js';
import { releaseBlobs } from '../mailstore/blobs.js';
import { createDefaultFolders } from '../mailstore/folders.js';
import {
  type AccountRow,
  checkDisplayName,
  checkPasswordInput,
  checkQuotaCeiling,
  columns,
  type MailboxChange,
  type MailboxSettings,
  type MailboxView,
  merge,
  newMailboxSettings,
  type PasswordInput,
  settingsOfAccount,
  view,
} from './service.js';

/** The most operations one batch takes. */
export const MAX_BATCH = 1000;

export type BatchOperation =
  | ({ op: 'create'; address: string } & MailboxChange & PasswordInput)
  | ({ op: 'update'; address: string } & MailboxChange & PasswordInput)
  | { op: 'delete'; address: string };

export type BatchOutcome =
  /** mailbox: the result, or null in a dry run or a batch not applied. */
  | { status: 'created' | 'updated' | 'unchanged'; mailbox: MailboxView | null }
  | { status: 'deleted' }
  | { status: 'failed'; error: DomainError };

export interface BatchResult {
  /** False for a dry run, and for an atomic batch with a failure: nothing was changed. */
  applied: boolean;
  /** One per operation, in their order. */
  outcomes: BatchOutcome[];
}

export interface BatchOptions {
  dryRun: boolean;
  /** All or nothing; otherwise each operation stands alone. */
  atomic: boolean;
}

/** An operation that passed the checks needing no database, and what they found. */
interface Checked {
  index: number;
  operation: BatchOperation;
  address: string;
  domain: string;
  /** What to store once hashed: a plain password (hashed before the transaction) or an imported hash. */
  password: { hash: string } | { password: string } | null;
}

/** What the transaction writes for one operation. */
type Planned =
  | { kind: 'create'; checked: Checked; domain: DomainRow; settings: MailboxSettings }
  | { kind: 'update'; checked: Checked; row: AccountRow; after: MailboxSettings; diff: ReturnType<typeof changedFields<MailboxSettings>> }
  | { kind: 'delete'; checked: Checked; row: AccountRow };

/** Runs fn over items, at most `limit` at a time, answering in the items' order. */
async function mapConcurrently<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** `column = any(array)`: one parameter however long the list (inArray makes one each, slow to build by the thousand). */
function anyOf(column: Column, values: readonly (string | number)[], type: 'text' | 'bigint'): SQL {
  return sql`${column} = any(${sql.param(values)}::${sql.raw(type)}[])`;
}

/** A failure that is no DomainError (a database fault) throws out of the whole batch. */
function asFailure(error: unknown): BatchOutcome {
  if (error instanceof DomainError) return { status: 'failed', error };
  throw error;
}

/**
 * Many mailbox creations, changes and deletions in one request, each judged as the single
 * operations judge it and reported on its own. Passwords are hashed before the transaction,
 * `hashConcurrency` at a time on libuv's thread pool (argon2 is the cost of a create); the rows are
 * then written in a few statements in one transaction, after every operation was checked under
 * the locks, so a failing operation never undoes the others (unless the batch is atomic).
 */
export function createMailboxBatch(db: Database, audit: AuditService, policy: PasswordPolicy, hashConcurrency: number) {
  /** The checks that need no database, in order; a mailbox named twice fails the second time. */
  function precheck(operations: readonly BatchOperation[], outcomes: (BatchOutcome | null)[]): Checked[] {
    const seen = new Set<string>();
    const checked: Checked[] = [];
    operations.forEach((operation, index) => {
      try {
        const { address, localPart, domain } = normalizeAddress(operation.address);
        if (seen.has(address)) {
          throw new InvalidError('duplicate_address', `${address} is named by an earlier operation of this batch; one operation per mailbox`, {
            field: 'address',
          });
        }
        seen.add(address);
        let password: Checked['password'] = null;
        if (operation.op !== 'delete') {
          checkDisplayName(operation.displayName);
          if (operation.op === 'create' || operation.password !== undefined || operation.passwordHash !== undefined) {
            password = checkPasswordInput(operation, policy, localPart);
          }
        }
        checked.push({ index, operation, address, domain, password });
      } catch (error) {
        outcomes[index] = asFailure(error);
      }
    });
    return checked;
  }

  /** Judges each operation against the rows as they are under the locks, in the batch's order. */
  async function plan(tx: Transaction, checked: readonly Checked[], actor: Actor, outcomes: (BatchOutcome | null)[]): Promise<Planned[]> {
    const domainNames = [...new Set(checked.map((c) => c.domain))].filter((name) => mayAccessDomain(actor, name));
    // Locked (in id order, as every writer takes them) so the mailbox limits hold against creations elsewhere.
    const domainRows =
      domainNames.length === 0
        ? []
        : await tx.select().from(domains).where(anyOf(domains.name, domainNames, 'text')).orderBy(asc(domains.id)).for('update');
    const domainByName = new Map(domainRows.map((row) => [row.name, row]));
    const addresses = checked.filter((c) => domainByName.has(c.domain)).map((c) => c.address);
    const accountRows =
      addresses.length === 0
        ? []
        : await tx.select().from(accounts).where(anyOf(accounts.address, addresses, 'text')).orderBy(asc(accounts.id)).for('update');
    const accountByAddress = new Map(accountRows.map((row) => [row.address, row]));
    const limited = domainRows.filter((row) => row.maxMailboxes !== null).map((row) => row.id);
    const counts = new Map(
      limited.length === 0
        ? []
        : (
            await tx
              .select({ domainId: accounts.domainId, n: count() })
              .from(accounts)
              .where(anyOf(accounts.domainId, limited, 'bigint'))
              .groupBy(accounts.domainId)
          ).map((row) => [row.domainId, row.n]),
    );

    const planned: Planned[] = [];
    for (const c of checked) {
      try {
        const domain = domainByName.get(c.domain);
        const row = accountByAddress.get(c.address);
        const { operation } = c;
        if (operation.op === 'create') {
          if (!domain) throw new NotFoundError('domain_not_found', `There is no domain ${c.domain}`);
          const domainSettings = settingsOf(domain);
          const settings = merge(newMailboxSettings(domainSettings), operation);
          checkQuotaCeiling(settings.quota, domainSettings.limits.maxQuota, domain.name);
          if (row) throw new ConflictError('mailbox_exists', `The mailbox ${c.address} exists already`);
          const n = counts.get(domain.id) ?? 0;
          if (domain.maxMailboxes !== null && n >= domain.maxMailboxes) {
            throw new ConflictError(
              'domain_mailbox_limit_reached',
              `${domain.name} allows at most ${domain.maxMailboxes} mailboxes and has ${n}`,
              { maxMailboxes: domain.maxMailboxes },
            );
          }
          counts.set(domain.id, n + 1);
          planned.push({ kind: 'create', checked: c, domain, settings });
        } else {
          if (!domain || !row) throw new NotFoundError('mailbox_not_found', `There is no mailbox ${operation.address}`);
          if (operation.op === 'delete') {
            counts.set(domain.id, (counts.get(domain.id) ?? 0) - 1);
            planned.push({ kind: 'delete', checked: c, row });
          } else {
            const before = settingsOfAccount(row);
            const after = merge(before, operation);
            const diff = changedFields(before, after);
            if (diff.after.quota) checkQuotaCeiling(after.quota, settingsOf(domain).limits.maxQuota, domain.name);
            planned.push({ kind: 'update', checked: c, row, after, diff });
          }
        }
      } catch (error) {
        outcomes[c.index] = asFailure(error);
      }
    }
    return planned;
  }

  /** Writes the plan: a few statements for all the creations, one per change, a few for all the deletions. */
  async function apply(tx: Transaction, planned: readonly Planned[], hashes: Map<number, string>, actor: Actor, outcomes: (BatchOutcome | null)[]) {
    const entries: AuditEntry[] = [];
    const notices: { accountId: number; reason: AccountChangeReason }[] = [];

    const creates = planned.filter((p) => p.kind === 'create');
    if (creates.length > 0) {
      const values = creates.map((p) => {
        const c = columns(p.settings);
        return {
          domain_id: p.domain.id,
          address: p.checked.address,
          password_hash: hashes.get(p.checked.index)!,
          display_name: c.displayName,
          status: c.status,
          imap_enabled: c.imapEnabled,
          pop3_enabled: c.pop3Enabled,
          pop3_delete_mode: c.pop3DeleteMode,
          quota_bytes: c.quotaBytes,
          quota_messages: c.quotaMessages,
        };
      });
      // One JSON parameter: drizzle takes seconds to build a statement of ten thousand.
      await tx.execute(sql`
        insert into accounts (domain_id, address, password_hash, display_name, status, imap_enabled, pop3_enabled,
                              pop3_delete_mode, quota_bytes, quota_messages)
        select * from jsonb_to_recordset(${JSON.stringify(values)}::jsonb) as r(domain_id bigint, address text,
          password_hash text, display_name text, status text, imap_enabled boolean, pop3_enabled boolean,
          pop3_delete_mode text, quota_bytes bigint, quota_messages integer)`);
      const rows = await tx.select().from(accounts).where(anyOf(accounts.address, values.map((v) => v.address), 'text'));
      const byAddress = new Map(rows.map((row) => [row.address, row]));
      await createDefaultFolders(tx, ...rows.map((row) => row.id));
      for (const p of creates) {
        const row = byAddress.get(p.checked.address)!;
        outcomes[p.checked.index] = { status: 'created', mailbox: view(row) };
        entries.push({
          action: 'mailbox.create',
          targetType: 'mailbox',
          target: row.address,
          domain: p.domain.name,
          after: { address: row.address, ...p.settings, passwordScheme: hashScheme(row.passwordHash) },
        });
      }
    }

    for (const p of planned) {
      if (p.kind !== 'update') continue;
      const hash = hashes.get(p.checked.index);
      const settingsChanged = Object.keys(p.diff.after).length > 0;
      if (!settingsChanged && hash === undefined) {
        outcomes[p.checked.index] = { status: 'unchanged', mailbox: view(p.row) };
        continue;
      }
      const password =
        hash === undefined
          ? {}
          : { passwordHash: hash, passwordVersion: sql`${accounts.passwordVersion} + 1`, passwordChangedAt: sql`now()` };
      const [row] = await tx
        .update(accounts)
        .set({ ...columns(p.after), ...password, version: sql`${accounts.version} + 1`, updatedAt: sql`now()` })
        .where(eq(accounts.id, p.row.id))
        .returning();
      outcomes[p.checked.index] = { status: 'updated', mailbox: view(row!) };
      const target = { targetType: 'mailbox' as const, target: row!.address, domain: view(row!).domain };
      if (settingsChanged) entries.push({ action: 'mailbox.update', ...target, ...p.diff });
      if (hash !== undefined) {
        entries.push({ action: 'mailbox.password.set', ...target, after: { passwordVersion: row!.passwordVersion, passwordScheme: hashScheme(hash) } });
        notices.push({ accountId: row!.id, reason: 'password' });
      }
      if (p.diff.after.protocols) notices.push({ accountId: row!.id, reason: 'protocols' });
      if (p.diff.after.status) notices.push({ accountId: row!.id, reason: 'suspended' });
    }

    const deletes = planned.filter((p) => p.kind === 'delete');
    if (deletes.length > 0) {
      const ids = deletes.map((p) => p.row.id);
      const stored = await tx.select({ blobHash: messages.blobHash }).from(messages).where(anyOf(messages.accountId, ids, 'bigint'));
      // Folders and messages go with their accounts (cascade); then their bytes, unless shared.
      await tx.delete(accounts).where(anyOf(accounts.id, ids, 'bigint'));
      await releaseBlobs(tx, stored.map((m) => m.blobHash));
      for (const p of deletes) {
        outcomes[p.checked.index] = { status: 'deleted' };
        const mailbox = view(p.row);
        entries.push({
          action: 'mailbox.delete',
          targetType: 'mailbox',
          target: p.row.address,
          domain: mailbox.domain,
          before: { address: p.row.address, ...settingsOfAccount(p.row), usage: mailbox.usage },
        });
        notices.push({ accountId: p.row.id, reason: 'deleted' });
      }
    }

    for (const notice of notices) await publishChange(tx, { kind: 'account', ...notice });
    await audit.recordMany(tx, actor, entries);
  }

  /** What each planned operation would do, when nothing is written. */
  function foresee(planned: readonly Planned[], hashes: ReadonlySet<number>, outcomes: (BatchOutcome | null)[]): void {
    for (const p of planned) {
      const changes = p.kind === 'update' && (Object.keys(p.diff.after).length > 0 || hashes.has(p.checked.index));
      outcomes[p.checked.index] =
        p.kind === 'create'
          ? { status: 'created', mailbox: null }
          : p.kind === 'delete'
            ? { status: 'deleted' }
            : { status: changes ? 'updated' : 'unchanged', mailbox: null };
    }
  }

  return {
    async run(operations: readonly BatchOperation[], options: BatchOptions, actor: Actor): Promise<BatchResult> {
      if (operations.length > MAX_BATCH) {
        throw new InvalidError('batch_too_large', `A batch takes at most ${MAX_BATCH} operations; this one has ${operations.length}`);
      }
      const outcomes: (BatchOutcome | null)[] = operations.map(() => null);
      const checked = precheck(operations, outcomes);
      const failedEarly = outcomes.some((outcome) => outcome !== null);
      const writes = !options.dryRun && !(options.atomic && failedEarly);
      const hashing = checked.filter((c) => c.password !== null);
      // Hashed before the transaction, which would otherwise hold its locks for as long.
      const hashes = new Map<number, string>(
        writes
          ? await mapConcurrently(hashing, hashConcurrency, async (c) => {
              const password = c.password!;
              return [c.index, 'hash' in password ? password.hash : await hashPassword(password.password)] as const;
            })
          : [],
      );
      const applied = await db.transaction(async (tx) => {
        const planned = await plan(tx, checked, actor, outcomes);
        const failed = outcomes.some((outcome) => outcome !== null && outcome.status === 'failed');
        if (!writes || (options.atomic && failed)) {
          foresee(planned, new Set(hashing.map((c) => c.index)), outcomes);
          return false;
        }
        await apply(tx, planned, hashes, actor, outcomes);
        return true;
      });
      return { applied, outcomes: outcomes as BatchOutcome[] };
    },
  };
}

export type MailboxBatch = ReturnType<typeof createMailboxBatch>;
