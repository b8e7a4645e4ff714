import type { PGlite } from '@electric-sql/pglite';
import { and, eq } from 'drizzle-orm';
import pg from 'pg';
import t from 'tap';
import type { Actor } from '../../src/core/actor.js';
import { type Change, CHANGE_CHANNEL } from '../../src/core/events/changes.js';
import { createServices } from '../../src/core/services.js';
import { connect } from '../../src/db/client.js';
import { folders } from '../../src/db/schema/index.js';
import { freshDatabaseUrl } from '../helpers/database.js';

const ACTOR: Actor = { id: 'test', name: 'test', domains: null };
const PASSWORD = 'correct horse battery staple';

// The database by hand (as freshDatabase does) because the listener needs its URL.
const url = await freshDatabaseUrl(t);
const database = await connect({ databaseUrl: url, dataDir: 'memory://', poolSize: 10 });
await database.migrate();
t.teardown(() => database.close());
const db = database.db;
const services = createServices(db, { passwordPolicy: { minLength: 10 }, bootstrapToken: null, maxMessageSize: 1024 * 1024 });
const mail = services.mail;

interface Heard {
  change: Change;
  /** For message changes: whether the folder's HIGHESTMODSEQ had reached the change's when it arrived. */
  visible: boolean | null;
}

const heard: Heard[] = [];
const waiters: (() => void)[] = [];

/** Whether the change is already readable by whoever reacts to the notification: it was committed. */
async function visibleNow(change: Change, read: (accountId: number, folderId: number) => Promise<number | null>) {
  if (change.kind !== 'messages') return null;
  const highest = await read(change.accountId, change.folderId);
  return highest !== null && highest >= change.modseq;
}

async function onPayload(payload: string, read: (accountId: number, folderId: number) => Promise<number | null>) {
  const change = JSON.parse(payload) as Change;
  heard.push({ change, visible: await visibleNow(change, read) });
  for (const wake of waiters.splice(0)) wake();
}

if (database.mode === 'postgres') {
  // A plain client of its own, as another gateway process would have.
  const listener = new pg.Client({ connectionString: url! });
  await listener.connect();
  t.teardown(() => listener.end());
  const read = async (accountId: number, folderId: number) => {
    const result = await listener.query('select highest_modseq from folders where account_id = $1 and id = $2', [accountId, folderId]);
    return result.rows[0] ? Number(result.rows[0].highest_modseq) : null;
  };
  // Serialised, so `heard` keeps the order the notifications came in.
  let chain = Promise.resolve();
  listener.on('notification', (message) => {
    if (message.channel === CHANGE_CHANNEL) chain = chain.then(() => onPayload(message.payload ?? 'null', read));
  });
  await listener.query(`listen ${CHANGE_CHANNEL}`);
} else {
  // Embedded: PGlite's own listen, the same channel.
  const client = (db as unknown as { $client: PGlite }).$client;
  const read = async (accountId: number, folderId: number) => {
    const [row] = await db
      .select({ m: folders.highestModseq })
      .from(folders)
      .where(and(eq(folders.accountId, accountId), eq(folders.id, folderId)));
    return row ? row.m : null;
  };
  let chain = Promise.resolve();
  const unsubscribe = await client.listen(CHANGE_CHANNEL, (payload) => {
    chain = chain.then(() => onPayload(payload, read));
  });
  t.teardown(() => unsubscribe());
}

/** Everything heard from now until `count` more notifications arrived (or the time is up). */
async function collect<T>(count: number, action: () => Promise<T>, timeoutMs = 5000): Promise<{ value: T; changes: Heard[] }> {
  const start = heard.length;
  const value = await action();
  const deadline = Date.now() + timeoutMs;
  while (heard.length - start < count && Date.now() < deadline) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
      waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  return { value, changes: heard.slice(start) };
}

/**
 * Proves `action` publishes nothing: a sentinel change made after it must be the next one
 * heard (notifications arrive in commit order on one listener).
 */
