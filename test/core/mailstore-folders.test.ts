import { createHash } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import t from 'tap';
import type { Actor } from '../../src/core/actor.js';
import { createServices } from '../../src/core/services.js';
import { blobs, messages } from '../../src/db/schema/index.js';
import { freshDatabase } from '../helpers/database.js';

const ACTOR: Actor = { id: 'test', name: 'test', domains: null };
const PASSWORD = 'correct horse battery staple';

const database = await freshDatabase(t);
const services = createServices(database.db, {
  passwordPolicy: { minLength: 10 },
  bootstrapToken: null,
  maxMessageSize: 1024 * 1024,
});
const mail = services.mail;
await services.domains.create({ name: 'folders.test' }, ACTOR);

async function newMailbox(local: string): Promise<number> {
  await services.mailboxes.create({ address: `${local}@folders.test`, password: PASSWORD }, ACTOR);
  return (await services.mailboxes.find(`${local}@folders.test`, ACTOR)).id;
}

function message(subject: string, body = 'Hello there.'): Buffer {
  return Buffer.from(
    [
      'From: Ann <ann@example.com>',
      'To: bob@folders.test',
      `Subject: ${subject}`,
      'Date: Mon, 2 Mar 2026 10:00:00 +0000',
      `Message-ID: <${subject.replace(/\W/g, '')}@example.com>`,
      '',
      body,
      '',
    ].join('\r\n'),
  );
}

async function folderMap(accountId: number) {
  return new Map((await mail.folders.list(accountId)).map((f) => [f.name, f]));
}

async function folderId(accountId: number, name: string): Promise<number> {
  const folder = (await folderMap(accountId)).get(name);
  if (!folder) throw new Error(`no folder ${name}`);
  return folder.id;
}

/** Messages of the folder no session has claimed as \\Recent. */
async function unclaimedRecent(accountId: number, id: number): Promise<number> {
  return (await mail.folders.counts(accountId, [id])).get(id)!.recent;
}

async function usageOf(address: string) {
  return (await services.mailboxes.get(address, ACTOR)).value.usage;
}

async function refCount(raw: Buffer): Promise<number | null> {
  const hash = createHash('sha256').update(raw).digest('hex');
  const [row] = await database.db.select({ refCount: blobs.refCount }).from(blobs).where(eq(blobs.hash, hash));
  return row ? row.refCount : null;
}

t.test('a new mailbox has the six default folders with their special-use attributes', async (t) => {
  const id = await newMailbox('fresh');
  const list = await mail.folders.list(id);
  t.strictSame(
    list.map((f) => [f.name, f.specialUse]).sort(),
    [
      ['Archive', '\\Archive'],
      ['Drafts', '\\Drafts'],
      ['INBOX', null],
      ['Junk', '\\Junk'],
      ['Sent', '\\Sent'],
      ['Trash', '\\Trash'],
    ],
  );
  for (const folder of list) {
    t.equal(folder.uidNext, 1, `${folder.name} starts at UID 1`);
    t.equal(folder.messageCount, 0, `${folder.name} is empty`);
    t.ok(folder.uidValidity > 0, `${folder.name} has a UIDVALIDITY`);
  }
  t.equal(new Set(list.map((f) => f.uidValidity)).size, 6, 'each folder its own UIDVALIDITY');
  const usage = await mail.folders.usage(id);
  t.strictSame(
    usage.map((u) => [u.name, u.messages, u.unseen, u.storageBytes]),
    [
      ['Archive', 0, 0, 0],
      ['Drafts', 0, 0, 0],
      ['INBOX', 0, 0, 0],
      ['Junk', 0, 0, 0],
      ['Sent', 0, 0, 0],
      ['Trash', 0, 0, 0],
    ],
  );
  // Another mailbox's folders are its own.
  const other = await newMailbox('fresh2');
  const otherList = await mail.folders.list(other);
  t.equal(otherList.length, 6);
  t.notOk(otherList.some((f) => list.some((g) => g.id === f.id)), 'no folder shared between mailboxes');
});

