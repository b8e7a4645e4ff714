import { createHash } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import t, { type Test } from 'tap';
import type { Actor } from '../../src/core/actor.js';
import { createServices } from '../../src/core/services.js';
import { accounts, blobs, folders, messages } from '../../src/db/schema/index.js';
import { freshDatabase } from '../helpers/database.js';

const ACTOR: Actor = { id: 'test', name: 'test', domains: null };
const PASSWORD = 'correct horse battery staple';

const database = await freshDatabase(t);
const db = database.db;
const services = createServices(db, { passwordPolicy: { minLength: 10 }, bootstrapToken: null, maxMessageSize: 1024 * 1024 });
const mail = services.mail;
await services.domains.create({ name: 'msg.test' }, ACTOR);

interface Box {
  id: number;
  address: string;
  folder(name: string): Promise<number>;
}

async function newMailbox(local: string): Promise<Box> {
  const address = `${local}@msg.test`;
  await services.mailboxes.create({ address, password: PASSWORD }, ACTOR);
  const { id } = await services.mailboxes.find(address, ACTOR);
  return {
    id,
    address,
    async folder(name) {
      const found = (await mail.folders.list(id)).find((f) => f.name === name);
      if (!found) throw new Error(`no folder ${name}`);
      return found.id;
    },
  };
}

let counter = 0;
/** A distinct message each call (its own blob) unless `subject` repeats. */
function message(subject = `Message ${++counter}`, body = 'Hello there.\r\n'): Buffer {
  return Buffer.from(
    `From: Ann <ann@example.com>\r\nTo: bob@msg.test\r\nSubject: ${subject}\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n${body}`,
  );
}

const hashOf = (raw: Buffer) => createHash('sha256').update(raw).digest('hex');

async function refCount(raw: Buffer): Promise<number | null> {
  const [row] = await db.select({ refCount: blobs.refCount }).from(blobs).where(eq(blobs.hash, hashOf(raw)));
  return row ? row.refCount : null;
}

async function highestModseq(folderId: number): Promise<number> {
  const [row] = await db.select({ m: folders.highestModseq }).from(folders).where(eq(folders.id, folderId));
  return row!.m;
}

async function usageOf(box: Box) {
  return (await services.mailboxes.get(box.address, ACTOR)).value.usage;
}

/**
 * What must hold after any operation: account and folder counters equal the stored messages,
 * every blob's ref_count equals the messages using it, and no unused blob is left.
 */
async function checkInvariants(t: Test): Promise<void> {
  const counted = await db
    .select({
      accountId: messages.accountId,
      n: sql<number>`count(*)::int`,
      bytes: sql<number>`sum(${messages.size})`.mapWith(Number),
    })
    .from(messages)
    .groupBy(messages.accountId);
  for (const account of await db.select().from(accounts)) {
    const actual = counted.find((c) => c.accountId === account.id) ?? { n: 0, bytes: 0 };
    t.strictSame([account.usedMessages, account.usedBytes], [actual.n, actual.bytes], `usage of ${account.address} is exact`);
  }
  const perFolder = await db
    .select({
      folderId: messages.folderId,
      n: sql<number>`count(*)::int`,
      bytes: sql<number>`sum(${messages.size})`.mapWith(Number),
    })
    .from(messages)
    .groupBy(messages.folderId);
  for (const folder of await db.select().from(folders)) {
    const actual = perFolder.find((c) => c.folderId === folder.id) ?? { n: 0, bytes: 0 };
    if (folder.messageCount !== actual.n || folder.storageBytes !== actual.bytes) {
      t.fail(`folder ${folder.name} of ${folder.accountId} counts ${folder.messageCount}/${folder.storageBytes}, holds ${actual.n}/${actual.bytes}`);
    }
  }
  const references = await db
    .select({ hash: messages.blobHash, n: sql<number>`count(*)::int` })
    .from(messages)
    .groupBy(messages.blobHash);
  const stored = await db.select({ hash: blobs.hash, refCount: blobs.refCount }).from(blobs);
  t.strictSame(
    stored.map((b) => [b.hash, b.refCount]).sort(),
    references.map((r) => [r.hash, r.n]).sort(),
    'every blob is referenced exactly ref_count times, and no unused blob is left',
  );
}

