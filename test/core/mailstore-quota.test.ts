import { createHash } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import t, { type Test } from 'tap';
import type { Actor } from '../../src/core/actor.js';
import { DomainError } from '../../src/core/errors.js';
import type { MailboxChange } from '../../src/core/mailboxes/service.js';
import { createServices } from '../../src/core/services.js';
import { accounts, blobs, messages } from '../../src/db/schema/index.js';
import { freshDatabase } from '../helpers/database.js';

const ACTOR: Actor = { id: 'test', name: 'test', domains: null };
const PASSWORD = 'correct horse battery staple';
const MAX_SIZE = 64 * 1024;

const database = await freshDatabase(t);
const db = database.db;
const services = createServices(db, { passwordPolicy: { minLength: 10 }, bootstrapToken: null, maxMessageSize: MAX_SIZE });
const mail = services.mail;
await services.domains.create({ name: 'quota.test' }, ACTOR);
await services.domains.create({ name: 'strict.test', suspendedDelivery: 'reject' }, ACTOR);

interface Box {
  id: number;
  address: string;
  inbox: number;
}

async function newMailbox(address: string, settings: MailboxChange = {}): Promise<Box> {
  await services.mailboxes.create({ address, password: PASSWORD, ...settings }, ACTOR);
  const { id } = await services.mailboxes.find(address, ACTOR);
  const inbox = (await mail.folders.list(id)).find((f) => f.name === 'INBOX')!.id;
  return { id, address, inbox };
}

let counter = 0;
function message(size = 200): Buffer {
  const head = `From: ann@example.com\r\nTo: x@quota.test\r\nSubject: Quota ${++counter}\r\n\r\n`;
  return Buffer.from(head + 'q'.repeat(Math.max(0, size - head.length)));
}

const hashOf = (raw: Buffer) => createHash('sha256').update(raw).digest('hex');

async function refCount(raw: Buffer): Promise<number | null> {
  const [row] = await db.select({ refCount: blobs.refCount }).from(blobs).where(eq(blobs.hash, hashOf(raw)));
  return row ? row.refCount : null;
}

async function usageOf(box: Box) {
  return (await services.mailboxes.get(box.address, ACTOR)).value.usage;
}

/** The account's counters and what its message rows really add up to. */
async function counters(box: Box) {
  const [account] = await db
    .select({ bytes: accounts.usedBytes, messages: accounts.usedMessages })
    .from(accounts)
    .where(eq(accounts.id, box.id));
  const [rows] = await db
    .select({ messages: sql<number>`count(*)::int`, bytes: sql<number>`coalesce(sum(${messages.size}), 0)`.mapWith(Number) })
    .from(messages)
    .where(eq(messages.accountId, box.id));
  return { counted: account!, stored: rows! };
}

async function assertExact(t: Test, box: Box, label: string) {
  const { counted, stored } = await counters(box);
  t.strictSame(counted, { bytes: stored.bytes, messages: stored.messages }, `${label}: counters equal the stored messages`);
  return stored;
}