t.test('nested folders; renaming a parent carries its children, UIDVALIDITY and messages', async (t) => {
  const id = await newMailbox('nest');
  for (const name of ['Projects', 'Projects/2026', 'Projects/2026/Q1', 'Projects2', 'Projectsx/2026']) {
    const created = await mail.folders.create(id, name);
    t.equal(created.name, name);
    t.equal(created.specialUse, null);
  }
  const raw = message('Nested one');
  const stored = await mail.append(id, 'Projects/2026', raw, { flags: ['\\Seen'] });
  t.equal(stored.uid, 1);
  const before = await folderMap(id);
  await t.rejects(mail.folders.create(id, 'Projects/2026'), { code: 'folder_exists' }, 'an existing name is refused');

  await mail.folders.rename(id, 'Projects', 'Work');
  const after = await folderMap(id);
  t.strictSame(
    [...after.keys()].filter((n) => /^(Projects|Work)/.test(n)).sort(),
    ['Projects2', 'Projectsx/2026', 'Work', 'Work/2026', 'Work/2026/Q1'],
    'children follow; look-alike names stay',
  );
  for (const [oldName, newName] of [
    ['Projects', 'Work'],
    ['Projects/2026', 'Work/2026'],
    ['Projects/2026/Q1', 'Work/2026/Q1'],
  ] as const) {
    t.equal(after.get(newName)!.id, before.get(oldName)!.id, `${newName} is the same folder`);
    t.equal(after.get(newName)!.uidValidity, before.get(oldName)!.uidValidity, `${newName} keeps its UIDVALIDITY`);
  }
  const moved = after.get('Work/2026')!;
  t.equal(moved.uidNext, 2, 'UIDNEXT kept');
  const list = await mail.list(id, moved.id);
  t.strictSame(
    list.map((m) => [m.uid, m.flags]),
    [[1, ['\\Seen']]],
  );
  t.ok((await mail.read(id, moved.id, 1)).equals(raw), 'the message reads back byte-exact after the rename');
  const next = await mail.append(id, 'Work/2026', message('Nested two'));
  t.equal(next.uid, 2, 'new mail goes on with the same UIDs');
  t.equal(next.uidValidity, before.get('Projects/2026')!.uidValidity);
  await t.rejects(mail.append(id, 'Projects/2026', message('x')), { code: 'folder_not_found' }, 'the old name is gone');

  // Moving a folder under another, and refusals.
  await mail.folders.rename(id, 'Work/2026/Q1', 'Archive/Q1');
  t.ok((await folderMap(id)).has('Archive/Q1'));
  await t.rejects(mail.folders.rename(id, 'Work', 'Projects2'), { code: 'folder_exists' }, 'target taken');
  await t.rejects(mail.folders.rename(id, 'Work', 'Work/Inside'), { code: 'invalid_folder_name' }, 'into itself');
  await t.rejects(mail.folders.rename(id, 'Work', 'Work'), { code: 'invalid_folder_name' }, 'onto itself');
  await t.rejects(mail.folders.rename(id, 'Nope', 'Elsewhere'), { code: 'folder_not_found' });
  await t.rejects(mail.folders.rename(id, 'INBOX', 'Old mail'), { code: 'inbox_rename' });
  await t.rejects(mail.folders.rename(id, 'inbox', 'Old mail'), { code: 'inbox_rename' }, 'INBOX in any case');
  await t.rejects(mail.folders.rename(id, 'Work', 'inbox'), { code: 'folder_exists' }, 'nothing can become INBOX');
  const unchanged = await folderMap(id);
  t.ok(unchanged.has('Work') && unchanged.has('Work/2026') && unchanged.has('Projects2'), 'refusals changed nothing');
});

t.test('renaming handles names LIKE and character counting could get wrong', async (t) => {
  const id = await newMailbox('odd');
  for (const name of ['a_b', 'a_b/child', 'axb', 'axb/child', '📁 Mail', '📁 Mail/Sub', 'Ünïcødé', 'Ünïcødé/Ωmega']) {
    await mail.folders.create(id, name);
  }
  await mail.folders.rename(id, 'a_b', 'renamed');
  await mail.folders.rename(id, '📁 Mail', 'Post');
  await mail.folders.rename(id, 'Ünïcødé', 'Plain');
  t.strictSame(
    [...(await folderMap(id)).keys()].filter((n) => !['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash'].includes(n)).sort(),
    ['Plain', 'Plain/Ωmega', 'Post', 'Post/Sub', 'axb', 'axb/child', 'renamed', 'renamed/child'].sort(),
  );
  await t.rejects(mail.folders.rename(id, 'Nothing/Here', 'X'), { code: 'folder_not_found' });
});

