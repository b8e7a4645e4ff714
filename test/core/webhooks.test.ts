// Webhooks end to end: changes made through the API and the mail store, queued in the outbox in
// their own transactions, sent by the dispatcher to real HTTP receivers on loopback, signed.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'drizzle-orm';
import t, { type Test } from 'tap';
import { startWebhookDispatcher, type DispatcherSettings } from '../../src/core/webhooks/dispatcher.js';
import { webhookDeliveries, webhookEvents } from '../../src/db/schema/index.js';
import { apiClient } from '../helpers/api-client.js';
import { buildTestApi, PASSWORD } from '../helpers/api.js';
import { recordOutput } from '../helpers/secrets.js';
import { freePort } from '../helpers/server.js';
import { type Received, startReceiver, verifySignature } from '../helpers/webhook-receiver.js';

const api = await buildTestApi(t, { loginThrottle: { failuresPerIp: 0, failuresPerMailbox: 2, lockSeconds: 60, maxDelayMs: 0 } });
const { services, database } = api;
const admin = apiClient(api.app).as(api.admin);
const ACTOR = { id: 'test', name: 'test setup', domains: null };
const FAST: DispatcherSettings = { maxAgeMs: 60_000, timeoutMs: 2000, retryMinMs: 100, retryMaxMs: 400, pollMs: 50, concurrency: 8 };

for (const name of ['a.test', 'b.test']) await services.domains.create({ name }, ACTOR);

/** A dispatcher for this test, stopped at its end; its log lines are kept. */
function dispatch(t: Test, settings: Partial<DispatcherSettings> = {}) {
  const lines: string[] = [];
  const dispatcher = startWebhookDispatcher(database.db, { ...FAST, ...settings }, {
    warn(details, message) {
      const line = `${message} ${JSON.stringify(details)}`;
      lines.push(line);
      recordOutput('webhook dispatcher log', line);
    },
  });
  t.teardown(() => dispatcher.stop());
  return lines;
}

/** A webhook made through the API, deleted (with what it has not received) when the test ends. */
async function subscribe(t: Test, body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const created = await admin.post('/v1/webhooks', body);
  if (created.statusCode !== 201) throw new Error(created.body);
  const hook = created.json();
  t.teardown(() => admin.delete(`/v1/webhooks/${hook.id}`));
  return hook;
}

async function deliveryLog(id: string): Promise<any[]> {
  const page = await admin.get(`/v1/webhooks/${id}/deliveries?limit=500`);
  if (page.statusCode !== 200) throw new Error(page.body);
  return page.json().items;
}

