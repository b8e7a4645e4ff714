import { and, asc, eq, gt, sql } from 'drizzle-orm';
import type { Database } from '../../db/client.js';
import { expunged, folders, messages } from '../../db/schema/index.js';
import { normalizeAddress } from '../addresses.js';
import { DomainError, ForbiddenError, InvalidError, NotFoundError } from '../errors.js';
import { publishChange } from '../events/changes.js';
import { indexMessage } from '../mime/index.js';
import type { MessageIndex } from '../mime/types.js';
import { addBlobReferences, blobHash, readMessageBytes, releaseBlobs, storeBlobs } from './blobs.js';
import { deliverInOneStatement, type RecipientOutcome } from './delivery.js';
import { createFolderService, findFolder, INBOX, normalizeFolderName } from './folders.js';
import { normalizeFlags } from './flags.js';
import { adjustUsage, checkRoom, lockAccount } from './quota.js';
import { type SearchKey, searchCondition } from './search.js';
import { type SortCriterion, sortOrder } from './sort.js';
import { orderedSubjectThreads, referenceThreads, type ThreadAlgorithm, type ThreadNode } from './thread.js';
import { crlfSize, lockFolder, messagesByUid, placeMessages, removeMessages, uidIn } from './store.js';

export type DeliveryResult =
  | { recipient: string; delivered: true; uid: number; size: number }
  | { recipient: string; delivered: false; error: DomainError };

export interface Stored {
  uid: number;
  uidValidity: number;
  modseq: number;
  size: number;
}

export type FlagChange = 'set' | 'add' | 'remove';

export interface MessageSummary {
  uid: number;
  /** Stable for the life of the message in its mailbox: POP3's UIDL. */
  key: number;
  modseq: number;
  flags: string[];
  internalDate: Date;
  size: number;
  /** The size with CRLF line endings: POP3's octet count. */
  crlfSize: number;
  pop3Hidden: boolean;
}

/**
 * What a folder's listing reads: exactly the primary key and its INCLUDE columns (migration
 * 0005), so SELECT or a POP3 login on a big folder never visits the messages' wide rows.
 */
const summaryColumns = {
  uid: messages.uid,
  key: messages.messageKey,
  modseq: messages.modseq,
  flags: messages.flags,
  internalDate: messages.internalDate,
  size: messages.size,
  crlfSize: messages.crlfSize,
  pop3Hidden: messages.pop3Hidden,
};

function indexOf(row: typeof messages.$inferSelect): MessageIndex {
  return {
    envelope: row.envelope as MessageIndex['envelope'],
    structure: row.bodyStructure as MessageIndex['structure'],
    headers: row.headerFields as MessageIndex['headers'],
    subject: row.subject,
    from: row.fromAddress,
    to: row.toAddress,
    sentDate: row.sentDate,
    sort: {
      subject: row.sortSubject,
      from: row.sortFrom,
      to: row.sortTo,
      cc: row.sortCc,
      replyOrForward: row.replyOrForward,
      messageId: row.messageId,
      references: row.referenceIds,
    },
  };
}

function checkSize(raw: Uint8Array, maxSize: number): void {
  if (raw.length > maxSize) {
    throw new InvalidError('message_too_large', `The message is ${raw.length} bytes; at most ${maxSize} are accepted`, {
      maxSize,
    });
  }
}

const unknownMailbox = (recipient: string) => new NotFoundError('mailbox_not_found', `There is no mailbox ${recipient}`);

/** Why a delivery left this mailbox out, from its state under the lock. */
function refusal(outcome: RecipientOutcome, folder: string, size: number): DomainError {
  if (outcome.status === 'suspended' && outcome.suspendedDelivery === 'reject') {
    return new ForbiddenError('mailbox_suspended', `The mailbox ${outcome.address} is suspended`);
  }
  try {
    checkRoom(outcome, size, 1);
  } catch (error) {
    return error as DomainError;
  }
  // It had room, so its folder was missing or deleted while the message was on its way.
  return new NotFoundError('folder_not_found', `There is no folder ${normalizeFolderName(folder)}`);
}

