import type { Database } from '../../db/client.js';
import type { Actor } from '../actor.js';
import { findDomain, settingsOf } from '../domains/service.js';
import { DomainError } from '../errors.js';
import type { QuotaLimits } from '../limits.js';
import { checkQuotaCeiling, type MailboxService } from './service.js';

type Count = keyof QuotaLimits;
const COUNTS: readonly Count[] = ['storageBytes', 'messages'];

export interface QuotaState {
  /** Usage as a percentage of each limit, to one decimal; null where unlimited. A limit of 0 is full. */
  percentUsed: Record<Count, number | null>;
  /** Whether delivery (and APPEND, COPY, import) is refused: usage has reached a limit. Logins are not. */
  newMailRefused: boolean;
  /** The limits reached. */
  refusedBy: Count[];
}

/** What a quota means for a mailbox with this usage. */
export function quotaState(quota: QuotaLimits, usage: Record<Count, number>): QuotaState {
  const percent = (count: Count) => {
    const limit = quota[count];
    if (limit === null) return null;
    return limit === 0 ? 100 : Math.round((usage[count] * 1000) / limit) / 10;
  };
  // Any new message adds at least one byte and one message, so reaching a limit refuses all.
  const refusedBy = COUNTS.filter((count) => quota[count] !== null && usage[count] >= quota[count]!);
  return { percentUsed: { storageBytes: percent('storageBytes'), messages: percent('messages') }, newMailRefused: refusedBy.length > 0, refusedBy };
}

export interface QuotaPreview extends QuotaState {
  /** The candidate, completed with the current quota where it leaves a count out (as PATCH does). */
  quota: QuotaLimits;
  currentQuota: QuotaLimits;
  usage: Record<Count, number>;
  /** The largest quota the mailbox's domain allows. */
  domainMaxQuota: QuotaLimits;
  /** The error changing the mailbox to this quota would give; null when it would be taken. */
  rejection: DomainError | null;
}

/** "What if the quota were…", answered from the same rules as the change itself; changes nothing. */
export function createQuotaPreview(db: Database, mailboxes: MailboxService) {
  return {
    async preview(address: string, candidate: Partial<QuotaLimits>, actor: Actor): Promise<QuotaPreview> {
      const { value: mailbox } = await mailboxes.get(address, actor);
      const domain = await findDomain(db, actor, mailbox.domain);
      const maxQuota = settingsOf(domain).limits.maxQuota;
      const quota = { ...mailbox.quota, ...candidate };
      let rejection: DomainError | null = null;
      // As update(): an unchanged quota is no change, and is not checked against the domain.
      if (JSON.stringify(quota) !== JSON.stringify(mailbox.quota)) {
        try {
          checkQuotaCeiling(quota, maxQuota, domain.name);
        } catch (error) {
          if (!(error instanceof DomainError)) throw error;
          rejection = error;
        }
      }
      return {
        quota,
        currentQuota: mailbox.quota,
        usage: mailbox.usage,
        ...quotaState(quota, mailbox.usage),
        domainMaxQuota: maxQuota,
        rejection,
      };
    },
  };
}

export type QuotaPreviewService = ReturnType<typeof createQuotaPreview>;