t.test('UIDs rise strictly per folder and are never reused, even after expunging the highest', async (t) => {
  const box = await newMailbox('uids');
  const inbox = await box.folder('INBOX');
  const uids: number[] = [];
  for (let i = 0; i < 3; i++) uids.push((await mail.append(box.id, 'INBOX', message())).uid);
  t.strictSame(uids, [1, 2, 3]);
  await mail.changeFlags(box.id, inbox, [3], 'add', ['\\Deleted']);
  t.strictSame(await mail.expunge(box.id, inbox), [3], 'the highest UID is expunged');
  t.equal((await mail.append(box.id, 'INBOX', message())).uid, 4, 'UID 3 is not given again');
  await mail.changeFlags(box.id, inbox, [1, 2, 4], 'add', ['\\Deleted']);
  t.strictSame(await mail.expunge(box.id, inbox), [1, 2, 4]);
  t.equal((await mail.append(box.id, 'INBOX', message())).uid, 5, 'an emptied folder goes on counting');
  const removed = await mail.remove(box.id, inbox, [5]);
  t.strictSame(removed, [5]);
  const delivered = await mail.deliver(message(), [box.address]);
  t.match(delivered, [{ delivered: true, uid: 6 }], 'delivery takes the next UID too');
  t.equal((await mail.append(box.id, 'Sent', message())).uid, 1, 'another folder counts on its own');
  const copied = await mail.copy(box.id, inbox, [6], 'Sent');
  t.strictSame(copied.pairs, [[6, 2]], 'a copy gets the target folder’s next UID');
  const moved = await mail.move(box.id, inbox, [6], 'Sent');
  t.strictSame(moved.pairs, [[6, 3]]);
  t.equal((await mail.append(box.id, 'INBOX', message())).uid, 7, 'moved-out UIDs are not reused');
  const changes = await mail.changesSince(box.id, inbox, 0);
  t.equal(changes.uidNext, 8);
  await checkInvariants(t);
});

t.test('MODSEQ grows with every change; a change that changes nothing leaves HIGHESTMODSEQ', async (t) => {
  const box = await newMailbox('modseq');
  const inbox = await box.folder('INBOX');
  const archive = await box.folder('Archive');
  let last = await highestModseq(inbox);
  const grew = async (label: string, folderId = inbox) => {
    const now = await highestModseq(folderId);
    t.ok(now > last, `${label}: ${last} -> ${now}`);
    last = now;
    return now;
  };
  const a = await mail.append(box.id, 'INBOX', message());
  t.equal(a.modseq, await grew('append'), 'append answers the new MODSEQ');
  const b = await mail.append(box.id, 'INBOX', message());
  await grew('second append');
  t.ok(b.modseq > a.modseq);

  const flagged = await mail.changeFlags(box.id, inbox, [a.uid], 'add', ['\\Flagged']);
  const afterFlags = await grew('add flag');
  t.strictSame(flagged.changed, [{ uid: a.uid, flags: ['\\Flagged'], modseq: afterFlags }]);
  t.strictSame(flagged.conflicts, []);

  // No-ops: the flag is there already, removing a missing flag, setting the same set, unknown UID.
  const noops: [string, Promise<{ changed: unknown[] }>][] = [
    ['add an existing flag', mail.changeFlags(box.id, inbox, [a.uid], 'add', ['\\flagged'])],
    ['remove an absent flag', mail.changeFlags(box.id, inbox, [b.uid], 'remove', ['\\Seen'])],
    ['set the same flags', mail.changeFlags(box.id, inbox, [a.uid], 'set', ['\\Flagged'])],
    ['unknown UID', mail.changeFlags(box.id, inbox, [999], 'add', ['\\Seen'])],
    ['no UIDs', mail.changeFlags(box.id, inbox, [], 'add', ['\\Seen'])],
  ];
  for (const [label, pending] of noops) {
    const result = await pending;
    t.strictSame(result.changed, [], `${label}: nothing changed`);
    t.equal(await highestModseq(inbox), last, `${label}: HIGHESTMODSEQ unchanged`);
  }
  const list = await mail.list(box.id, inbox);
  t.strictSame(
    list.map((m) => [m.uid, m.modseq]),
    [
      [a.uid, afterFlags],
      [b.uid, b.modseq],
    ],
    'no message got a new MODSEQ from the no-ops',
  );

  // Only the messages whose flags change get the new MODSEQ.
  const both = await mail.changeFlags(box.id, inbox, [a.uid, b.uid], 'add', ['\\Flagged']);
  const afterBoth = await grew('add to one of two');
  t.strictSame(both.changed.map((m) => m.uid), [b.uid]);
  t.strictSame((await mail.list(box.id, inbox)).map((m) => m.modseq), [afterFlags, afterBoth]);

  await mail.changeFlags(box.id, inbox, [a.uid], 'add', ['\\Deleted']);
  await grew('mark deleted');
  await mail.expunge(box.id, inbox);
  await grew('expunge');
  t.equal(await mail.expunge(box.id, inbox).then((gone) => gone.length), 0);
  t.equal(await highestModseq(inbox), last, 'an expunge with nothing to expunge changes nothing');

  let archiveLast = await highestModseq(archive);
  await mail.copy(box.id, inbox, [b.uid], 'Archive');
  const archiveNow = await highestModseq(archive);
  t.ok(archiveNow > archiveLast, 'copy into a folder raises its HIGHESTMODSEQ');
  t.equal(await highestModseq(inbox), last, 'copy out of a folder leaves the source');
  archiveLast = archiveNow;
  await mail.move(box.id, inbox, [b.uid], 'Archive');
  await grew('move out');
  t.ok((await highestModseq(archive)) > archiveLast, 'move in raises the target');
  await checkInvariants(t);
});