t.test('invalid folder names are refused and create nothing', async (t) => {
  const id = await newMailbox('names');
  const before = [...(await folderMap(id)).keys()].sort();
  const invalid = [
    '',
    '/',
    'a//b',
    '/Leading',
    'Trailing/',
    'Tab\there',
    'Nul\u0000',
    'Newline\nhere',
    'Del\u007f',
    'Star*',
    'Per%cent',
    'x'.repeat(256),
    'INBOX/',
  ];
  for (const name of invalid) {
    await t.rejects(mail.folders.create(id, name), { kind: 'invalid', code: 'invalid_folder_name' }, `create ${JSON.stringify(name)}`);
    await t.rejects(mail.folders.rename(id, 'Archive', name), { kind: 'invalid', code: 'invalid_folder_name' }, `rename to ${JSON.stringify(name)}`);
    await t.rejects(mail.append(id, name, message('x')), { kind: 'invalid', code: 'invalid_folder_name' }, `append to ${JSON.stringify(name)}`);
  }
  t.strictSame([...(await folderMap(id)).keys()].sort(), before, 'no folder appeared');
  // The longest allowed level is fine.
  const longest = 'y'.repeat(255);
  t.equal((await mail.folders.create(id, longest)).name, longest);
});

t.test('INBOX is matched case-insensitively, other names are not', async (t) => {
  const id = await newMailbox('inbox');
  await t.rejects(mail.folders.create(id, 'inbox'), { code: 'folder_exists' });
  await t.rejects(mail.folders.create(id, 'InBoX'), { code: 'folder_exists' });
  const sub = await mail.folders.create(id, 'Inbox/Receipts');
  t.equal(sub.name, 'INBOX/Receipts', 'the INBOX part of a child is spelled INBOX');
  await t.rejects(mail.folders.create(id, 'INBOX/Receipts'), { code: 'folder_exists' });
  const a = await mail.append(id, 'inbox', message('lower'));
  const b = await mail.append(id, 'iNbOx/Receipts', message('mixed'));
  const inbox = await folderId(id, 'INBOX');
  t.strictSame((await mail.list(id, inbox)).map((m) => m.uid), [a.uid]);
  t.strictSame((await mail.list(id, sub.id)).map((m) => m.uid), [b.uid]);
  await t.rejects(mail.folders.delete(id, 'inbox'), { code: 'inbox_delete' });
  t.ok((await folderMap(id)).has('INBOX'), 'INBOX is still there');
  // 'Inboxes' only starts with the letters: not INBOX.
  t.equal((await mail.folders.create(id, 'inboxes')).name, 'inboxes');
  t.equal((await mail.folders.create(id, 'sent')).name, 'sent', 'other names are case-sensitive (sent beside Sent)');
});

t.test('deleting a folder with children is refused; without, it goes', async (t) => {
  const id = await newMailbox('del');
  await mail.folders.create(id, 'Parent');
  await mail.folders.create(id, 'Parent/Child');
  await mail.append(id, 'Parent', message('kept while refused'));
  await t.rejects(mail.folders.delete(id, 'Parent'), { kind: 'conflict', code: 'folder_has_children' });
  const still = await folderMap(id);
  t.ok(still.has('Parent') && still.has('Parent/Child'));
  t.equal((await mail.list(id, still.get('Parent')!.id)).length, 1, 'the refused delete kept the messages');
  await t.rejects(mail.folders.delete(id, 'Nope'), { code: 'folder_not_found' });
  await mail.folders.delete(id, 'Parent/Child');
  await mail.folders.delete(id, 'Parent');
  const after = await folderMap(id);
  t.notOk(after.has('Parent') || after.has('Parent/Child'));
  t.strictSame(await usageOf('del@folders.test'), { storageBytes: 0, messages: 0 });
});

t.test('deleting a folder frees its messages, their blob references and the usage', async (t) => {
  const id = await newMailbox('free');
  const shared = message('shared between folders');
  const own = message('only in Old', 'x'.repeat(500));
  await mail.folders.create(id, 'Old');
  const inboxCopy = await mail.append(id, 'INBOX', shared);
  await mail.copy(id, await folderId(id, 'INBOX'), [inboxCopy.uid], 'Old');
  await mail.append(id, 'Old', own);
  t.equal(await refCount(shared), 2);
  t.equal(await refCount(own), 1);
  t.strictSame(await usageOf('free@folders.test'), {
    storageBytes: shared.length * 2 + own.length,
    messages: 3,
  });
  const oldId = await folderId(id, 'Old');
  await mail.folders.delete(id, 'Old');
  t.equal(await refCount(shared), 1, 'the shared blob lost one reference');
  t.equal(await refCount(own), null, 'the unshared blob is gone');
  t.strictSame(await usageOf('free@folders.test'), { storageBytes: shared.length, messages: 1 }, 'usage is exact');
  const [left] = await database.db
    .select({ n: sql<number>`count(*)::int` })
    .from(messages)
    .where(and(eq(messages.accountId, id), eq(messages.folderId, oldId)));
  t.equal(left!.n, 0, 'no message rows left in the deleted folder');
  t.ok((await mail.read(id, await folderId(id, 'INBOX'), inboxCopy.uid)).equals(shared), 'the INBOX copy still reads');
  t.notOk((await mail.folders.usage(id)).some((u) => u.name === 'Old'));
});

