import { createHash } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import { type Database, type Executor, serverPool } from '../../db/client.js';
import { copyRows } from '../../db/copy.js';
import { blobs, messages } from '../../db/schema/index.js';
import { uidIn } from './store.js';

export function blobHash(raw: Uint8Array): string {
  return createHash('sha256').update(raw).digest('hex');
}

/**
 * The bytes of a folder's messages by UID, whole or the range asked for; UIDs no longer there are
 * left out. On a Postgres server they come raw through binary COPY rather than as hex text.
 */
export async function readMessageBytes(
  db: Database,
  accountId: number,
  folderId: number,
  uids: readonly number[],
  range?: { start: number; length: number },
): Promise<Map<number, Buffer>> {
  const data = range === undefined ? blobs.data : sql<Uint8Array>`substring(${blobs.data} from ${range.start + 1} for ${range.length})`;
  const query = db
    .select({ uid: messages.uid, data })
    .from(messages)
    .innerJoin(blobs, eq(blobs.hash, messages.blobHash))
    .where(and(eq(messages.accountId, accountId), eq(messages.folderId, folderId), uidIn(uids)));
  const pool = serverPool(db);
  if (!pool) return new Map((await query).map((row) => [row.uid, asBuffer(row.data)]));
  const rows = await copyRows(pool, query.getSQL());
  return new Map(rows.map(([uid, bytes]) => [Number(uid!.readBigInt64BE()), bytes!]));
}

/** PGlite's bytes as a Buffer without copying them: a large message is held once, not twice. */
function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Stores new messages' bytes, or shares a blob that holds them already; one reference each. */
export async function storeBlobs(tx: Executor, list: readonly { blobHash: string; raw: Uint8Array }[]): Promise<void> {
  // One row per hash: an upsert cannot touch the same row twice.
  const byHash = new Map<string, { data: Uint8Array; count: number }>();
  for (const { blobHash: hash, raw } of list) {
    const entry = byHash.get(hash);
    if (entry) entry.count += 1;
    else byHash.set(hash, { data: raw, count: 1 });
  }
  // Sorted, as changeReferences does, so concurrent writers lock shared blobs in one order.
  for (const [hash, { data, count }] of [...byHash].sort(([a], [b]) => (a < b ? -1 : 1))) {
    await tx
      .insert(blobs)
      .values({ hash, size: data.length, data, refCount: count })
      .onConflictDoUpdate({ target: blobs.hash, set: { refCount: sql`${blobs.refCount} + ${count}` } });
  }
}

/** One more message uses each of these blobs (a copy); hashes may repeat. */
export async function addBlobReferences(tx: Executor, hashes: string[]): Promise<void> {
  await changeReferences(tx, hashes, 1);
}

/** The messages using these blobs are gone; a blob nobody uses any more is freed. */
export async function releaseBlobs(tx: Executor, hashes: string[]): Promise<void> {
  if (hashes.length === 0) return;
  await changeReferences(tx, hashes, -1);
  // One array parameter: a folder or mailbox can hold more blobs than a statement takes parameters.
  await tx
    .delete(blobs)
    .where(and(sql`${blobs.hash} = any(${sql.param([...new Set(hashes)])}::text[])`, eq(blobs.refCount, 0)));
}

async function changeReferences(tx: Executor, hashes: string[], sign: 1 | -1): Promise<void> {
  const counts = new Map<string, number>();
  for (const hash of hashes) counts.set(hash, (counts.get(hash) ?? 0) + 1);
  // Sorted, so two transactions touching the same blobs lock them in the same order.
  const sorted = [...counts].sort(([a], [b]) => (a < b ? -1 : 1));
  if (sorted.length === 0) return;
  await tx.execute(sql`
    update ${blobs} set ref_count = ${blobs.refCount} + change.n
    from (select unnest(${sql.param(sorted.map(([hash]) => hash))}::text[]) as hash,
                 unnest(${sql.param(sorted.map(([, n]) => n * sign))}::int[]) as n) as change
    where ${blobs.hash} = change.hash`);
}