t.test('changesSince: changed and new messages and expunged UIDs after a MODSEQ', async (t) => {
  const box = await newMailbox('changes');
  const inbox = await box.folder('INBOX');
  for (let i = 0; i < 5; i++) await mail.append(box.id, 'INBOX', message());
  const start = await mail.changesSince(box.id, inbox, 0);
  t.strictSame(start.changed.map((m) => m.uid), [1, 2, 3, 4, 5]);
  t.strictSame(start.expunged, []);
  const mark = start.highestModseq;
  t.strictSame(await mail.changesSince(box.id, inbox, mark), { changed: [], expunged: [], highestModseq: mark, uidNext: 6 });

  await mail.changeFlags(box.id, inbox, [2], 'add', ['\\Seen']);
  await mail.changeFlags(box.id, inbox, [3, 4], 'add', ['\\Deleted']);
  await mail.expunge(box.id, inbox, [3]);
  await mail.move(box.id, inbox, [5], 'Trash');
  await mail.append(box.id, 'INBOX', message());
  const since = await mail.changesSince(box.id, inbox, mark);
  t.strictSame(
    since.changed.map((m) => [m.uid, m.flags]),
    [
      [2, ['\\Seen']],
      [4, ['\\Deleted']],
      [6, []],
    ],
    'flag changes and the new message, nothing untouched',
  );
  t.strictSame(since.expunged, [3, 5], 'expunged and moved-out UIDs');
  t.ok(since.changed.every((m) => m.modseq > mark));
  t.equal(since.uidNext, 7);

  // Asking from a point in the middle gives only what came after it.
  const middle = since.changed.find((m) => m.uid === 4)!.modseq;
  const later = await mail.changesSince(box.id, inbox, middle);
  t.strictSame(later.changed.map((m) => m.uid), [6]);
  t.strictSame(later.expunged, [3, 5]);
  const last = await mail.changesSince(box.id, inbox, since.highestModseq);
  t.strictSame([last.changed, last.expunged], [[], []]);
});

