import { and, eq, sql } from 'drizzle-orm';
import t from 'tap';
import type { Actor } from '../../src/core/actor.js';
import { createServices } from '../../src/core/services.js';
import { accounts, blobs, expunged, folders, messages } from '../../src/db/schema/index.js';
import { freshDatabase } from '../helpers/database.js';

// Whole-folder operations (UID MOVE 1:* Trash, EXPUNGE of a full folder, deleting a big folder or
// mailbox) on more messages than one Postgres statement takes parameters (65,535).
const ACTOR: Actor = { id: 'test', name: 'test', domains: null };

const database = await freshDatabase(t);
const db = database.db;
const services = createServices(db, { passwordPolicy: { minLength: 10 }, bootstrapToken: null, maxMessageSize: 1024 * 1024 });
const mail = services.mail;
await services.domains.create({ name: 'bulk.test' }, ACTOR);

async function newMailbox(local: string) {
  const address = `${local}@bulk.test`;
  await services.mailboxes.create({ address, password: 'correct horse battery staple' }, ACTOR);
  const { id } = await services.mailboxes.find(address, ACTOR);
  const map = new Map((await mail.folders.list(id)).map((f) => [f.name, f.id]));
  return { id, address, folder: (name: string) => map.get(name)! };
}

/**
 * Fills a folder with `count` small messages, each with a blob of its own, in two statements
 * (appending them one by one would take minutes), and sets the counters as the store would.
 */
async function fill(accountId: number, folderId: number, prefix: string, count: number): Promise<number> {
  await db.execute(sql`
    insert into blobs (hash, size, data, ref_count)
    select ${prefix} || g, octet_length(convert_to('Subject: ' || g || E'\\r\\n\\r\\nbody', 'UTF8')),
           convert_to('Subject: ' || g || E'\\r\\n\\r\\nbody', 'UTF8'), 1
    from generate_series(1, ${count}::int) g`);
  await db.execute(sql`
    insert into messages (account_id, folder_id, uid, modseq, flags, internal_date, size, crlf_size, blob_hash)
    select ${accountId}::bigint, ${folderId}::bigint, g, 2, '{}', now(), b.size, b.size, b.hash
    from generate_series(1, ${count}::int) g join blobs b on b.hash = ${prefix} || g`);
  const [{ bytes } = { bytes: 0 }] = await db
    .select({ bytes: sql<number>`sum(${messages.size})`.mapWith(Number) })
    .from(messages)
    .where(and(eq(messages.accountId, accountId), eq(messages.folderId, folderId)));
  await db
    .update(folders)
    .set({ uidNext: count + 1, highestModseq: 2, messageCount: count, storageBytes: bytes })
    .where(eq(folders.id, folderId));
  await db
    .update(accounts)
    .set({ usedMessages: sql`${accounts.usedMessages} + ${count}`, usedBytes: sql`${accounts.usedBytes} + ${bytes}` })
    .where(eq(accounts.id, accountId));
  return bytes;
}

const countIn = async (accountId: number, folderId: number) =>
  (
    await db
      .select({ n: sql<number>`count(*)::int` })
      .from(messages)
      .where(and(eq(messages.accountId, accountId), eq(messages.folderId, folderId)))
  )[0]!.n;

const blobCount = async (prefix: string) =>
  (await db.select({ n: sql<number>`count(*)::int` }).from(blobs).where(sql`${blobs.hash} like ${`${prefix}%`}`))[0]!.n;

/** Past what one INSERT of message rows (17 parameters each) or tombstones (4 each) could take. */
const MOVED = 20_000;
/** Past what a list of blob hashes as separate parameters could take. */
const MANY_BLOBS = 66_000;
const uids = (count: number) => Array.from({ length: count }, (_, i) => i + 1);

t.test('move and copy a whole big folder', async (t) => {
  const box = await newMailbox('mover');
  const bytes = await fill(box.id, box.folder('Junk'), 'mover-', MOVED);
  const moved = await mail.move(box.id, box.folder('Junk'), uids(MOVED), 'Trash');
  t.equal(moved.pairs.length, MOVED, 'every message moved (UID MOVE 1:*)');
  t.equal(await countIn(box.id, box.folder('Junk')), 0);
  t.equal(await countIn(box.id, box.folder('Trash')), MOVED);
  const [{ n: tombstones } = { n: 0 }] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(expunged)
    .where(eq(expunged.folderId, box.folder('Junk')));
  t.equal(tombstones, MOVED, 'a tombstone for each');
  const copied = await mail.copy(box.id, box.folder('Trash'), uids(MOVED), 'Archive');
  t.equal(copied.pairs.length, MOVED, 'every message copied');
  t.equal(await countIn(box.id, box.folder('Archive')), MOVED);
  t.strictSame((await services.mailboxes.get(box.address, ACTOR)).value.usage, { storageBytes: 2 * bytes, messages: 2 * MOVED });
  const flagged = await mail.changeFlags(box.id, box.folder('Trash'), uids(MOVED), 'add', ['\\Deleted']);
  t.equal(flagged.changed.length, MOVED);
  t.equal((await mail.expunge(box.id, box.folder('Trash'))).length, MOVED, 'every message expunged');
  t.equal(await blobCount('mover-'), MOVED, 'the Archive copies keep the blobs');
  t.strictSame((await services.mailboxes.get(box.address, ACTOR)).value.usage, { storageBytes: bytes, messages: MOVED });
});

// Expunge, folder delete and mailbox delete free blobs the same way; the two deletes are the cheap
// ones to fill up for.
t.test('folder delete and mailbox delete free more blobs than a statement takes parameters', async (t) => {
  const box = await newMailbox('freer');
  await mail.folders.create(box.id, 'Big');
  const big = (await mail.folders.list(box.id)).find((f) => f.name === 'Big')!.id;
  await fill(box.id, big, 'freer2-', MANY_BLOBS);
  await mail.folders.delete(box.id, 'Big');
  t.equal(await blobCount('freer2-'), 0, 'deleting the folder frees its blobs');
  t.strictSame((await services.mailboxes.get(box.address, ACTOR)).value.usage, { storageBytes: 0, messages: 0 });
  await fill(box.id, box.folder('INBOX'), 'freer3-', MANY_BLOBS);
  await services.mailboxes.delete(box.address, ACTOR);
  t.equal(await blobCount('freer3-'), 0, 'deleting the mailbox frees its blobs');
});