t.test('deliver answers per recipient: unknown, over quota by bytes and by count, suspended', async (t) => {
  const ok = await newMailbox('ok@quota.test');
  const bytesFull = await newMailbox('bytes@quota.test', { quota: { storageBytes: 1000, messages: null } });
  const countFull = await newMailbox('count@quota.test', { quota: { storageBytes: null, messages: 1 } });
  const keeps = await newMailbox('keeps@quota.test');
  const rejects = await newMailbox('rejects@strict.test');
  await services.mailboxes.update(keeps.address, { status: 'suspended' }, ACTOR);
  await services.mailboxes.update(rejects.address, { status: 'suspended' }, ACTOR);
  t.match(await mail.deliver(message(900), [bytesFull.address, countFull.address]), [{ delivered: true }, { delivered: true }]);

  const raw = message(300);
  const recipients = [
    'ok@quota.test',
    'nobody@quota.test',
    'someone@unknown-domain.test',
    'not an address',
    'bytes@quota.test',
    'count@quota.test',
    'keeps@quota.test',
    'rejects@strict.test',
  ];
  const results = await mail.deliver(raw, recipients);
  t.equal(results.length, recipients.length, 'one answer per recipient, in order');
  t.strictSame(results.map((r) => r.recipient), recipients);
  const outcome = (i: number) => {
    const r = results[i]!;
    return r.delivered ? 'delivered' : `${r.error.kind}:${r.error.code}`;
  };
  t.strictSame(
    recipients.map((_, i) => outcome(i)),
    [
      'delivered',
      'not_found:mailbox_not_found',
      'not_found:mailbox_not_found',
      'not_found:mailbox_not_found',
      'quota_exceeded:quota_exceeded',
      'quota_exceeded:quota_exceeded',
      'delivered',
      'forbidden:mailbox_suspended',
    ],
  );
  for (const r of results) if (!r.delivered) t.type(r.error, DomainError);
  t.match(results[4], { error: { details: { quota: 'storage', limit: 1000, used: 900 } } }, 'bytes quota named');
  t.match(results[5], { error: { details: { quota: 'messages', limit: 1 } } }, 'message quota named');
  t.match(results[0], { delivered: true, uid: 1, size: raw.length });
  t.match(results[6], { delivered: true, uid: 1, size: raw.length }, 'a suspended mailbox of a `receive` domain still receives');
  t.equal(await refCount(raw), 2, 'one blob for the two delivered copies');
  t.strictSame(await usageOf(ok), { storageBytes: raw.length, messages: 1 });
  t.strictSame(await usageOf(keeps), { storageBytes: raw.length, messages: 1 });
  t.strictSame(await usageOf(bytesFull), { storageBytes: 900, messages: 1 }, 'the full mailbox is untouched');
  t.strictSame(await usageOf(rejects), { storageBytes: 0, messages: 0 });
  for (const box of [ok, bytesFull, countFull, keeps, rejects]) await assertExact(t, box, box.address);

  // The same domain switched to `reject`, and back.
  await services.domains.update('quota.test', { suspendedDelivery: 'reject' }, ACTOR);
  t.match(await mail.deliver(message(), [keeps.address, ok.address]), [
    { delivered: false, error: { code: 'mailbox_suspended' } },
    { delivered: true },
  ]);
  await services.domains.update('quota.test', { suspendedDelivery: 'receive' }, ACTOR);
  t.match(await mail.deliver(message(), [keeps.address]), [{ delivered: true, uid: 2 }]);
  // An active mailbox of a `reject` domain receives.
  const active = await newMailbox('active@strict.test');
  t.match(await mail.deliver(message(), [active.address]), [{ delivered: true }]);
});

t.test('nothing delivered: no blob stored', async (t) => {
  const raw = message();
  const results = await mail.deliver(raw, ['ghost@quota.test', 'rejects@strict.test']);
  t.notOk(results.some((r) => r.delivered));
  t.equal(await refCount(raw), null);
  t.strictSame(await mail.deliver(message(), []), [], 'no recipients, no answers');
});

t.test('duplicate recipients get one copy; one blob however many recipients', async (t) => {
  const boxes = await Promise.all(['d1', 'd2', 'd3'].map((l) => newMailbox(`${l}@quota.test`)));
  const raw = message(500);
  const results = await mail.deliver(raw, ['d1@quota.test', 'D1@Quota.TEST', ' d1@quota.test ', 'd2@quota.test', 'd3@quota.test', 'd2@quota.test']);
  t.ok(results.every((r) => r.delivered), 'every recipient answered delivered');
  t.equal(new Set(results.slice(0, 3).map((r) => (r.delivered ? r.uid : -1))).size, 1, 'the spellings of d1 got the same UID');
  t.strictSame(
    await Promise.all(boxes.map(async (b) => (await mail.list(b.id, b.inbox)).length)),
    [1, 1, 1],
    'each mailbox holds the message once',
  );
  t.equal(await refCount(raw), 3, 'one blob referenced by three messages');
  const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(blobs).where(eq(blobs.hash, hashOf(raw)));
  t.equal(row!.n, 1);
  for (const box of boxes) {
    t.strictSame(await usageOf(box), { storageBytes: raw.length, messages: 1 }, `${box.address} counted once`);
    t.ok((await mail.read(box.id, box.inbox, 1)).equals(raw));
  }
  // The same bytes delivered again to one of them: a second message, the same blob.
  await mail.deliver(raw, ['d1@quota.test']);
  t.equal(await refCount(raw), 4);
});

t.test('delivery into a named folder; a mailbox without that folder fails alone', async (t) => {
  const a = await newMailbox('folder-a@quota.test');
  const b = await newMailbox('folder-b@quota.test');
  await mail.folders.create(a.id, 'Lists');
  const raw = message();
  t.match(await mail.deliver(raw, [a.address], 'Lists'), [{ delivered: true, uid: 1 }]);
  const second = message();
  t.match(await mail.deliver(second, [b.address, a.address], 'Lists'), [
    { recipient: b.address, delivered: false, error: { code: 'folder_not_found', message: 'There is no folder Lists' } },
    { recipient: a.address, delivered: true, uid: 2 },
  ]);
  t.strictSame(await usageOf(a), { storageBytes: raw.length + second.length, messages: 2 });
  t.strictSame(await usageOf(b), { storageBytes: 0, messages: 0 });
  t.equal(await refCount(second), 1, 'one reference: the message b did not get');
  await assertExact(t, a, 'a');
});

