import { eq, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { accounts } from '../../db/schema/index.js';
import { NotFoundError, QuotaExceededError } from '../errors.js';

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

/** Moves the usage counters; the caller holds the account lock. */
export async function adjustUsage(tx: Executor, accountId: number, bytes: number, count: number): Promise<void> {
  if (bytes === 0 && count === 0) return;
  await tx
    .update(accounts)
    .set({ usedBytes: sql`${accounts.usedBytes} + ${bytes}`, usedMessages: sql`${accounts.usedMessages} + ${count}` })
    .where(eq(accounts.id, accountId));
}
