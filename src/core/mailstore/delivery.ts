import { type SQL, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { runStatement, type StatementOptions } from '../../db/prepared.js';
import { notifyMessageChanges } from '../events/changes.js';
import { queueEventsFrom, quotaCrossings, quotaLevels } from '../webhooks/events.js';
import type { MessageIndex } from '../mime/types.js';
import type { QuotaState } from './quota.js';

export interface Delivery {
  raw: Uint8Array;
  hash: string;
  crlfSize: number;
  index: MessageIndex;
  /** Normalized folder name, looked up in every recipient's mailbox. */
  folder: string;
  /** The mailboxes: normalized addresses without repeats (delivery), or one account (APPEND, import). */
  to: { addresses: string[] } | { accountId: number };
  flags: string[];
  /** Null: the time of the transaction. */
  internalDate: Date | null;
  /** Whether a suspended mailbox in a domain that rejects mail for such refuses it (mail from outside). */
  refuseSuspended: boolean;
  /**
   * Mail from outside: a folder that received these very bytes within REDELIVERY_WINDOW is not
   * given them again, and the answer is the UID they already have. An MTA sends a message again
   * when it never heard the reply (a connection lost while the delivery committed); the bytes
   * are the same, down to its queue id in the Received line.
   */
  skipRedelivery: boolean;
}

const REDELIVERY_WINDOW = '1 day';

/** Each recipient mailbox as it stood under its lock, and the UID the message got there (if any). */
export interface RecipientOutcome extends QuotaState {
  address: string;
  status: 'active' | 'suspended';
  suspendedDelivery: 'receive' | 'reject';
  folderId: number | null;
  uid: number | null;
  uidValidity: number | null;
  modseq: number | null;
}

/**
 * Delivery is the hot path (every incoming message, often for many mailboxes; IMAP APPEND), so it is one
 * statement: one round trip that is its own transaction, where the stepwise version took nine.
 * It does what the other writers do in the same order: lock the recipients' account rows (in id
 * order) and keep those that may receive and have room; then take a UID in each target folder,
 * store or share the bytes, insert the messages, count the usage (queueing a webhook event for a
 * quota threshold crossed) and queue the notifications (delivered at commit). Every later step
 * reads `slot`, so a folder deleted meanwhile is neither filled nor counted.
 */
export async function deliverInOneStatement(db: Executor, delivery: Delivery): Promise<RecipientOutcome[]> {
  const { raw, hash, index } = delivery;
  const size = raw.length;
  const recipients = whichRecipients(delivery.to);
  const query = sql`
    with target as (
      select a.id, a.address, case when d.status = 'suspended' then 'suspended' else a.status end as status, d.suspended_delivery, a.quota_bytes, a.quota_messages,
             a.used_bytes, a.used_messages, a.quota_storage_level, a.quota_messages_level, d.name as domain,
             f.id as folder_id, earlier.uid as earlier_uid
      from accounts a join domains d on d.id = a.domain_id
      left join folders f on f.account_id = a.id and f.name = ${delivery.folder}
      left join lateral (
        select m.uid from messages m
        where m.blob_hash = ${hash}::text and m.account_id = a.id and m.folder_id = f.id
          and m.internal_date > now() - ${REDELIVERY_WINDOW}::interval
        limit 1
      ) earlier on ${delivery.skipRedelivery}
      where ${recipients.condition}
      order by a.id
      for update of a
    ),
    accepted as (
      select id, folder_id from target
      where folder_id is not null and earlier_uid is null
        and not (${delivery.refuseSuspended} and status = 'suspended' and suspended_delivery = 'reject')
        and (quota_bytes is null or used_bytes + ${size}::bigint <= quota_bytes)
        and (quota_messages is null or used_messages + 1 <= quota_messages)
    ),
    slot as (
      update folders f
      set uid_next = f.uid_next + 1, highest_modseq = f.highest_modseq + 1,
          message_count = f.message_count + 1, storage_bytes = f.storage_bytes + ${size}::bigint
      from accepted
      where f.account_id = accepted.id and f.id = accepted.folder_id
      returning f.account_id, f.id as folder_id, f.uid_validity, f.uid_next - 1 as uid, f.highest_modseq as modseq
    ),
    stored as (
      insert into blobs (hash, size, data, ref_count)
      select ${hash}::text, ${size}::bigint, ${raw}::bytea, count(*)::int from slot having count(*) > 0
      on conflict (hash) do update set ref_count = blobs.ref_count + excluded.ref_count
    ),
    placed as (
      insert into messages (account_id, folder_id, uid, modseq, flags, internal_date, size, crlf_size, blob_hash,
                            envelope, body_structure, header_fields, subject, from_address, to_address, sent_date,
                            sort_subject, sort_from, sort_to, sort_cc, reply_or_forward, message_id, reference_ids)
      select account_id, folder_id, uid, modseq, ${sql.param(delivery.flags)}::text[],
             coalesce(${delivery.internalDate?.toISOString() ?? null}::timestamptz, now()), ${size}::bigint, ${delivery.crlfSize}::bigint, ${hash}::text,
             ${JSON.stringify(index.envelope)}::jsonb, ${JSON.stringify(index.structure)}::jsonb,
             ${JSON.stringify(index.headers)}::jsonb, ${index.subject}::text, ${index.from}::text, ${index.to}::text,
             ${index.sentDate?.toISOString() ?? null}::timestamptz,
             ${index.sort.subject}::text, ${index.sort.from}::text, ${index.sort.to}::text, ${index.sort.cc}::text,
             ${index.sort.replyOrForward}::boolean, ${index.sort.messageId}::text, ${sql.param(index.sort.references)}::text[]
      from slot
      returning account_id, uid, modseq
    ),
    counted as (
      update accounts a set used_bytes = a.used_bytes + ${size}::bigint, used_messages = a.used_messages + 1,
        ${quotaLevels(sql`a.used_bytes + ${size}::bigint`, sql`a.used_messages + 1`)}
      from slot where a.id = slot.account_id
    ),
    usage as (
      select t.domain, t.address, t.quota_bytes, t.quota_messages, t.used_bytes + ${size}::bigint as used_bytes,
             t.used_messages + 1 as used_messages, t.quota_storage_level as storage_level, t.quota_messages_level as messages_level
      from target t join slot on slot.account_id = t.id
    ),
    crossed as (${quotaCrossings('usage')}),
    ${queueEventsFrom('crossed')},
    notified as (${notifyMessageChanges('slot')})
    select t.*, coalesce(placed.uid, t.earlier_uid) as uid, placed.modseq, slot.uid_validity, (select count(*) from notified) as notified
    from target t left join placed on placed.account_id = t.id left join slot on slot.account_id = t.id`;
  const rows = await runStatement(db, query, recipients.options);
  return rows.map((row) => ({
    id: Number(row.id),
    address: row.address as string,
    status: row.status as RecipientOutcome['status'],
    suspendedDelivery: row.suspended_delivery as RecipientOutcome['suspendedDelivery'],
    quotaBytes: nullableNumber(row.quota_bytes),
    quotaMessages: nullableNumber(row.quota_messages),
    usedBytes: Number(row.used_bytes),
    usedMessages: Number(row.used_messages),
    folderId: nullableNumber(row.folder_id),
    uid: nullableNumber(row.uid),
    uidValidity: nullableNumber(row.uid_validity),
    modseq: nullableNumber(row.modseq),
  }));
}

/**
 * Which account rows the delivery locks, and under which prepared statement: a single mailbox
 * (almost every delivery, APPEND, import) has a plan that holds for any value, so it is prepared;
 * a list is planned each time for its length (an array's length is unknown to a generic plan).
 */
function whichRecipients(to: Delivery['to']): { condition: SQL; options: StatementOptions } {
  if ('accountId' in to) return { condition: sql`a.id = ${to.accountId}`, options: { preparedAs: 'mailroom_deliver_to_account' } };
  if (to.addresses.length === 1) {
    return { condition: sql`a.address = ${to.addresses[0]}`, options: { preparedAs: 'mailroom_deliver_to_address' } };
  }
  return { condition: sql`a.address = any(${sql.param(to.addresses)}::text[])`, options: {} };
}

/** Raw rows bring bigint columns as strings (node-postgres) or numbers (PGlite). */
function nullableNumber(value: unknown): number | null {
  return value === null ? null : Number(value);
}