t.test('a folder deleted and made again gets a new UIDVALIDITY and starts over', async (t) => {
  const id = await newMailbox('again');
  const first = await mail.folders.create(id, 'Temp');
  await mail.append(id, 'Temp', message('one'));
  await mail.append(id, 'Temp', message('two'));
  await mail.folders.delete(id, 'Temp');
  await t.rejects(mail.changesSince(id, first.id, 0), { code: 'folder_not_found' }, 'the old folder id is gone');
  const second = await mail.folders.create(id, 'Temp');
  t.not(second.uidValidity, first.uidValidity, 'new UIDVALIDITY');
  t.ok(second.uidValidity > first.uidValidity, 'UIDVALIDITY only grows');
  t.not(second.id, first.id);
  const stored = await mail.append(id, 'Temp', message('three'));
  t.equal(stored.uidValidity, second.uidValidity);
  t.equal(stored.uid, 1, 'UIDs start over under the new UIDVALIDITY');
  const changes = await mail.changesSince(id, second.id, 0);
  t.strictSame(changes.expunged, [], 'no tombstones carried over');
  t.strictSame(changes.changed.map((m) => m.uid), [1]);
});

t.test('folder usage counts messages, unseen and bytes per folder', async (t) => {
  const id = await newMailbox('usage');
  const a = message('seen', 'a'.repeat(100));
  const b = message('unseen', 'b'.repeat(200));
  await mail.append(id, 'INBOX', a, { flags: ['\\Seen'] });
  await mail.append(id, 'INBOX', b);
  await mail.append(id, 'Sent', a, { flags: ['\\Seen', '\\Answered'] });
  const usage = new Map((await mail.folders.usage(id)).map((u) => [u.name, u]));
  t.match(usage.get('INBOX'), { messages: 2, unseen: 1, storageBytes: a.length + b.length, specialUse: null });
  t.match(usage.get('Sent'), { messages: 1, unseen: 0, storageBytes: a.length, specialUse: '\\Sent' });
  t.match(usage.get('Trash'), { messages: 0, unseen: 0, storageBytes: 0 });
  t.strictSame(await usageOf('usage@folders.test'), { storageBytes: 2 * a.length + b.length, messages: 3 });
});

t.test('\\Recent is claimed once: disjoint ranges, even for concurrent claims; peeking takes nothing', async (t) => {
  const accountId = await newMailbox('recent');
  const inbox = await mail.folders.get(accountId, 'INBOX');
  for (let i = 1; i <= 3; i++) await mail.append(accountId, 'INBOX', message(`recent ${i}`));
  t.equal(await unclaimedRecent(accountId, inbox.id), 3);
  t.same(await mail.folders.claimRecent(accountId, inbox.id, 4, true), { from: 1, to: 4 }, 'a peek sees all three');
  t.same(await mail.folders.claimRecent(accountId, inbox.id, 3), { from: 1, to: 3 }, 'UIDs 1 and 2 claimed');
  t.equal(await unclaimedRecent(accountId, inbox.id), 1);
  const rowVersion = async () =>
    ((await database.db.execute(sql`select xmin::text as version from folders where id = ${inbox.id}`)) as unknown as { rows: { version: string }[] }).rows[0]!.version;
  const before = await rowVersion();
  t.same(await mail.folders.claimRecent(accountId, inbox.id, 2), { from: 3, to: 3 }, 'below the mark: nothing');
  t.equal(await rowVersion(), before, 'and nothing written: the folder row is the same version');
  t.same(await mail.folders.claimRecent(accountId, inbox.id, 4, true), { from: 3, to: 4 });
  for (let i = 4; i <= 30; i++) await mail.append(accountId, 'INBOX', message(`recent ${i}`));
  const claims = await Promise.all(Array.from({ length: 8 }, () => mail.folders.claimRecent(accountId, inbox.id, 31)));
  const won = claims.filter((claim) => claim.to > claim.from);
  t.same(won, [{ from: 3, to: 31 }], 'one concurrent claim gets the range, the others nothing');
  t.equal(await unclaimedRecent(accountId, inbox.id), 0);
  await t.rejects(mail.folders.claimRecent(accountId, 999_999, 5), { code: 'folder_not_found' });
  await t.rejects(mail.folders.claimRecent(accountId, 999_999, 5, true), { code: 'folder_not_found' });
});