/** Messages in Postgres: every way in (LMTP, API, IMAP APPEND, import) and every way out. */
export function createMailStore(db: Database, options: { maxMessageSize: number }) {
  const folderService = createFolderService(db);

  return {
    folders: folderService,

    /** The largest message stored, in bytes (IMAP APPENDLIMIT). */
    maxMessageSize: options.maxMessageSize,

    /**
     * Delivers one message to several mailboxes in one transaction: one stored copy of the bytes,
     * and an answer per recipient (unknown, suspended or full mailboxes fail alone). Nothing is
     * reported delivered before the transaction commits; a database fault throws for all.
     * `skipRedelivery`: for an MTA, which resends a message whose reply it lost (see Delivery).
     */
    async deliver(
      raw: Buffer,
      recipients: readonly string[],
      folder = INBOX,
      { skipRedelivery = false }: { skipRedelivery?: boolean } = {},
    ): Promise<DeliveryResult[]> {
      checkSize(raw, options.maxMessageSize);
      const addresses = recipients.map((recipient) => {
        try {
          return normalizeAddress(recipient).address;
        } catch {
          return null;
        }
      });
      const known = [...new Set(addresses.filter((a): a is string => a !== null))];
      const outcomes =
        known.length === 0
          ? []
          : await deliverInOneStatement(db, {
              raw,
              hash: blobHash(raw),
              crlfSize: crlfSize(raw),
              index: indexMessage(raw),
              folder: normalizeFolderName(folder),
              to: { addresses: known },
              flags: [],
              internalDate: null,
              refuseSuspended: true,
              skipRedelivery,
            });
      const byAddress = new Map(outcomes.map((outcome) => [outcome.address, outcome]));
      return recipients.map((recipient, i): DeliveryResult => {
        const address = addresses[i];
        const outcome = address === null ? undefined : byAddress.get(address!);
        if (!outcome) return { recipient, delivered: false, error: unknownMailbox(recipient) };
        if (outcome.uid !== null) return { recipient, delivered: true, uid: outcome.uid, size: raw.length };
        return { recipient, delivered: false, error: refusal(outcome, folder, raw.length) };
      });
    },

    /** IMAP APPEND and import: one message into a named folder, with its flags and date. */
    async append(
      accountId: number,
      folder: string,
      raw: Buffer,
      options_: { flags?: string[]; internalDate?: Date } = {},
    ): Promise<Stored> {
      checkSize(raw, options.maxMessageSize);
      const [outcome] = await deliverInOneStatement(db, {
        raw,
        hash: blobHash(raw),
        crlfSize: crlfSize(raw),
        index: indexMessage(raw),
        folder: normalizeFolderName(folder),
        to: { accountId },
        flags: normalizeFlags(options_.flags ?? []),
        internalDate: options_.internalDate ?? null,
        refuseSuspended: false,
        skipRedelivery: false,
      });
      if (!outcome) throw new NotFoundError('mailbox_not_found', 'The mailbox no longer exists');
      if (outcome.uid === null) throw refusal(outcome, folder, raw.length);
      return { uid: outcome.uid, uidValidity: outcome.uidValidity!, modseq: outcome.modseq!, size: raw.length };
    },

    /**
     * MULTIAPPEND (RFC 3502): several messages into one folder in one transaction, all or none.
     * Answers their UIDs, consecutive and in the order given.
     */
    async appendMany(
      accountId: number,
      folder: string,
      list: readonly { raw: Buffer; flags?: string[]; internalDate?: Date }[],
    ): Promise<{ uidValidity: number; uids: number[] }> {
      for (const { raw } of list) checkSize(raw, options.maxMessageSize);
      const now = new Date();
      const prepared = list.map((m) => ({
        raw: m.raw,
        blobHash: blobHash(m.raw),
        size: m.raw.length,
        crlfSize: crlfSize(m.raw),
        index: indexMessage(m.raw),
        flags: normalizeFlags(m.flags ?? []),
        internalDate: m.internalDate ?? now,
      }));
      const bytes = prepared.reduce((sum, m) => sum + m.size, 0);
      return db.transaction(async (tx) => {
        const quota = await lockAccount(tx, accountId);
        const target = await findFolder(tx, accountId, normalizeFolderName(folder));
        checkRoom(quota, bytes, prepared.length);
        await storeBlobs(tx, prepared);
        const placed = await placeMessages(tx, accountId, target, prepared);
        await adjustUsage(tx, accountId, bytes, prepared.length);
        return { uidValidity: target.uidValidity, uids: placed.map((m) => m.uid) };
      });
    },

    /** Copies messages; the copies count against the quota. Answers source -> new UID pairs. */
    async copy(accountId: number, fromFolderId: number, uids: number[], toFolder: string) {
      return db.transaction(async (tx) => {
        const quota = await lockAccount(tx, accountId);
        const target = await findFolder(tx, accountId, toFolder);
        const rows = await messagesByUid(tx, accountId, fromFolderId, uids);
        checkRoom(quota, rows.reduce((sum, m) => sum + m.size, 0), rows.length);
        await addBlobReferences(tx, rows.map((m) => m.blobHash));
        const placed = await placeMessages(
          tx,
          accountId,
          target,
          rows.map((m) => ({ blobHash: m.blobHash, size: m.size, crlfSize: m.crlfSize, index: indexOf(m), flags: m.flags, internalDate: m.internalDate })),
        );
        await adjustUsage(tx, accountId, rows.reduce((sum, m) => sum + m.size, 0), rows.length);
        return { uidValidity: target.uidValidity, pairs: rows.map((m, i) => [m.uid, placed[i]!.uid] as const) };
      });
    },

    /** Moves messages (RFC 6851): new UIDs in the target, tombstones in the source; usage unchanged. */
    async move(accountId: number, fromFolderId: number, uids: number[], toFolder: string) {
      return db.transaction(async (tx) => {
        await lockAccount(tx, accountId);
        const target = await findFolder(tx, accountId, toFolder);
        const rows = await messagesByUid(tx, accountId, fromFolderId, uids);
        if (target.id === fromFolderId) {
          throw new InvalidError('same_folder', 'The messages are in that folder already', { field: 'folder' });
        }
        const placed = await placeMessages(
          tx,
          accountId,
          target,
          rows.map((m) => ({ blobHash: m.blobHash, size: m.size, crlfSize: m.crlfSize, index: indexOf(m), flags: m.flags, internalDate: m.internalDate })),
        );
        await removeMessages(tx, accountId, fromFolderId, rows.map((m) => m.uid));
        return { uidValidity: target.uidValidity, pairs: rows.map((m, i) => [m.uid, placed[i]!.uid] as const) };
      });
    },

    /**
     * Sets, adds or removes flags. Only messages whose flags really change get the new MODSEQ;
     * with `unchangedSince` (CONDSTORE), messages changed after it are left alone and reported.
     */
    async changeFlags(
      accountId: number,
      folderId: number,
      uids: number[],
      change: FlagChange,
      flags: string[],
      unchangedSince?: number,
    ) {
      const given = normalizeFlags(flags);
      const newFlags =
        change === 'set'
          ? sql`${sql.param(given)}::text[]`
          : change === 'add'
            ? sql`array(select distinct f collate "C" from unnest(${messages.flags} || ${sql.param(given)}::text[]) f order by 1)`
            : sql`array(select f from unnest(${messages.flags}) f where f <> all(${sql.param(given)}::text[]) order by f collate "C")`;
      return db.transaction(async (tx) => {
        const scope = and(eq(messages.accountId, accountId), eq(messages.folderId, folderId), uidIn(uids));
        // Locked, not yet bumped: updating the folder row twice in one transaction (bump, then give
        // back) makes Postgres re-check its account foreign key, and that check waits for the
        // account lock other writers hold while they wait for this folder: a deadlock.
        const [current] = await tx
          .select({ modseq: folders.highestModseq })
          .from(folders)
          .where(and(eq(folders.accountId, accountId), eq(folders.id, folderId)))
          .for('no key update');
        if (!current) throw new NotFoundError('folder_not_found', 'The folder no longer exists');
        const folder = { modseq: current.modseq + 1 };
        const conflicts =
          unchangedSince === undefined
            ? []
            : (
                await tx
                  .select({ uid: messages.uid })
                  .from(messages)
                  .where(and(scope, gt(messages.modseq, unchangedSince)))
              ).map((m) => m.uid);
        const changed = await tx
          .update(messages)
          .set({ flags: sql`${newFlags}`, modseq: folder.modseq })
          .where(
            and(
              scope,
              unchangedSince === undefined ? undefined : sql`${messages.modseq} <= ${unchangedSince}`,
              sql`${messages.flags} is distinct from ${newFlags}`,
            ),
          )
          .returning({ uid: messages.uid, flags: messages.flags, modseq: messages.modseq });
        // Only a real change moves HIGHESTMODSEQ.
        if (changed.length > 0) {
          await tx
            .update(folders)
            .set({ highestModseq: folder.modseq })
            .where(and(eq(folders.accountId, accountId), eq(folders.id, folderId)));
          await publishChange(tx, { kind: 'messages', accountId, folderId, modseq: folder.modseq });
        }
        return { changed: changed.sort((a, b) => a.uid - b.uid), conflicts: conflicts.sort((a, b) => a - b) };
      });
    },

    /** Expunges the \Deleted messages (only those among `uids` when given: UID EXPUNGE). */
    async expunge(accountId: number, folderId: number, uids?: number[]): Promise<number[]> {
      return db.transaction(async (tx) => {
        await lockAccount(tx, accountId);
        // Before reading \Deleted, so a flag change cannot slip in between the read and the delete.
        await lockFolder(tx, accountId, folderId);
        const deleted = await tx
          .select({ uid: messages.uid })
          .from(messages)
          .where(
            and(
              eq(messages.accountId, accountId),
              eq(messages.folderId, folderId),
              sql`'\\Deleted' = any(${messages.flags})`,
              uids === undefined ? undefined : uidIn(uids),
            ),
          );
        const gone = await removeMessages(tx, accountId, folderId, deleted.map((m) => m.uid));
        await releaseBlobs(tx, gone.map((m) => m.blobHash));
        await adjustUsage(tx, accountId, -gone.reduce((sum, m) => sum + m.size, 0), -gone.length);
        return gone.map((m) => m.uid);
      });
    },

    /** Removes messages whatever their flags (POP3 DELE + QUIT in `remove` mode, the API). */
    async remove(accountId: number, folderId: number, uids: number[]): Promise<number[]> {
      return db.transaction(async (tx) => {
        await lockAccount(tx, accountId);
        const gone = await removeMessages(tx, accountId, folderId, uids);
        await releaseBlobs(tx, gone.map((m) => m.blobHash));
        await adjustUsage(tx, accountId, -gone.reduce((sum, m) => sum + m.size, 0), -gone.length);
        return gone.map((m) => m.uid);
      });
    },

    /** POP3 `hide` mode: the message stays for IMAP but POP3 never offers it again. */
    async hideFromPop3(accountId: number, folderId: number, uids: number[]): Promise<void> {
      await db
        .update(messages)
        .set({ pop3Hidden: true })
        .where(and(eq(messages.accountId, accountId), eq(messages.folderId, folderId), uidIn(uids)));
    },

    /** The folder's messages in UID order: a session's starting view. */
    async list(accountId: number, folderId: number): Promise<MessageSummary[]> {
      return db
        .select(summaryColumns)
        .from(messages)
        .where(and(eq(messages.accountId, accountId), eq(messages.folderId, folderId)))
        .orderBy(asc(messages.uid));
    },

    /** What changed in a folder after `modseq`: changed or new messages and expunged UIDs. */
    async changesSince(accountId: number, folderId: number, modseq: number) {
      // HIGHESTMODSEQ first: read after the lists, it could cover a change that committed in
      // between and that the lists missed, and the client would never ask for it again.
      const [folder] = await db
        .select({ highestModseq: folders.highestModseq, uidNext: folders.uidNext })
        .from(folders)
        .where(and(eq(folders.accountId, accountId), eq(folders.id, folderId)));
      if (!folder) throw new NotFoundError('folder_not_found', 'The folder no longer exists');
      const [changed, vanished] = await Promise.all([
        db
          .select(summaryColumns)
          .from(messages)
          .where(and(eq(messages.accountId, accountId), eq(messages.folderId, folderId), gt(messages.modseq, modseq)))
          .orderBy(asc(messages.uid)),
        expungedSince(db, accountId, folderId, modseq),
      ]);
      return { changed, expunged: vanished, highestModseq: folder.highestModseq, uidNext: folder.uidNext };
    },

    /** UIDs expunged from a folder after `modseq`, ascending, from its tombstones (QRESYNC VANISHED). */
    async expungedSince(accountId: number, folderId: number, modseq: number): Promise<number[]> {
      return expungedSince(db, accountId, folderId, modseq);
    },

    /** UIDs of the folder's messages matching `key`, ascending. */
    async search(accountId: number, folderId: number, key: SearchKey): Promise<number[]> {
      const rows = await db
        .select({ uid: messages.uid })
        .from(messages)
        .where(and(eq(messages.accountId, accountId), eq(messages.folderId, folderId), searchCondition(key)))
        .orderBy(asc(messages.uid));
      return rows.map((row) => row.uid);
    },

    /**
     * SORT (RFC 5256): the UIDs of the folder's messages matching `key` in the order of `criteria`,
     * compared on the columns filled at delivery, so the database sorts and nothing is parsed
     * again; and the highest MODSEQ among them (0: none).
     */
    async sort(
      accountId: number,
      folderId: number,
      criteria: readonly SortCriterion[],
      key: SearchKey,
    ): Promise<{ uids: number[]; highestModseq: number }> {
      // One row, the UIDs as one string: a big folder's 100,000 rows cost the driver more than the sort.
      const [row] = await db
        .select({
          uids: sql<string>`coalesce(string_agg(${messages.uid}::text, ',' order by ${sql.join(sortOrder(criteria), sql`, `)}), '')`,
          highestModseq: sql<number>`coalesce(max(${messages.modseq}), 0)`.mapWith(Number),
        })
        .from(messages)
        .where(and(eq(messages.accountId, accountId), eq(messages.folderId, folderId), searchCondition(key)));
      return { uids: row!.uids === '' ? [] : row!.uids.split(',').map(Number), highestModseq: row!.highestModseq };
    },

    /** THREAD (RFC 5256): the folder's messages matching `key` as threads, from the columns filled at delivery. */
    async thread(accountId: number, folderId: number, algorithm: ThreadAlgorithm, key: SearchKey): Promise<ThreadNode[]> {
      const ordered = algorithm === 'orderedsubject';
      const rows = await db
        .select({
          uid: messages.uid,
          date: sql<number>`extract(epoch from ${messages.sortDate}) * 1000`.mapWith(Number),
          subject: messages.sortSubject,
          replyOrForward: messages.replyOrForward,
          messageId: messages.messageId,
          references: messages.referenceIds,
        })
        .from(messages)
        .where(and(eq(messages.accountId, accountId), eq(messages.folderId, folderId), searchCondition(key)))
        .orderBy(...(ordered ? sortOrder([{ key: 'subject', reverse: false }, { key: 'date', reverse: false }]) : [asc(messages.uid)]));
      return ordered ? orderedSubjectThreads(rows) : referenceThreads(rows);
    },

    /** The parsed envelope and structure of messages, for FETCH without reading their bytes. */
    async indexes(accountId: number, folderId: number, uids: number[]): Promise<Map<number, MessageIndex>> {
      const rows = await messagesByUid(db, accountId, folderId, uids);
      return new Map(rows.map((row) => [row.uid, indexOf(row)]));
    },

    /** The message's bytes, or `length` of them from `start`: only those leave the database. */
    async read(accountId: number, folderId: number, uid: number, range?: { start: number; length: number }): Promise<Buffer> {
      const data = (await readMessageBytes(db, accountId, folderId, [uid], range)).get(uid);
      if (!data) throw new NotFoundError('message_not_found', `There is no message with UID ${uid}`);
      return data;
    },

    /**
     * The bytes of several messages in one query (POP3 read-ahead), by UID; messages no longer
     * in the folder are left out. The caller bounds the total size.
     */
    async readMany(accountId: number, folderId: number, uids: readonly number[]): Promise<Map<number, Buffer>> {
      return uids.length === 0 ? new Map() : readMessageBytes(db, accountId, folderId, uids);
    },
  };
}

async function expungedSince(db: Database, accountId: number, folderId: number, modseq: number): Promise<number[]> {
  const rows = await db
    .select({ uid: expunged.uid })
    .from(expunged)
    .where(and(eq(expunged.accountId, accountId), eq(expunged.folderId, folderId), gt(expunged.modseq, modseq)))
    .orderBy(asc(expunged.uid));
  return rows.map((row) => row.uid);
}

export type MailStore = ReturnType<typeof createMailStore>;
