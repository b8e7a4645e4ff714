import { DomainError } from '../core/errors.js';
import type { DeliveryOutcome } from '../core/metrics.js';

/**
 * One LMTP reply line: the basic code and the text, which starts with the enhanced status code;
 * result is how mailroom_deliveries_total counts it.
 */
export interface Reply {
  code: number;
  text: string;
  result: DeliveryOutcome;
}

export const delivered = (recipient: string, uid: number): Reply => ({
  code: 250,
  text: `2.0.0 <${recipient}> delivered, UID ${uid}`,
  result: 'delivered',
});

export const invalidRecipient = (recipient: string): Reply => ({
  code: 550,
  text: `5.1.1 <${recipient}> is not a valid mailbox address`,
  result: 'unknown_mailbox',
});

export const tooLarge = (limit: number): Reply => ({
  code: 552,
  text: `5.3.4 The message is larger than the ${limit} bytes accepted`,
  result: 'too_large',
});

/** What the MTA keeps and retries later: anything that is not a decision about the recipient. */
export const transientFailure: Reply = { code: 451, text: '4.3.0 Temporary failure, please try again later', result: 'deferred' };

/**
 * The one place core errors become LMTP replies (RFC 3463 codes). Null for an error the core does
 * not promise on delivery: the caller answers it as a transient failure and logs it.
 */
export function replyForError(error: unknown, recipient: string, maxMessageSize: number): Reply | null {
  if (!(error instanceof DomainError)) return null;
  switch (error.code) {
    case 'mailbox_not_found':
      return { code: 550, text: `5.1.1 <${recipient}> No such mailbox`, result: 'unknown_mailbox' };
    case 'mailbox_suspended':
      return { code: 550, text: `5.2.1 <${recipient}> Mailbox is suspended`, result: 'suspended' };
    case 'quota_exceeded':
      return { code: 552, text: `5.2.2 <${recipient}> Mailbox is full`, result: 'over_quota' };
    case 'message_too_large':
      return tooLarge(maxMessageSize);
    default:
      return null;
  }
}