async function silent(action: () => Promise<unknown>, sentinelAccount: number): Promise<Heard[]> {
  const start = heard.length;
  await action().catch(() => {});
  const name = `Sentinel ${heard.length}-${Math.random().toString(36).slice(2)}`;
  await collect(1, () => mail.folders.create(sentinelAccount, name));
  return heard.slice(start, heard.length - 1);
}

await services.domains.create({ name: 'feed.test' }, ACTOR);
async function newMailbox(local: string) {
  const address = `${local}@feed.test`;
  await services.mailboxes.create({ address, password: PASSWORD }, ACTOR);
  const { id } = await services.mailboxes.find(address, ACTOR);
  const map = new Map((await mail.folders.list(id)).map((f) => [f.name, f.id]));
  return { id, address, folder: (name: string) => map.get(name)! };
}
const ann = await newMailbox('ann');
const bob = await newMailbox('bob');
const watcher = await newMailbox('watcher');

function message(subject: string): Buffer {
  return Buffer.from(`From: x@example.com\r\nSubject: ${subject}\r\n\r\nbody\r\n`);
}

t.test('a delivery publishes one messages change per mailbox, readable when it arrives', async (t) => {
  const { value: results, changes } = await collect(2, () => mail.deliver(message('feed 1'), [ann.address, bob.address]));
  t.match(results, [{ delivered: true }, { delivered: true }]);
  const annModseq = (await mail.list(ann.id, ann.folder('INBOX')))[0]!.modseq;
  const bobModseq = (await mail.list(bob.id, bob.folder('INBOX')))[0]!.modseq;
  t.strictSame(
    changes.map((h) => h.change),
    [
      { kind: 'messages', accountId: ann.id, folderId: ann.folder('INBOX'), modseq: annModseq },
      { kind: 'messages', accountId: bob.id, folderId: bob.folder('INBOX'), modseq: bobModseq },
    ].sort((a, b) => a.accountId - b.accountId),
  );
  t.ok(changes.every((h) => h.visible === true), 'the listener could read the new MODSEQ as soon as it heard of it');
});

t.test('flag changes, expunge, copy and move publish; no-ops and refusals do not', async (t) => {
  const inbox = ann.folder('INBOX');
  const flagged = await collect(1, () => mail.changeFlags(ann.id, inbox, [1], 'add', ['\\Seen', '\\Deleted']));
  t.strictSame(flagged.changes.map((h) => h.change), [
    { kind: 'messages', accountId: ann.id, folderId: inbox, modseq: flagged.value.changed[0]!.modseq },
  ]);
  t.strictSame(await silent(() => mail.changeFlags(ann.id, inbox, [1], 'add', ['\\Seen']), watcher.id), [], 'a no-op flag change');
  t.strictSame(await silent(() => mail.changeFlags(ann.id, inbox, [1], 'add', ['\\Bogus']), watcher.id), [], 'a refused flag');

  const copied = await collect(1, () => mail.copy(ann.id, inbox, [1], 'Archive'));
  const archiveModseq = (await mail.changesSince(ann.id, ann.folder('Archive'), 0)).highestModseq;
  t.strictSame(copied.changes.map((h) => h.change), [
    { kind: 'messages', accountId: ann.id, folderId: ann.folder('Archive'), modseq: archiveModseq },
  ]);

  const moved = await collect(2, () => mail.move(ann.id, ann.folder('Archive'), [1], 'Trash'));
  t.strictSame(
    moved.changes.map((h) => [h.change.kind, 'folderId' in h.change ? h.change.folderId : null]),
    [
      ['messages', ann.folder('Trash')],
      ['messages', ann.folder('Archive')],
    ],
    'move: the target gains, the source loses',
  );
  t.ok(moved.changes.every((h) => h.visible === true));

  const expunged = await collect(1, () => mail.expunge(ann.id, inbox));
  t.strictSame(expunged.value, [1]);
  const after = await mail.changesSince(ann.id, inbox, 0);
  t.strictSame(expunged.changes.map((h) => h.change), [{ kind: 'messages', accountId: ann.id, folderId: inbox, modseq: after.highestModseq }]);
  t.strictSame(await silent(() => mail.expunge(ann.id, inbox), watcher.id), [], 'nothing to expunge');
  t.strictSame(await silent(() => mail.move(ann.id, inbox, [1], 'INBOX'), watcher.id), [], 'a refused move');
});