t.test('flags: set, add, remove; system flags in one spelling; keywords kept as given', async (t) => {
  const box = await newMailbox('flags');
  const inbox = await box.folder('INBOX');
  const { uid } = await mail.append(box.id, 'INBOX', message(), { flags: ['\\seen', '$Label1', '\\SEEN'] });
  const flagsOf = async () => (await mail.list(box.id, inbox)).find((m) => m.uid === uid)!.flags;
  t.strictSame(await flagsOf(), ['$Label1', '\\Seen'], 'append: canonical, deduplicated, sorted');
  await mail.changeFlags(box.id, inbox, [uid], 'add', ['\\FLAGGED', 'Work', '\\answered']);
  t.strictSame(await flagsOf(), ['$Label1', 'Work', '\\Answered', '\\Flagged', '\\Seen']);
  await mail.changeFlags(box.id, inbox, [uid], 'remove', ['\\seen', '$Label1', 'NotThere']);
  t.strictSame(await flagsOf(), ['Work', '\\Answered', '\\Flagged']);
  await mail.changeFlags(box.id, inbox, [uid], 'remove', ['work']);
  t.strictSame(await flagsOf(), ['Work', '\\Answered', '\\Flagged'], 'keywords match case-sensitively');
  await mail.changeFlags(box.id, inbox, [uid], 'set', ['\\draft', 'Project-X', '\\Deleted']);
  t.strictSame(await flagsOf(), ['Project-X', '\\Deleted', '\\Draft']);
  await mail.changeFlags(box.id, inbox, [uid], 'set', []);
  t.strictSame(await flagsOf(), [], 'set to nothing clears');

  await mail.changeFlags(box.id, inbox, [uid], 'set', ['\\Seen']);
  const before = await mail.changesSince(box.id, inbox, 0);
  const invalid = ['\\Recent', '\\Foo', '\\', 'a b', '', 'a(b', 'a)b', 'a{b', 'a%b', 'a*b', 'a"b', 'a\\b', 'a]b', 'tab\t', 'ü', 'x'.repeat(101)];
  for (const flag of invalid) {
    for (const change of ['set', 'add', 'remove'] as const) {
      await t.rejects(
        mail.changeFlags(box.id, inbox, [uid], change, ['\\Flagged', flag]),
        { kind: 'invalid', code: 'invalid_flag' },
        `${change} ${JSON.stringify(flag)}`,
      );
    }
    await t.rejects(mail.append(box.id, 'INBOX', message(), { flags: [flag] }), { code: 'invalid_flag' }, `append with ${JSON.stringify(flag)}`);
  }
  t.strictSame(await mail.changesSince(box.id, inbox, 0), before, 'refused changes changed nothing');
  t.strictSame(await flagsOf(), ['\\Seen']);
  await checkInvariants(t);
});

t.test('CONDSTORE: messages changed after unchangedSince are reported and left alone', async (t) => {
  const box = await newMailbox('condstore');
  const inbox = await box.folder('INBOX');
  for (let i = 0; i < 3; i++) await mail.append(box.id, 'INBOX', message());
  const mark = (await mail.changesSince(box.id, inbox, 0)).highestModseq;
  // Another session flags message 2 after our client read `mark`.
  await mail.changeFlags(box.id, inbox, [2], 'add', ['Other']);
  const result = await mail.changeFlags(box.id, inbox, [1, 2, 3], 'add', ['\\Seen'], mark);
  t.strictSame(result.conflicts, [2]);
  t.strictSame(result.changed.map((m) => m.uid), [1, 3]);
  t.strictSame(
    (await mail.list(box.id, inbox)).map((m) => [m.uid, m.flags]),
    [
      [1, ['\\Seen']],
      [2, ['Other']],
      [3, ['\\Seen']],
    ],
  );
  // unchangedSince 0: everything conflicts (every message has a MODSEQ above 0), nothing changes.
  const before = await highestModseq(inbox);
  const none = await mail.changeFlags(box.id, inbox, [1, 2, 3], 'set', [], 0);
  t.strictSame(none, { changed: [], conflicts: [1, 2, 3] });
  t.equal(await highestModseq(inbox), before);
  // With the current HIGHESTMODSEQ, no conflict.
  const ok = await mail.changeFlags(box.id, inbox, [1, 2, 3], 'remove', ['\\Seen'], before);
  t.strictSame(ok.conflicts, []);
  t.strictSame(ok.changed.map((m) => m.uid), [1, 3]);
});

t.test('expungedSince: the tombstones after a MODSEQ, ascending', async (t) => {
  const box = await newMailbox('tombstones');
  const inbox = await box.folder('INBOX');
  for (let i = 0; i < 4; i++) await mail.append(box.id, 'INBOX', message());
  const mark = await highestModseq(inbox);
  await mail.changeFlags(box.id, inbox, [3], 'add', ['\\Deleted']);
  await mail.expunge(box.id, inbox);
  const middle = await highestModseq(inbox);
  await mail.move(box.id, inbox, [1], 'Trash');
  t.strictSame(await mail.expungedSince(box.id, inbox, mark), [1, 3]);
  t.strictSame(await mail.expungedSince(box.id, inbox, middle), [1]);
  t.strictSame(await mail.expungedSince(box.id, inbox, await highestModseq(inbox)), []);
});