t.test('message_too_large: the size limit holds on every way in', async (t) => {
  const box = await newMailbox('large@quota.test');
  const exact = message(MAX_SIZE);
  t.equal(exact.length, MAX_SIZE);
  t.match(await mail.deliver(exact, [box.address]), [{ delivered: true }], 'exactly the limit is accepted');
  const over = message(MAX_SIZE + 1);
  await t.rejects(mail.deliver(over, [box.address]), { kind: 'invalid', code: 'message_too_large', details: { maxSize: MAX_SIZE } });
  await t.rejects(mail.append(box.id, 'INBOX', over), { code: 'message_too_large' });
  t.equal(await refCount(over), null);
  t.strictSame(await usageOf(box), { storageBytes: MAX_SIZE, messages: 1 });
});

t.test('a quota lowered below the usage keeps the mail and refuses new mail on every way in', async (t) => {
  const box = await newMailbox('lowered@quota.test', { quota: { storageBytes: 10_000, messages: 10 } });
  const stored = [message(1000), message(1000), message(1000)];
  for (const raw of stored) t.match(await mail.deliver(raw, [box.address]), [{ delivered: true }]);
  await services.mailboxes.update(box.address, { quota: { storageBytes: 1500 } }, ACTOR);
  t.strictSame(await usageOf(box), { storageBytes: 3000, messages: 3 }, 'the mail stays');
  t.equal((await mail.list(box.id, box.inbox)).length, 3);
  t.match(await mail.deliver(message(10), [box.address]), [{ delivered: false, error: { code: 'quota_exceeded' } }]);
  await t.rejects(mail.append(box.id, 'INBOX', message(10)), { kind: 'quota_exceeded', code: 'quota_exceeded', details: { quota: 'storage' } });
  await t.rejects(mail.copy(box.id, box.inbox, [1], 'Archive'), { kind: 'quota_exceeded', code: 'quota_exceeded' });
  // A move adds nothing: allowed even over quota.
  const moved = await mail.move(box.id, box.inbox, [1], 'Archive');
  t.strictSame(moved.pairs, [[1, 1]]);
  // Flags still change; reading still works.
  await mail.changeFlags(box.id, box.inbox, [2, 3], 'add', ['\\Deleted']);
  t.ok((await mail.read(box.id, box.inbox, 2)).equals(stored[1]!));
  t.strictSame(await usageOf(box), { storageBytes: 3000, messages: 3 });
  t.strictSame(await mail.expunge(box.id, box.inbox), [2, 3]);
  t.strictSame(await usageOf(box), { storageBytes: 1000, messages: 1 });
  t.match(await mail.deliver(message(500), [box.address]), [{ delivered: true }], 'room again after the expunge');
  t.match(await mail.deliver(message(1), [box.address]), [{ delivered: false }], '1500 reached');

  // The message count quota the same way.
  await services.mailboxes.update(box.address, { quota: { storageBytes: null, messages: 1 } }, ACTOR);
  t.match(await mail.deliver(message(10), [box.address]), [{ delivered: false, error: { details: { quota: 'messages' } } }]);
  await t.rejects(mail.append(box.id, 'Drafts', message(10)), { code: 'quota_exceeded', details: { quota: 'messages', limit: 1, used: 2 } });
  await services.mailboxes.update(box.address, { quota: { messages: null } }, ACTOR);
  t.match(await mail.deliver(message(10), [box.address]), [{ delivered: true }], 'unlimited again');
  await assertExact(t, box, 'lowered');
});

t.test('copy counts against the quota and is refused whole when over', async (t) => {
  const box = await newMailbox('copyq@quota.test', { quota: { storageBytes: 3500, messages: null } });
  const a = message(1000);
  const b = message(1000);
  await mail.append(box.id, 'INBOX', a);
  await mail.append(box.id, 'INBOX', b);
  await t.rejects(mail.copy(box.id, box.inbox, [1, 2], 'Archive'), { kind: 'quota_exceeded', code: 'quota_exceeded', details: { quota: 'storage', limit: 3500, used: 2000 } });
  t.equal(await refCount(a), 1, 'a refused copy adds no reference');
  t.equal(await refCount(b), 1);
  t.strictSame(await usageOf(box), { storageBytes: 2000, messages: 2 });
  const one = await mail.copy(box.id, box.inbox, [1], 'Archive');
  t.strictSame(one.pairs, [[1, 1]], 'one fits');
  t.strictSame(await usageOf(box), { storageBytes: 3000, messages: 3 });
  t.equal(await refCount(a), 2);
  await assertExact(t, box, 'copy');
});

