import { eq, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { accounts } from '../../db/schema/index.js';
import { NotFoundError, QuotaExceededError } from '../errors.js';
import { queueEventsFrom, quotaCrossings, quotaLevels } from '../webhooks/events.js';

export interface QuotaState {
  id: number;
  quotaBytes: number | null;
  quotaMessages: number | null;
  usedBytes: number;
  usedMessages: number;
}

const quotaColumns = {
  id: accounts.id,
  quotaBytes: accounts.quotaBytes,
  quotaMessages: accounts.quotaMessages,
  usedBytes: accounts.usedBytes,
  usedMessages: accounts.usedMessages,
};

/**
 * Every change to a mailbox's messages takes this lock first (then folder rows, then blobs), so
 * usage counters move with the messages they count and concurrent stores cannot overshoot.
 */
export async function lockAccount(tx: Executor, accountId: number): Promise<QuotaState> {
  const [row] = await tx.select(quotaColumns).from(accounts).where(eq(accounts.id, accountId)).for('update');
  if (!row) throw new NotFoundError('mailbox_not_found', 'The mailbox no longer exists');
  return row;
}

/** Throws unless `bytes` more in `count` more messages fit; mail already stored is never touched. */
export function checkRoom(state: QuotaState, bytes: number, count: number): void {
  if (state.quotaBytes !== null && state.usedBytes + bytes > state.quotaBytes) {
    throw new QuotaExceededError('The mailbox is full: this message would exceed its storage quota', {
      quota: 'storage',
      limit: state.quotaBytes,
      used: state.usedBytes,
    });
  }
  if (state.quotaMessages !== null && state.usedMessages + count > state.quotaMessages) {
    throw new QuotaExceededError('The mailbox is full: it holds as many messages as its quota allows', {
      quota: 'messages',
      limit: state.quotaMessages,
      used: state.usedMessages,
    });
  }
}

/**
 * Moves the usage counters and the quota levels with them, queueing a webhook event for a quota
 * threshold crossed upwards; the caller holds the account lock. One statement, as in delivery.
 */
export async function adjustUsage(tx: Executor, accountId: number, bytes: number, count: number): Promise<void> {
  if (bytes === 0 && count === 0) return;
  await tx.execute(sql`
    with counted as (
      update accounts a set used_bytes = a.used_bytes + ${bytes}::bigint, used_messages = a.used_messages + ${count}::int,
        ${quotaLevels(sql`a.used_bytes + ${bytes}::bigint`, sql`a.used_messages + ${count}::int`)}
      where a.id = ${accountId}
      returning a.id, a.domain_id, a.address, a.quota_bytes, a.quota_messages, a.used_bytes, a.used_messages
    ),
    usage as (
      -- Read from the snapshot the update started from: the levels before it.
      select d.name as domain, c.address, c.quota_bytes, c.quota_messages, c.used_bytes, c.used_messages,
             a.quota_storage_level as storage_level, a.quota_messages_level as messages_level
      from counted c join accounts a on a.id = c.id join domains d on d.id = c.domain_id
    ),
    crossed as (${quotaCrossings('usage')}),
    ${queueEventsFrom('crossed')}
    select 1`);
}