t.test('appendMany: consecutive UIDs in one transaction, a shared blob counted once per message; all or none', async (t) => {
  const box = await newMailbox('many');
  const inbox = await box.folder('INBOX');
  const raw = message('twice');
  const other = message();
  const when = new Date('2025-12-24T18:30:00.000Z');
  await mail.append(box.id, 'INBOX', message());
  const before = await highestModseq(inbox);
  const stored = await mail.appendMany(box.id, 'inbox', [{ raw, flags: ['\\Seen'] }, { raw: other, internalDate: when }, { raw }]);
  t.strictSame(stored.uids, [2, 3, 4]);
  t.equal(await highestModseq(inbox), before + 1, 'one MODSEQ for the lot');
  const listed = await mail.list(box.id, inbox);
  t.strictSame(listed.slice(1).map((m) => [m.uid, m.flags, m.size]), [[2, ['\\Seen'], raw.length], [3, [], other.length], [4, [], raw.length]]);
  t.equal(listed[2]!.internalDate.toISOString(), when.toISOString());
  t.ok((await mail.read(box.id, inbox, 4)).equals(raw));
  t.equal(await refCount(raw), 2, 'one blob, two references');
  const usage = await usageOf(box);
  t.equal(usage.messages, 4);

  await services.mailboxes.update(box.address, { quota: { storageBytes: usage.storageBytes + raw.length, messages: null } }, ACTOR);
  await t.rejects(mail.appendMany(box.id, 'INBOX', [{ raw: message() }, { raw: message() }]), { code: 'quota_exceeded' });
  await t.rejects(mail.appendMany(box.id, 'INBOX', [{ raw: message() }, { raw: Buffer.alloc(1024 * 1024 + 1) }]), { code: 'message_too_large' });
  await t.rejects(mail.appendMany(box.id, 'Nowhere', [{ raw: message() }, { raw: message() }]), { code: 'folder_not_found' });
  t.strictSame((await mail.list(box.id, inbox)).map((m) => m.uid), [1, 2, 3, 4], 'nothing stored');
  t.strictSame(await usageOf(box), usage);
  await checkInvariants(t);
});

t.test('copy: new UIDs, flags and internal date kept, blob shared and counted', async (t) => {
  const box = await newMailbox('copy');
  const inbox = await box.folder('INBOX');
  const raw = message('to copy');
  const first = message();
  const other = message();
  const when = new Date('2025-12-24T18:30:00.000Z');
  await mail.append(box.id, 'INBOX', first);
  const original = await mail.append(box.id, 'INBOX', raw, { flags: ['\\Flagged', 'Keep'], internalDate: when });
  await mail.append(box.id, 'Archive', other);
  const copied = await mail.copy(box.id, inbox, [original.uid, 999], 'Archive');
  const archive = await box.folder('Archive');
  t.equal(copied.uidValidity, (await mail.folders.list(box.id)).find((f) => f.id === archive)!.uidValidity);
  t.strictSame(copied.pairs, [[original.uid, 2]], 'unknown UIDs are skipped');
  const [copy] = (await mail.list(box.id, archive)).filter((m) => m.uid === 2);
  t.strictSame(copy!.flags, ['Keep', '\\Flagged']);
  t.equal(copy!.internalDate.toISOString(), when.toISOString());
  t.equal(copy!.size, raw.length);
  t.ok((await mail.read(box.id, archive, 2)).equals(raw));
  t.equal(await refCount(raw), 2, 'one blob, two references');
  t.strictSame(await usageOf(box), { storageBytes: first.length + raw.length * 2 + other.length, messages: 4 }, 'the copy counts');
  t.strictSame((await mail.list(box.id, inbox)).map((m) => m.uid), [1, 2], 'the source keeps its messages');
  const index = await mail.indexes(box.id, archive, [2]);
  t.strictSame(index.get(2), (await mail.indexes(box.id, inbox, [original.uid])).get(original.uid), 'the parsed index comes along');
  const again = await mail.copy(box.id, inbox, [1, 2], 'INBOX');
  t.strictSame(again.pairs, [[1, 3], [2, 4]], 'a copy into the same folder is a new message');
  t.equal(await refCount(raw), 3);
  await checkInvariants(t);
});

