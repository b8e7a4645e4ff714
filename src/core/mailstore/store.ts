import { and, asc, eq, type SQL, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { expunged, folders, messages } from '../../db/schema/index.js';
import { publishChange } from '../events/changes.js';
import type { MessageIndex } from '../mime/types.js';
import type { FolderRow } from './folders.js';

/** What a message brings into a folder: its bytes are stored (or shared) by the caller. */
export interface NewMessage {
  blobHash: string;
  size: number;
  crlfSize: number;
  index: MessageIndex;
  flags: string[];
  internalDate: Date;
}

export interface Placed {
  uid: number;
  modseq: number;
}

/**
 * Gives `list` consecutive new UIDs in the folder, all under one new MODSEQ, and inserts them.
 * The folder row update is also its lock: UIDs are handed out in commit order, never twice.
 */
export async function placeMessages(
  tx: Executor,
  accountId: number,
  folder: Pick<FolderRow, 'id'>,
  list: NewMessage[],
): Promise<Placed[]> {
  if (list.length === 0) return [];
  const bytes = list.reduce((sum, m) => sum + m.size, 0);
  const [slot] = await tx
    .update(folders)
    .set({
      uidNext: sql`${folders.uidNext} + ${list.length}`,
      highestModseq: sql`${folders.highestModseq} + 1`,
      messageCount: sql`${folders.messageCount} + ${list.length}`,
      storageBytes: sql`${folders.storageBytes} + ${bytes}`,
    })
    .where(and(eq(folders.accountId, accountId), eq(folders.id, folder.id)))
    .returning({ uidNext: folders.uidNext, modseq: folders.highestModseq });
  const firstUid = slot!.uidNext - list.length;
  const rows = list.map((m, i) => ({
    accountId,
    folderId: folder.id,
    uid: firstUid + i,
    modseq: slot!.modseq,
    flags: m.flags,
    internalDate: m.internalDate,
    size: m.size,
    crlfSize: m.crlfSize,
    blobHash: m.blobHash,
    envelope: m.index.envelope,
    bodyStructure: m.index.structure,
    headerFields: m.index.headers,
    subject: m.index.subject,
    fromAddress: m.index.from,
    toAddress: m.index.to,
    sentDate: m.index.sentDate,
    sortSubject: m.index.sort.subject,
    sortFrom: m.index.sort.from,
    sortTo: m.index.sort.to,
    sortCc: m.index.sort.cc,
    replyOrForward: m.index.sort.replyOrForward,
    messageId: m.index.sort.messageId,
    referenceIds: m.index.sort.references,
  }));
  for (const chunk of chunked(rows)) await tx.insert(messages).values(chunk);
  await publishChange(tx, { kind: 'messages', accountId, folderId: folder.id, modseq: slot!.modseq });
  return list.map((_, i) => ({ uid: firstUid + i, modseq: slot!.modseq }));
}

/**
 * Rows per INSERT: a statement takes at most 65,535 parameters (a message row uses 24), and
 * drizzle builds a huge VALUES list recursively. UID MOVE 1:* of a big folder needs many.
 */
const INSERT_CHUNK = 1000;

function chunked<T>(list: T[]): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < list.length; i += INSERT_CHUNK) chunks.push(list.slice(i, i + INSERT_CHUNK));
  return chunks;
}

/** One parameter however many UIDs: a folder may hold more messages than Postgres takes parameters. */
export function uidIn(uids: readonly number[]): SQL {
  return sql`${messages.uid} = any(${sql.param(uids)}::bigint[])`;
}

export interface Removed {
  uid: number;
  blobHash: string;
  size: number;
}

/**
 * Takes the folder row lock before any of its message rows, as flag changes do (they bump the
 * folder's MODSEQ first): taking them the other way round deadlocks against a flag change.
 */
export async function lockFolder(tx: Executor, accountId: number, folderId: number): Promise<void> {
  await tx
    .select({ id: folders.id })
    .from(folders)
    .where(and(eq(folders.accountId, accountId), eq(folders.id, folderId)))
    .for('no key update');
}

/** Deletes messages from a folder, leaving tombstones at one new MODSEQ so sessions learn of it. */
export async function removeMessages(tx: Executor, accountId: number, folderId: number, uids: number[]): Promise<Removed[]> {
  if (uids.length === 0) return [];
  await lockFolder(tx, accountId, folderId);
  const gone = await tx
    .delete(messages)
    .where(and(eq(messages.accountId, accountId), eq(messages.folderId, folderId), uidIn(uids)))
    .returning({ uid: messages.uid, blobHash: messages.blobHash, size: messages.size });
  if (gone.length === 0) return [];
  const [folder] = await tx
    .update(folders)
    .set({
      highestModseq: sql`${folders.highestModseq} + 1`,
      messageCount: sql`${folders.messageCount} - ${gone.length}`,
      storageBytes: sql`${folders.storageBytes} - ${gone.reduce((sum, m) => sum + m.size, 0)}`,
    })
    .where(and(eq(folders.accountId, accountId), eq(folders.id, folderId)))
    .returning({ modseq: folders.highestModseq });
  for (const chunk of chunked(gone)) {
    await tx
      .insert(expunged)
      .values(chunk.map((m) => ({ accountId, folderId, uid: m.uid, modseq: folder!.modseq })))
      .onConflictDoUpdate({ target: [expunged.accountId, expunged.folderId, expunged.uid], set: { modseq: folder!.modseq } });
  }
  await publishChange(tx, { kind: 'messages', accountId, folderId, modseq: folder!.modseq });
  return gone.sort((a, b) => a.uid - b.uid);
}

/** The stored messages with these UIDs, in UID order, as a copy or move needs them. */
export async function messagesByUid(tx: Executor, accountId: number, folderId: number, uids: number[]) {
  if (uids.length === 0) return [];
  return tx
    .select()
    .from(messages)
    .where(and(eq(messages.accountId, accountId), eq(messages.folderId, folderId), uidIn(uids)))
    .orderBy(asc(messages.uid));
}

/** The size once every line ending is CRLF, as POP3 sends a message (RFC 1939 octet counts). */
export function crlfSize(raw: Uint8Array): number {
  let bareLineFeeds = 0;
  for (let i = raw.indexOf(0x0a); i !== -1; i = raw.indexOf(0x0a, i + 1)) {
    if (i === 0 || raw[i - 1] !== 0x0d) bareLineFeeds += 1;
  }
  return raw.length + bareLineFeeds;
}
