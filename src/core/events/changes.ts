import { type SQL, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';

/** The one Postgres notification channel every gateway process listens on. */
export const CHANGE_CHANNEL = 'mailroom_changes';

/** `sessions`: support asked to end the mailbox's live sessions. */
export type AccountChangeReason = 'protocols' | 'suspended' | 'password' | 'deleted' | 'sessions';

/**
 * What changed, never the data itself: a subscriber reads the current state (messages above its
 * MODSEQ, tombstones) so a missed notification costs a catch-up, never a wrong view.
 */
export type Change =
  | { kind: 'messages'; accountId: number; folderId: number; modseq: number }
  | { kind: 'folders'; accountId: number }
  | { kind: 'account'; accountId: number; reason: AccountChangeReason };

/** Queued inside the transaction: Postgres delivers it at commit, and never if it rolls back. */
export async function publishChange(tx: Executor, change: Change): Promise<void> {
  await tx.execute(sql`select pg_notify(${CHANGE_CHANNEL}, ${JSON.stringify(change)})`);
}

/**
 * publishChange's 'account' change for every mailbox of a domain, in one statement: a domain
 * suspended or restored changes what each of its mailboxes may do.
 */
export async function publishDomainAccountsChange(tx: Executor, domainId: number, reason: AccountChangeReason): Promise<void> {
  await tx.execute(sql`select pg_notify(${CHANGE_CHANNEL}, json_build_object('kind', 'account', 'accountId', id, 'reason', ${reason}::text)::text)
    from accounts where domain_id = ${domainId}`);
}

/**
 * publishChange's 'messages' change for every row of the CTE `source` (columns account_id,
 * folder_id, modseq), for statements that change messages in one round trip.
 */
export function notifyMessageChanges(source: string): SQL {
  return sql`select pg_notify(${CHANGE_CHANNEL}, json_build_object(
    'kind', 'messages', 'accountId', account_id, 'folderId', folder_id, 'modseq', modseq)::text)
    from ${sql.identifier(source)}`;
}