async function until(done: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Each delivery once (a retry repeats its id), in the order the events happened. */
function distinct(received: Received[]): Received[] {
  const byDelivery = new Map(received.map((r) => [r.delivery, r]));
  return [...byDelivery.values()].sort((a, b) => Number(a.json.id) - Number(b.json.id));
}

async function outboxSize(): Promise<number> {
  const [row] = await database.db.select({ n: sql<number>`count(*)::int` }).from(webhookEvents);
  return row!.n;
}

/** A message of exactly `size` bytes. */
function message(size: number, subject = 'quota'): Buffer {
  const head = `Subject: ${subject}\r\n\r\n`;
  return Buffer.from(head + 'x'.repeat(size - head.length));
}

t.test('without webhooks nothing is queued; a queued event is part of its change’s transaction', async (t) => {
  await admin.post('/v1/mailboxes', { address: 'quiet@a.test', password: PASSWORD });
  await admin.patch('/v1/mailboxes/quiet@a.test', { status: 'suspended' });
  t.equal(await outboxSize(), 0, 'no subscriber, no outbox rows');

  const receiver = await startReceiver(t);
  await subscribe(t, { url: receiver.url });
  const entry = { action: 'mailbox.delete', targetType: 'mailbox' as const, target: 'quiet@a.test', domain: 'a.test' };
  await database.db
    .transaction(async (tx) => {
      await services.audit.record(tx, ACTOR, entry);
      throw new Error('the change fails after its audit event');
    })
    .catch(() => {});
  t.equal(await outboxSize(), 0, 'rolled back with the change');
  await database.db.transaction((tx) => services.audit.record(tx, ACTOR, entry));
  t.equal(await outboxSize(), 1, 'committed with the change');
  const [delivery] = await database.db.select().from(webhookDeliveries);
  t.match(delivery, { status: 'pending', attempts: 0 });

  // A refused request queues nothing.
  await admin.post('/v1/mailboxes', { address: 'quiet@a.test', password: PASSWORD });
  await admin.patch('/v1/mailboxes/quiet@a.test', { quota: { storageBytes: -1 } });
  t.equal(await outboxSize(), 1);
});

t.test('a mailbox’s life reaches a receiver as signed events, each in the delivery log', async (t) => {
  const receiver = await startReceiver(t);
  const hook = await subscribe(t, { url: receiver.url, domains: ['a.test'] });
  dispatch(t);
  const newPassword = 'a brand new passphrase';
  await admin.post('/v1/mailboxes', { address: 'Ann@A.test', password: PASSWORD, displayName: 'Ann' });
  await admin.patch('/v1/mailboxes/ann@a.test', { protocols: { pop3: false } });
  await admin.patch('/v1/mailboxes/ann@a.test', { status: 'suspended' });
  await admin.patch('/v1/mailboxes/ann@a.test', { status: 'active', displayName: 'Ann B' });
  await admin.put('/v1/mailboxes/ann@a.test/password', { password: newPassword });
  await admin.delete('/v1/mailboxes/ann@a.test');
  const expected = [
    'mailbox.created',
    'mailbox.updated',
    'mailbox.protocol_switched',
    'mailbox.updated',
    'mailbox.suspended',
    'mailbox.updated',
    'mailbox.unsuspended',
    'mailbox.password_changed',
    'mailbox.deleted',
  ];
  await receiver.waitFor((r) => distinct(r).length >= expected.length, 'the nine events');
  const events = distinct(receiver.received);
  t.same(events.map((r) => r.json.type), expected, 'every event, in order of occurrence');
  for (const r of receiver.received) {
    t.ok(verifySignature(hook.secret, r.signature, r.body), `${r.event}: the signature verifies`);
    t.match(r.signature, /^t=\d{10},v1=[0-9a-f]{64}$/);
    t.equal(r.event, r.json.type, 'Mailroom-Event is the type');
    t.match(r.delivery, /^[0-9a-f-]{36}$/);
    t.notOk(r.body.includes(PASSWORD) || r.body.includes(newPassword), 'no password in an event');
  }
  const [first] = events;
  t.notOk(verifySignature('whsec_another', first!.signature, first!.body), 'another secret does not verify');
  t.notOk(verifySignature(hook.secret, first!.signature, first!.body.replace('ann@a.test', 'bob@a.test')), 'a changed body does not verify');
  t.match(first!.json, {
    id: /^\d+$/,
    type: 'mailbox.created',
    occurredAt: String,
    domain: 'a.test',
    mailbox: 'ann@a.test',
    data: { actor: { id: 'bootstrap-admin', name: 'MAILROOM_ADMIN_TOKEN' }, before: null, after: { address: 'ann@a.test', displayName: 'Ann', passwordScheme: 'argon2id' } },
  });
  t.same(events[2]!.json.data.before, { protocols: { imap: true, pop3: true } }, 'protocol_switched carries the protocols only');
  t.same(events[2]!.json.data.after, { protocols: { imap: true, pop3: false } });
  t.same(events[6]!.json.data.after, { status: 'active' }, 'unsuspended carries the status only');
  t.same(events[5]!.json.data.after, { status: 'active', displayName: 'Ann B' }, 'updated carries every changed field');
  t.same(events[7]!.json.data.after, { passwordVersion: 2, passwordScheme: 'argon2id' });
  t.match(events[8]!.json.data.before, { address: 'ann@a.test', usage: { storageBytes: 0, messages: 0 } });

  const log = await deliveryLog(hook.id);
  t.same(log.map((d) => d.id), [...events].reverse().map((r) => r.delivery), 'the log lists each delivery, newest first');
  for (const delivery of log) {
    t.match(delivery, { status: 'delivered', nextAttemptAt: null, finishedAt: String, event: { domain: 'a.test', mailbox: 'ann@a.test' } });
    t.match(delivery.attempts, [{ attempt: 1, at: String, statusCode: 200, error: null, durationMs: Number }]);
  }
  const delivered = await admin.get(`/v1/webhooks/${hook.id}/deliveries?status=delivered&limit=2`);
  t.equal(delivered.json().items.length, 2);
  const next = await admin.get(`/v1/webhooks/${hook.id}/deliveries?status=delivered&limit=500&cursor=${delivered.json().nextCursor}`);
  t.equal(next.json().items.length, expected.length - 2, 'the cursor pages on');
  t.equal((await admin.get(`/v1/webhooks/${hook.id}/deliveries?status=failed`)).json().items.length, 0);
});

t.test('a receiver refusing connections, then failing, later gets every event: at least once', async (t) => {
  const port = await freePort();
  const hook = await subscribe(t, { url: `http://127.0.0.1:${port}/hooks`, domains: ['b.test'] });
  dispatch(t);
  const addresses = ['one', 'two', 'three', 'four'].map((name) => `${name}@b.test`);
  for (const address of addresses) await admin.post('/v1/mailboxes', { address, password: PASSWORD });
  await admin.patch('/v1/mailboxes/one@b.test', { displayName: 'One' });

  await until(async () => (await deliveryLog(hook.id)).every((d) => d.attempts.length >= 2), 'two refused attempts each');
  for (const delivery of await deliveryLog(hook.id)) {
    t.equal(delivery.status, 'pending');
    t.ok(delivery.nextAttemptAt, 'due again later');
    for (const attempt of delivery.attempts) {
      t.match(attempt, { statusCode: null, error: /ECONNREFUSED/ }, 'refused: no status code, the reason kept');
    }
  }

  const receiver = await startReceiver(t, port);
  receiver.respond(500);
  await until(async () => (await deliveryLog(hook.id)).every((d) => d.attempts.some((a: any) => a.statusCode === 500)), 'a 500 each');
  receiver.respond(200);
  await until(async () => (await deliveryLog(hook.id)).every((d) => d.status === 'delivered'), 'every delivery done');

  const log = await deliveryLog(hook.id);
  t.equal(log.length, 5);
  const events = distinct(receiver.received);
  t.same(events.map((r) => r.json.type), ['mailbox.created', 'mailbox.created', 'mailbox.created', 'mailbox.created', 'mailbox.updated']);
  t.same(events.slice(0, 4).map((r) => r.json.mailbox), addresses, 'each event, none lost');
  t.ok(receiver.received.length > events.length, 'some came more than once: a receiver drops repeats by Mailroom-Delivery');
  for (const r of receiver.received) t.ok(verifySignature(hook.secret, r.signature, r.body), 'every attempt is signed');
  for (const delivery of log) {
    const statuses = delivery.attempts.map((a: any) => a.statusCode);
    t.same(delivery.attempts.map((a: any) => a.attempt), statuses.map((_: unknown, i: number) => i + 1), 'attempts numbered in order');
    t.equal(statuses[statuses.length - 1], 200, 'the last one succeeded');
    t.ok(statuses.indexOf(500) > statuses.indexOf(null), 'refused first, then 500');
    t.match(delivery.attempts.find((a: any) => a.statusCode === 500), { error: 'HTTP 500' });
    const times = delivery.attempts.map((a: any) => Date.parse(a.at));
    for (let i = 1; i < times.length; i++) t.ok(times[i] - times[i - 1] >= FAST.retryMinMs / 2 - 5, 'retries wait (backoff)');
  }
});

t.test('a webhook confined to a domain gets none of another domain’s events; types filter too', async (t) => {
  const [toA, toB, deletions] = await Promise.all([startReceiver(t), startReceiver(t), startReceiver(t)]);
  await subscribe(t, { url: toA.url, domains: ['a.test'] });
  await subscribe(t, { url: toB.url, domains: ['b.test'] });
  await subscribe(t, { url: deletions.url, events: ['mailbox.deleted'] });
  dispatch(t);
  for (const address of ['x@a.test', 'y@b.test']) {
    await admin.post('/v1/mailboxes', { address, password: PASSWORD });
    await admin.delete(`/v1/mailboxes/${address}`);
  }
  await toA.waitFor((r) => distinct(r).length >= 2, 'a.test events');
  await toB.waitFor((r) => distinct(r).length >= 2, 'b.test events');
  await deletions.waitFor((r) => distinct(r).length >= 2, 'deletions');
  // Anything sent by mistake would have arrived with these.
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.same(distinct(toA.received).map((r) => `${r.json.type} ${r.json.mailbox}`), ['mailbox.created x@a.test', 'mailbox.deleted x@a.test']);
  t.same(distinct(toB.received).map((r) => `${r.json.type} ${r.json.mailbox}`), ['mailbox.created y@b.test', 'mailbox.deleted y@b.test']);
  t.same(distinct(deletions.received).map((r) => `${r.json.type} ${r.json.mailbox}`), ['mailbox.deleted x@a.test', 'mailbox.deleted y@b.test']);
});

t.test('quota crossings: once per upward crossing of 80, 95 and 100 %, again after usage fell below', async (t) => {
  const receiver = await startReceiver(t);
  await subscribe(t, { url: receiver.url, events: ['mailbox.quota_crossed'] });
  dispatch(t);
  await services.mailboxes.create({ address: 'storage@a.test', password: PASSWORD, quota: { storageBytes: 10_000 } }, ACTOR);
  await services.mailboxes.create({ address: 'count@a.test', password: PASSWORD, quota: { messages: 5 } }, ACTOR);
  await services.mailboxes.create({ address: 'copy@a.test', password: PASSWORD, quota: { storageBytes: 1000 } }, ACTOR);
  const deliver = async (address: string, size: number, subject?: string) => {
    const [result] = await services.mail.deliver(message(size, subject), [address]);
    if (!result!.delivered) throw new Error(`not delivered: ${result!.error.message}`);
    return result!.uid;
  };

  // Storage: 50 %, 85 % (80), 87 %, 96 % (95), refused at 104 %, down to 61 %, 81 % (80 again).
  await deliver('storage@a.test', 5000);
  const big = await deliver('storage@a.test', 3500);
  await deliver('storage@a.test', 200);
  await deliver('storage@a.test', 900);
  const [refused] = await services.mail.deliver(message(800), ['storage@a.test']);
  t.notOk(refused!.delivered, 'over quota: refused, and no event');
  const storage = await services.mailboxes.find('storage@a.test', ACTOR);
  const inbox = await services.mail.folders.get(storage.id, 'INBOX');
  await services.mail.remove(storage.id, inbox.id, [big]);
  await deliver('storage@a.test', 2000);

  // Messages: 4 of 5 (80), 5 of 5 (95 and 100 at once).
  for (let i = 0; i < 5; i++) await deliver('count@a.test', 100, `count ${i}`);

  // COPY counts too: 50 %, then a copy makes it 100 % (80, 95 and 100).
  const uid = await deliver('copy@a.test', 500);
  const copying = await services.mailboxes.find('copy@a.test', ACTOR);
  await services.mail.copy(copying.id, (await services.mail.folders.get(copying.id, 'INBOX')).id, [uid], 'Archive');

  const expected = [
    'storage@a.test storage 80 8500',
    'storage@a.test storage 95 9600',
    'storage@a.test storage 80 8100',
    'count@a.test messages 80 4',
    'count@a.test messages 95 5',
    'count@a.test messages 100 5',
    'copy@a.test storage 80 1000',
    'copy@a.test storage 95 1000',
    'copy@a.test storage 100 1000',
  ];
  await receiver.waitFor((r) => distinct(r).length >= expected.length, 'the crossings');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const events = distinct(receiver.received);
  t.same(events.map((r) => `${r.json.mailbox} ${r.json.data.quota} ${r.json.data.threshold} ${r.json.data.used}`), expected);
  t.match(events[0]!.json, { type: 'mailbox.quota_crossed', domain: 'a.test', data: { limit: 10_000 } });
  t.match(events[3]!.json.data, { limit: 5 });
});

t.test('a mailbox locked out after failed logins is an event', async (t) => {
  const receiver = await startReceiver(t);
  await subscribe(t, { url: receiver.url, events: ['mailbox.login_locked'] });
  dispatch(t);
  await services.mailboxes.create({ address: 'locked@b.test', password: PASSWORD }, ACTOR);
  for (let i = 0; i < 2; i++) {
    await services.login.login({ address: 'locked@b.test', password: 'not the password', protocol: 'imap', ip: '192.0.2.7' }).catch(() => {});
  }
  await receiver.waitFor((r) => r.length >= 1, 'the lockout');
  t.match(receiver.received[0]!.json, {
    type: 'mailbox.login_locked',
    mailbox: 'locked@b.test',
    data: { actor: { id: 'login-throttle' }, after: { failures: 2, lockedUntil: String, protocol: 'imap' } },
  });
});

t.test('batch creations are events too, one per mailbox', async (t) => {
  const receiver = await startReceiver(t);
  await subscribe(t, { url: receiver.url, events: ['mailbox.created'] });
  dispatch(t);
  const items = ['b1', 'b2', 'b3'].map((name) => ({ op: 'create', address: `${name}@a.test`, password: PASSWORD }));
  t.equal((await admin.post('/v1/mailboxes:batch', { items })).statusCode, 200);
  await receiver.waitFor((r) => distinct(r).length >= 3, 'three creations');
  t.same(distinct(receiver.received).map((r) => r.json.mailbox), ['b1@a.test', 'b2@a.test', 'b3@a.test']);
});

t.test('several dispatchers side by side send each delivery once', async (t) => {
  const receiver = await startReceiver(t);
  await subscribe(t, { url: receiver.url, domains: ['b.test'] });
  for (let i = 0; i < 3; i++) dispatch(t, { concurrency: 2 });
  const items = Array.from({ length: 20 }, (_, i) => ({ op: 'create', address: `many${i}@b.test`, passwordHash: '$2b$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234' }));
  t.equal((await admin.post('/v1/mailboxes:batch', { items })).statusCode, 200);
  await receiver.waitFor((r) => r.length >= 20, 'twenty events');
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.equal(receiver.received.length, 20, 'no delivery was sent twice');
  t.equal(new Set(receiver.received.map((r) => r.delivery)).size, 20);
});

t.test('a receiver that never answers times out; the event is given up at its maximum age', async (t) => {
  const silent = createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    silent.closeAllConnections();
    silent.close();
  });
  const hook = await subscribe(t, { url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`, events: ['mailbox.suspended'] });
  const log = dispatch(t, { maxAgeMs: 1500, timeoutMs: 300, retryMinMs: 100, retryMaxMs: 200 });
  await admin.post('/v1/mailboxes', { address: 'silent@a.test', password: PASSWORD });
  await admin.patch('/v1/mailboxes/silent@a.test', { status: 'suspended' });
  await until(async () => (await deliveryLog(hook.id))[0]?.status === 'failed', 'the delivery to be given up');
  const [delivery] = await deliveryLog(hook.id);
  t.match(delivery, { status: 'failed', nextAttemptAt: null, finishedAt: String });
  t.ok(delivery.attempts.length >= 2, 'retried before giving up');
  for (const attempt of delivery.attempts) t.match(attempt, { statusCode: null, error: 'no answer within 300 ms' });
  const age = Date.parse(delivery.attempts[delivery.attempts.length - 1].at) - Date.parse(delivery.event.occurredAt);
  t.ok(age >= 1400, `the last attempt came at the maximum age (${age} ms)`);
  t.ok(log.some((line) => line.startsWith('webhook delivery given up')), 'giving up is logged');
});

t.test('deleting a webhook drops what it has not received', async (t) => {
  const port = await freePort();
  const created = await admin.post('/v1/webhooks', { url: `http://127.0.0.1:${port}/`, domains: ['b.test'] });
  const { id } = created.json();
  await admin.post('/v1/mailboxes', { address: 'dropped@b.test', password: PASSWORD });
  t.equal((await deliveryLog(id)).length, 1);
  t.equal((await admin.delete(`/v1/webhooks/${id}`)).statusCode, 204);
  const left = await database.db.select().from(webhookDeliveries).where(sql`${webhookDeliveries.webhookId} = ${id}`);
  t.same(left, []);
});