t.test('move: new UIDs in the target, tombstones in the source, usage unchanged', async (t) => {
  const box = await newMailbox('move');
  const inbox = await box.folder('INBOX');
  const trash = await box.folder('Trash');
  const raw = message('to move');
  const when = new Date('2024-02-29T12:00:00.000Z');
  await mail.append(box.id, 'INBOX', message());
  const original = await mail.append(box.id, 'INBOX', raw, { flags: ['\\Seen'], internalDate: when });
  const usage = await usageOf(box);
  const mark = (await mail.changesSince(box.id, inbox, 0)).highestModseq;
  const moved = await mail.move(box.id, inbox, [original.uid], 'Trash');
  t.strictSame(moved.pairs, [[original.uid, 1]]);
  t.strictSame(await usageOf(box), usage, 'usage unchanged');
  t.equal(await refCount(raw), 1, 'still one reference');
  t.strictSame((await mail.list(box.id, inbox)).map((m) => m.uid), [1]);
  const [there] = await mail.list(box.id, trash);
  t.match(there, { uid: 1, flags: ['\\Seen'], size: raw.length });
  t.equal(there!.internalDate.toISOString(), when.toISOString());
  t.ok((await mail.read(box.id, trash, 1)).equals(raw));
  t.strictSame((await mail.changesSince(box.id, inbox, mark)).expunged, [original.uid], 'tombstone in the source');
  const folderUsage = new Map((await mail.folders.usage(box.id)).map((u) => [u.name, u]));
  t.match(folderUsage.get('INBOX'), { messages: 1 });
  t.match(folderUsage.get('Trash'), { messages: 1, storageBytes: raw.length });
  await t.rejects(mail.move(box.id, trash, [1], 'Trash'), { kind: 'invalid', code: 'same_folder' });
  await t.rejects(mail.move(box.id, trash, [1], 'trash'), { code: 'folder_not_found' }, 'folder names are case-sensitive');
  await t.rejects(mail.move(box.id, trash, [1], 'Nowhere'), { code: 'folder_not_found' });
  t.strictSame((await mail.list(box.id, trash)).map((m) => m.uid), [1], 'refused moves changed nothing');
  await checkInvariants(t);
});

t.test('expunge removes only \\Deleted messages, and only among the given UIDs', async (t) => {
  const box = await newMailbox('expunge');
  const inbox = await box.folder('INBOX');
  const raws = [1, 2, 3, 4, 5].map((i) => message(`expunge ${i}`, 'y'.repeat(i * 10)));
  for (const raw of raws) await mail.append(box.id, 'INBOX', raw);
  await mail.changeFlags(box.id, inbox, [2, 3, 5], 'add', ['\\Deleted']);
  t.strictSame(await mail.expunge(box.id, inbox, []), [], 'UID EXPUNGE of no UIDs expunges nothing');
  t.strictSame(await mail.expunge(box.id, inbox, [1, 2, 3]), [2, 3], 'UID EXPUNGE: only the given ones that are \\Deleted');
  t.strictSame((await mail.list(box.id, inbox)).map((m) => m.uid), [1, 4, 5]);
  t.strictSame(await usageOf(box), { messages: 3, storageBytes: raws[0]!.length + raws[3]!.length + raws[4]!.length });
  t.equal(await refCount(raws[1]!), null, 'blob freed');
  t.strictSame(await mail.expunge(box.id, inbox), [5]);
  t.strictSame(await mail.expunge(box.id, inbox), []);
  t.strictSame((await mail.list(box.id, inbox)).map((m) => m.uid), [1, 4]);
  t.strictSame(await usageOf(box), { messages: 2, storageBytes: raws[0]!.length + raws[3]!.length });
  // remove: whatever the flags.
  t.strictSame(await mail.remove(box.id, inbox, [4, 77]), [4]);
  t.strictSame(await usageOf(box), { messages: 1, storageBytes: raws[0]!.length });
  t.equal(await refCount(raws[3]!), null);
  await checkInvariants(t);
});

t.test('a blob is kept while another mailbox uses it and freed with its last reference', async (t) => {
  const ann = await newMailbox('blob-ann');
  const bob = await newMailbox('blob-bob');
  const raw = message('for both', 'shared body\r\n');
  const results = await mail.deliver(raw, [ann.address, bob.address]);
  t.match(results, [{ delivered: true }, { delivered: true }]);
  t.equal(await refCount(raw), 2);
  const annInbox = await ann.folder('INBOX');
  const bobInbox = await bob.folder('INBOX');
  await mail.changeFlags(ann.id, annInbox, [1], 'add', ['\\Deleted']);
  t.strictSame(await mail.expunge(ann.id, annInbox), [1]);
  t.equal(await refCount(raw), 1, 'still used by bob');
  t.ok((await mail.read(bob.id, bobInbox, 1)).equals(raw), 'bob still reads it');
  t.strictSame(await usageOf(ann), { messages: 0, storageBytes: 0 });
  t.strictSame(await usageOf(bob), { messages: 1, storageBytes: raw.length });
  await mail.copy(bob.id, bobInbox, [1], 'Archive');
  t.equal(await refCount(raw), 2);
  await mail.remove(bob.id, bobInbox, [1]);
  t.equal(await refCount(raw), 1, 'the copy in Archive holds it');
  await mail.remove(bob.id, await bob.folder('Archive'), [1]);
  t.equal(await refCount(raw), null, 'freed with the last reference');
  // Delivered again after being freed: stored afresh.
  t.match(await mail.deliver(raw, [ann.address]), [{ delivered: true, uid: 2 }]);
  t.equal(await refCount(raw), 1);
  await checkInvariants(t);
});