t.test('renaming INBOX keeps what was claimed: the moved mail is not \\Recent again', async (t) => {
  const accountId = await newMailbox('recentrename');
  const inbox = await mail.folders.get(accountId, 'INBOX');
  for (let i = 1; i <= 2; i++) await mail.append(accountId, 'INBOX', message(`moved ${i}`));
  await mail.folders.claimRecent(accountId, inbox.id, 2);
  const renamed = await mail.folders.renameInbox(accountId, 'Old mail');
  t.equal(renamed.recentUid, 2);
  t.equal(await unclaimedRecent(accountId, renamed.id), 1);
});

t.test('counts: unseen and unclaimed \\Recent of several folders in one call, zero for empty ones', async (t) => {
  const accountId = await newMailbox('counts');
  await mail.append(accountId, 'INBOX', message('one'), { flags: ['\\Seen'] });
  await mail.append(accountId, 'INBOX', message('two'));
  await mail.append(accountId, 'Sent', message('three'));
  const [inbox, sent, drafts] = await Promise.all(['INBOX', 'Sent', 'Drafts'].map((name) => folderId(accountId, name)));
  await mail.folders.claimRecent(accountId, inbox!, 2);
  const counts = await mail.folders.counts(accountId, [inbox!, sent!, drafts!]);
  t.strictSame(Object.fromEntries(counts), {
    [inbox!]: { unseen: 1, recent: 1 },
    [sent!]: { unseen: 1, recent: 1 },
    [drafts!]: { unseen: 0, recent: 0 },
  });
  t.strictSame(Object.fromEntries(await mail.folders.counts(accountId, [])), {}, 'nothing asked, nothing read');
  const other = await newMailbox('counts2');
  t.strictSame(Object.fromEntries(await mail.folders.counts(other, [inbox!])), { [inbox!]: { unseen: 0, recent: 0 } }, "another mailbox's folders count nothing");
});

t.test('subscriptions: new folders subscribed, kept after DELETE, moved by RENAME, unsubscribed after the folder is gone', async (t) => {
  const accountId = await newMailbox('subs');
  const subscribed = async () => (await mail.folders.tree(accountId)).subscribed.sort();
  t.strictSame(await subscribed(), ['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash'], 'the defaults are subscribed');
  await mail.folders.create(accountId, 'Old/Child');
  await mail.folders.create(accountId, 'Old');
  await mail.folders.subscribe(accountId, 'Junk', false);
  await mail.folders.rename(accountId, 'Old', 'New');
  t.strictSame(await subscribed(), ['Archive', 'Drafts', 'INBOX', 'New', 'New/Child', 'Sent', 'Trash']);
  await mail.folders.delete(accountId, 'New/Child');
  const tree = await mail.folders.tree(accountId);
  t.ok(tree.subscribed.includes('New/Child'), 'the subscription outlives the folder (RFC 3501 §6.3.6)');
  t.notOk(tree.folders.some((f) => f.name === 'New/Child'));
  await t.rejects(mail.folders.subscribe(accountId, 'Nowhere', true), { code: 'folder_not_found' }, 'only folders that exist can be subscribed');
  await mail.folders.subscribe(accountId, 'New/Child', false);
  await t.rejects(mail.folders.subscribe(accountId, 'New/Child', false), { code: 'folder_not_found' }, 'neither subscribed nor a folder');
  await mail.folders.subscribe(accountId, 'Junk', false);
  t.pass('unsubscribing a folder that exists is idempotent');
  await mail.folders.create(accountId, 'New/Child');
  await mail.folders.renameInbox(accountId, 'Saved');
  t.strictSame(await subscribed(), ['Archive', 'Drafts', 'INBOX', 'New', 'New/Child', 'Saved', 'Sent', 'Trash']);
  await t.rejects(mail.folders.create(accountId, 'Bad\u0085name'), { code: 'invalid_folder_name' }, 'C1 controls are refused');
  await t.rejects(mail.folders.create(accountId, 'Bad\u2028name'), { code: 'invalid_folder_name' }, 'line separators are refused');
});
