import { desc, eq, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { failedLogins } from '../../db/schema/index.js';
import type { MailProtocol } from './login.js';

/** Why a login to an existing mailbox failed, as support reads it. */
export type FailureReason = (typeof failedLogins.$inferSelect)['reason'];

export interface FailedLogin {
  at: string;
  protocol: MailProtocol;
  ip: string;
  reason: FailureReason;
}

/** Failed logins kept per mailbox: enough to see a pattern, bounded whoever keeps trying. */
export const KEPT_FAILED_LOGINS = 20;

/** Stores one failed login and forgets the mailbox's oldest beyond KEPT_FAILED_LOGINS, in one round trip. */
export async function recordFailedLogin(db: Executor, failure: Omit<FailedLogin, 'at'> & { accountId: number }): Promise<void> {
  // The DELETE sees the table as it was before the INSERT, so it keeps KEPT - 1 older rows.
  await db.execute(sql`
    with added as (
      insert into ${failedLogins} (account_id, protocol, ip, reason)
      values (${failure.accountId}, ${failure.protocol}, ${failure.ip}, ${failure.reason})
    )
    delete from ${failedLogins} where ${failedLogins.accountId} = ${failure.accountId} and ${failedLogins.id} <= (
      select ${failedLogins.id} from ${failedLogins} where ${failedLogins.accountId} = ${failure.accountId}
      order by ${failedLogins.id} desc offset ${KEPT_FAILED_LOGINS - 1} limit 1
    )`);
}

/** The mailbox's failed logins, newest first. */
export async function recentFailedLogins(db: Executor, accountId: number): Promise<FailedLogin[]> {
  const rows = await db
    .select()
    .from(failedLogins)
    .where(eq(failedLogins.accountId, accountId))
    .orderBy(desc(failedLogins.id))
    .limit(KEPT_FAILED_LOGINS);
  return rows.map((row) => ({ at: row.at.toISOString(), protocol: row.protocol, ip: row.ip, reason: row.reason }));
}