t.test('deleting a mailbox frees its unshared blobs and keeps shared ones', async (t) => {
  const gone = await newMailbox('gone');
  const stays = await newMailbox('stays');
  const shared = message('shared with stays');
  const own = message('own to gone');
  await mail.deliver(shared, [gone.address, stays.address]);
  await mail.append(gone.id, 'INBOX', own);
  await mail.copy(gone.id, await gone.folder('INBOX'), [2], 'Archive');
  t.equal(await refCount(own), 2);
  await services.mailboxes.delete(gone.address, ACTOR);
  t.equal(await refCount(own), null, 'the unshared blob is gone');
  t.equal(await refCount(shared), 1, 'the shared blob stays with one reference');
  t.ok((await mail.read(stays.id, await stays.folder('INBOX'), 1)).equals(shared));
  const [left] = await db.select({ n: sql<number>`count(*)::int` }).from(messages).where(eq(messages.accountId, gone.id));
  t.equal(left!.n, 0, 'no messages left');
  t.equal((await mail.folders.list(gone.id)).length, 0, 'no folders left');
  await checkInvariants(t);
});

t.test('read: whole messages and ranges, byte-exact, whatever the bytes', async (t) => {
  const box = await newMailbox('read');
  const inbox = await box.folder('INBOX');
  const binary = Buffer.concat([
    Buffer.from('Subject: bytes\r\nContent-Type: application/octet-stream\r\n\r\n'),
    Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
    Buffer.from('\r\n\u00e9t\u00e9 \u{1F600}\r\n'),
  ]);
  const malformed = Buffer.from('no header separator at all\nbare LF\rbare CR\x00nul\xff');
  const { uid } = await mail.append(box.id, 'INBOX', binary);
  const bad = await mail.append(box.id, 'INBOX', malformed);
  t.ok((await mail.read(box.id, inbox, uid)).equals(binary), 'the whole message');
  t.ok((await mail.read(box.id, inbox, bad.uid)).equals(malformed), 'malformed MIME reads back as stored');
  t.equal((await mail.list(box.id, inbox)).find((m) => m.uid === bad.uid)!.size, malformed.length);
  const ranges: [number, number][] = [
    [0, 10],
    [5, 1],
    [60, 256],
    [binary.length - 3, 3],
    [binary.length - 3, 100],
    [0, binary.length],
    [binary.length, 10],
    [binary.length + 50, 10],
    [3, 0],
  ];
  for (const [start, length] of ranges) {
    const part = await mail.read(box.id, inbox, uid, { start, length });
    t.ok(part.equals(binary.subarray(start, start + length)), `range ${start}+${length}`);
  }
  await t.rejects(mail.read(box.id, inbox, 99), { code: 'message_not_found' });
  const other = await newMailbox('read-other');
  await t.rejects(mail.read(other.id, inbox, uid), { code: 'message_not_found' }, 'another mailbox cannot read it');
});

t.test('readMany: several messages in one query, by UID; missing ones left out', async (t) => {
  const box = await newMailbox('read-many');
  const inbox = await box.folder('INBOX');
  const raws = [message(), Buffer.from('Subject: bare\n\nbare LF\n.dot\r\n\x00\xff'), message('shared'), message('shared')];
  const uids: number[] = [];
  for (const raw of raws) uids.push((await mail.append(box.id, 'INBOX', raw)).uid);
  const read = await mail.readMany(box.id, inbox, [...uids, 999].reverse());
  t.strictSame([...read.keys()].sort((a, b) => a - b), uids, 'every stored one, the unknown UID left out');
  raws.forEach((raw, i) => t.ok(read.get(uids[i]!)!.equals(raw), `message ${i + 1} byte-exact`));
  t.ok(Buffer.isBuffer(read.get(uids[0]!)), 'as Buffers');
  t.equal((await mail.readMany(box.id, inbox, [])).size, 0, 'nothing asked, nothing read');

  await mail.remove(box.id, inbox, [uids[1]!]);
  t.strictSame([...(await mail.readMany(box.id, inbox, uids)).keys()].sort((a, b) => a - b), [uids[0], uids[2], uids[3]], 'a removed message is left out');
  const other = await newMailbox('read-many-other');
  t.equal((await mail.readMany(other.id, inbox, uids)).size, 0, 'another mailbox reads none of them');
});