t.test('50 concurrent deliveries to a mailbox one message short of its limit store exactly one', async (t) => {
  for (const [label, quota] of [
    ['message count', { storageBytes: null, messages: 6 }],
    ['storage bytes', { storageBytes: 5 * 400 + 400, messages: null }],
  ] as const) {
    const box = await newMailbox(`race-${label.replace(' ', '-')}@quota.test`, { quota });
    for (let i = 0; i < 5; i++) t.match(await mail.deliver(message(400), [box.address]), [{ delivered: true }]);
    const contenders = Array.from({ length: 50 }, () => message(400));
    const results = await Promise.all(contenders.map((raw) => mail.deliver(raw, [box.address])));
    const winners = results.filter(([r]) => r!.delivered);
    t.equal(winners.length, 1, `${label}: exactly one delivered`);
    t.ok(
      results.every(([r]) => r!.delivered || r!.error.code === 'quota_exceeded'),
      `${label}: every other one answered over quota`,
    );
    const stored = await assertExact(t, box, label);
    t.equal(stored.messages, 6);
    t.equal(stored.bytes, 6 * 400);
    t.strictSame(
      (await mail.list(box.id, box.inbox)).map((m) => m.uid),
      [1, 2, 3, 4, 5, 6],
      `${label}: UIDs without gaps`,
    );
    const refs = await Promise.all(contenders.map(refCount));
    t.equal(refs.filter((n) => n === 1).length, 1, `${label}: only the winner's blob is stored`);
    t.equal(refs.filter((n) => n === null).length, 49, `${label}: the losers left no blob`);
  }
});

t.test('concurrent deliveries and expunges keep counters and references exact', async (t) => {
  const boxes = await Promise.all(['c1', 'c2', 'c3'].map((l) => newMailbox(`${l}@quota.test`, { quota: { storageBytes: null, messages: 20 } })));
  const shared = Array.from({ length: 10 }, () => message(300));
  const work: Promise<unknown>[] = [];
  // Half of them name the recipients in the opposite order: the account locks must not deadlock.
  shared.forEach((raw, i) => work.push(mail.deliver(raw, (i % 2 ? [...boxes].reverse() : boxes).map((b) => b.address))));
  for (let i = 0; i < 10; i++) work.push(mail.deliver(shared[i % 3]!, [boxes[i % 3]!.address]));
  await Promise.all(work);
  const more: Promise<unknown>[] = [];
  for (const box of boxes) {
    more.push(
      (async () => {
        const uids = (await mail.list(box.id, box.inbox)).map((m) => m.uid).filter((uid) => uid % 2 === 0);
        await mail.changeFlags(box.id, box.inbox, uids, 'add', ['\\Deleted']);
        await mail.expunge(box.id, box.inbox);
      })(),
    );
    for (const raw of shared.slice(0, 5)) more.push(mail.deliver(raw, [box.address]));
  }
  await Promise.all(more);
  for (const box of boxes) await assertExact(t, box, box.address);
  const references = await db
    .select({ hash: messages.blobHash, n: sql<number>`count(*)::int` })
    .from(messages)
    .groupBy(messages.blobHash);
  const stored = await db.select({ hash: blobs.hash, refCount: blobs.refCount }).from(blobs);
  t.strictSame(
    stored.map((b) => [b.hash, b.refCount]).sort(),
    references.map((r) => [r.hash, r.n]).sort(),
    'ref_count equals the messages using each blob, and no unused blob is left',
  );
});

t.test('a blob freed by one mailbox while another receives the same bytes stays consistent', async (t) => {
  const giver = await newMailbox('free-a@quota.test');
  const taker = await newMailbox('free-b@quota.test');
  const raw = message(700);
  for (let round = 0; round < 20; round++) {
    const [delivered] = await mail.deliver(raw, [giver.address]);
    if (!delivered?.delivered) throw new Error('setup delivery failed');
    // The giver drops its only copy (ref_count to 0, the blob row deleted) while the taker's
    // delivery of the same bytes inserts or re-references that row.
    const [removed, results] = await Promise.all([
      mail.remove(giver.id, giver.inbox, [delivered.uid]),
      mail.deliver(raw, [taker.address]),
    ]);
    t.strictSame(removed, [delivered.uid]);
    t.match(results, [{ delivered: true }]);
  }
  t.equal(await refCount(raw), 20, 'the taker’s twenty copies hold the blob');
  const stored = await assertExact(t, taker, 'taker');
  t.equal(stored.messages, 20);
  await assertExact(t, giver, 'giver');
  for (const m of await mail.list(taker.id, taker.inbox)) {
    if (!(await mail.read(taker.id, taker.inbox, m.uid)).equals(raw)) t.fail(`UID ${m.uid} reads wrong`);
  }
});