t.test('a delivery that rolls back publishes nothing, not even for the recipient placed first', async (t) => {
  t.ok(ann.id < bob.id, 'ann is placed first');
  const bobInbox = await mail.folders.get(bob.id, 'INBOX');
  await collect(1, () => mail.deliver(message('first for bob'), [bob.address]));
  // A fault after ann's message is placed: bob's next UID is taken, so his insert fails.
  await db.update(folders).set({ uidNext: bobInbox.uidNext }).where(and(eq(folders.accountId, bob.id), eq(folders.id, bobInbox.id)));
  const annBefore = await mail.folders.get(ann.id, 'INBOX');
  const heardNothing = await silent(
    () => t.rejects(mail.deliver(message('rolled back'), [ann.address, bob.address]), { cause: { code: '23505' } }),
    watcher.id,
  );
  t.strictSame(heardNothing, []);
  t.equal((await mail.folders.get(ann.id, 'INBOX')).uidNext, annBefore.uidNext, 'nothing of it stayed for ann');
  const over = await newMailbox('full');
  await services.mailboxes.update(over.address, { quota: { messages: 0 } }, ACTOR);
  t.strictSame(await silent(() => mail.deliver(message('refused'), [over.address]), watcher.id), [], 'a refused delivery');
});

t.test('folder create, rename and delete publish a folders change', async (t) => {
  for (const [label, action] of [
    ['create', () => mail.folders.create(bob.id, 'Feed')],
    ['rename', () => mail.folders.rename(bob.id, 'Feed', 'Fed')],
    ['delete', () => mail.folders.delete(bob.id, 'Fed')],
  ] as const) {
    const { changes } = await collect(1, action as () => Promise<unknown>);
    t.strictSame(changes.map((h) => h.change), [{ kind: 'folders', accountId: bob.id }], label);
  }
  t.strictSame(await silent(() => mail.folders.create(bob.id, 'INBOX'), watcher.id), [], 'a refused create');
});

t.test('account changes publish their reason: protocols, suspension, password, deletion', async (t) => {
  const carl = await newMailbox('carl');
  const expect = async (label: string, action: () => Promise<unknown>, reasons: string[]) => {
    const { changes } = await collect(reasons.length, action);
    t.strictSame(
      changes.map((h) => h.change),
      reasons.map((reason) => ({ kind: 'account', accountId: carl.id, reason })),
      label,
    );
  };
  await expect('IMAP switched off', () => services.mailboxes.update(carl.address, { protocols: { imap: false } }, ACTOR), ['protocols']);
  await expect('suspended', () => services.mailboxes.update(carl.address, { status: 'suspended' }, ACTOR), ['suspended']);
  await expect('unsuspended', () => services.mailboxes.update(carl.address, { status: 'active' }, ACTOR), ['suspended']);
  await expect('password set', () => services.mailboxes.setPassword(carl.address, { password: 'another good passphrase' }, ACTOR), ['password']);
  t.strictSame(
    await silent(() => services.mailboxes.update(carl.address, { displayName: 'Carl' }, ACTOR), watcher.id),
    [],
    'a display name change is not a session matter',
  );
  t.strictSame(
    await silent(() => services.mailboxes.update(carl.address, { protocols: { imap: false } }, ACTOR), watcher.id),
    [],
    'an update that changes nothing',
  );
  await expect('deleted', () => services.mailboxes.delete(carl.address, ACTOR), ['deleted']);
});