t.test('list, hideFromPop3 and indexes', async (t) => {
  const box = await newMailbox('list');
  const inbox = await box.folder('INBOX');
  const when = new Date('2026-01-01T00:00:00.000Z');
  const a = await mail.append(box.id, 'INBOX', message('listed'), { internalDate: when, flags: ['\\Seen'] });
  const b = await mail.append(box.id, 'INBOX', message());
  const list = await mail.list(box.id, inbox);
  t.equal(list.length, 2);
  t.match(list[0], { uid: a.uid, modseq: a.modseq, flags: ['\\Seen'], size: message('listed').length, pop3Hidden: false });
  t.equal(list[0]!.internalDate.toISOString(), when.toISOString());
  t.not(list[0]!.key, list[1]!.key, 'each message its own key');
  await mail.hideFromPop3(box.id, inbox, [b.uid]);
  t.strictSame((await mail.list(box.id, inbox)).map((m) => m.pop3Hidden), [false, true]);
  const indexes = await mail.indexes(box.id, inbox, [a.uid, b.uid, 42]);
  t.strictSame([...indexes.keys()].sort(), [a.uid, b.uid]);
  t.equal(indexes.get(a.uid)!.subject, 'listed');
  t.match(indexes.get(a.uid)!.envelope, { subject: 'listed' });
});

t.test('sessions working on one folder at once: no deadlock, nothing lost, counters exact', async (t) => {
  const box = await newMailbox('busy');
  const inbox = await box.folder('INBOX');
  for (let i = 0; i < 20; i++) await mail.append(box.id, 'INBOX', message());
  const failures: unknown[] = [];
  const attempt = (work: Promise<unknown>) => work.catch((error: unknown) => failures.push(error));
  for (let round = 0; round < 15; round++) {
    const uids = (await mail.list(box.id, inbox)).map((m) => m.uid);
    await Promise.all([
      attempt(mail.changeFlags(box.id, inbox, uids.slice(0, 3), 'add', ['\\Deleted'])),
      attempt(mail.expunge(box.id, inbox)),
      attempt(mail.changeFlags(box.id, inbox, uids, 'add', [`Round${round}`])),
      attempt(mail.changeFlags(box.id, inbox, [...uids].reverse(), 'remove', [`Round${round - 1}`])),
      attempt(mail.move(box.id, inbox, uids.slice(-2), 'Archive')),
      attempt(mail.remove(box.id, inbox, uids.slice(3, 4))),
      attempt(mail.append(box.id, 'INBOX', message())),
      attempt(mail.append(box.id, 'INBOX', message())),
      attempt(mail.changeFlags(box.id, inbox, uids, 'set', ['\\Seen'])),
    ]);
  }
  // The driver's error (deadlock detected, …) is the cause of drizzle's "Failed query".
  const reasons = failures.map((e) => String((e as Error).cause ?? e).split('\n')[0]);
  t.strictSame([...new Set(reasons)], [], 'every operation succeeded');
  await checkInvariants(t);
});

t.test('a client following changesSince while mail arrives misses nothing', async (t) => {
  const box = await newMailbox('follower');
  const inbox = await box.folder('INBOX');
  const seen = new Set<number>();
  let done = false;
  let modseq = 0;
  const follow = async () => {
    const changes = await mail.changesSince(box.id, inbox, modseq);
    for (const m of changes.changed) seen.add(m.uid);
    modseq = changes.highestModseq;
  };
  const follower = (async () => {
    while (!done) await follow();
  })();
  const writers = Array.from({ length: 8 }, async () => {
    for (let i = 0; i < 25; i++) await mail.append(box.id, 'INBOX', message());
  });
  await Promise.all(writers);
  done = true;
  await follower;
  await follow();
  const all = (await mail.list(box.id, inbox)).map((m) => m.uid);
  t.equal(all.length, 200);
  t.strictSame(all.filter((uid) => !seen.has(uid)), [], 'every message was reported by some changesSince');
});
