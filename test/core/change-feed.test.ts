import { sql } from 'drizzle-orm';
import pg from 'pg';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { CHANGE_CHANNEL, type Change, publishChange } from '../../src/core/events/changes.js';
import { createChangeFeed, parseChange } from '../../src/core/events/feed.js';
import { createMetrics } from '../../src/core/metrics.js';
import { connect, type DatabaseHandle } from '../../src/db/client.js';
import { freshDatabase, freshDatabaseUrl } from '../helpers/database.js';
import { runInOtherProcess } from '../helpers/other-process.js';

const WAIT_LIMIT_MS = 15_000;

/** Resolves as soon as condition holds; fails the wait after a generous limit. */
async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function publish(handle: DatabaseHandle, ...changes: Change[]): Promise<void> {
  return handle.db.transaction(async (tx) => {
    for (const change of changes) await publishChange(tx, change);
  });
}

/** A listener that keeps what it receives. */
function recorder() {
  const received: Change[] = [];
  return { received, listener: (change: Change) => void received.push(change) };
}

/** A logger that keeps its warnings, to see that what the feed drops is reported. */
function warnings() {
  const messages: string[] = [];
  return { messages, log: { warn: (_details: object, message: string) => void messages.push(message) } };
}

/** A committed change the test waits for: once it arrives, anything sent before it has too. */
const marker = (accountId: number): Change => ({ kind: 'folders', accountId });

const isPostgres = (handle: DatabaseHandle) => handle.mode === 'postgres';
const postgresOnly = async (t: { teardown(fn: () => unknown): void }) => {
  const url = await freshDatabaseUrl(t);
  if (url === null) return null;
  const handle = await connect({ databaseUrl: url, dataDir: 'memory://', poolSize: 4 });
  await handle.migrate();
  t.teardown(() => handle.close());
  return { url, handle };
};
const serverUrl = loadConfig().databaseUrl;
const embeddedSkip = serverUrl === null ? 'needs a Postgres server (DATABASE_URL)' : false;

/** Backend pids of this database's sessions whose last statement was a LISTEN. */
async function listenerPids(handle: DatabaseHandle): Promise<number[]> {
  const result = (await handle.db.execute(
    sql`select pid from pg_stat_activity where datname = current_database() and query ilike 'listen%' order by pid`,
  )) as unknown as { rows: { pid: number }[] };
  return result.rows.map((row) => row.pid);
}

t.test('a committed change reaches every subscriber, in order, as published', async (t) => {
  const handle = await freshDatabase(t);
  const feed = createChangeFeed(handle);
  const first = recorder();
  const second = recorder();
  const unsubscribeFirst = await feed.subscribe(first.listener);
  const unsubscribeSecond = await feed.subscribe(second.listener);
  const changes: Change[] = [
    { kind: 'messages', accountId: 7, folderId: 3, modseq: 41 },
    { kind: 'folders', accountId: 7 },
    { kind: 'account', accountId: 7, reason: 'suspended' },
  ];
  await publish(handle, changes[0]!);
  await publish(handle, changes[1]!, changes[2]!);
  await until(() => first.received.length === 3 && second.received.length === 3, 'three changes');
  t.same(first.received, changes);
  t.same(second.received, changes);
  await unsubscribeFirst();
  await unsubscribeSecond();
});

t.test('a change is delivered at commit, never from a rolled-back transaction', async (t) => {
  const handle = await freshDatabase(t);
  const feed = createChangeFeed(handle);
  const { received, listener } = recorder();
  t.teardown(await feed.subscribe(listener));

  await handle.db.transaction(async (tx) => {
    await publishChange(tx, { kind: 'folders', accountId: 1 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    t.same(received, [], 'nothing before commit');
  });
  await until(() => received.length === 1, 'the committed change');

  const rollback = handle.db.transaction(async (tx) => {
    await publishChange(tx, { kind: 'folders', accountId: 2 });
    tx.rollback();
  });
  await t.rejects(rollback);
  await publish(handle, marker(3));
  await until(() => received.length >= 2, 'the marker');
  t.same(received, [marker(1), marker(3)], 'the rolled-back change never came, not even before the marker');
});

t.test('all subscribers share one LISTEN, started by the first and stopped after the last', async (t) => {
  const handle = await freshDatabase(t);
  let listens = 0;
  let unlistens = 0;
  const counting: DatabaseHandle = {
    ...handle,
    async listen(channel, onPayload, onReconnect) {
      listens++;
      const unlisten = await handle.listen(channel, onPayload, onReconnect);
      return async () => {
        unlistens++;
        await unlisten();
      };
    },
  };
  const feed = createChangeFeed(counting);
  t.equal(listens, 0, 'nothing listens before the first subscriber');

  const recorders = Array.from({ length: 25 }, recorder);
  // All at once, as IMAP sessions logging in together would: still one LISTEN.
  const unsubscribes = await Promise.all(recorders.map(({ listener }) => feed.subscribe(listener)));
  t.equal(listens, 1);
  if (isPostgres(handle)) t.equal((await listenerPids(handle)).length, 1, 'one listening session on the server');

  await publish(handle, marker(1));
  await until(() => recorders.every(({ received }) => received.length === 1), 'every subscriber');

  await Promise.all(unsubscribes.slice(1).map((unsubscribe) => unsubscribe()));
  t.equal(unlistens, 0, 'still listening for the last subscriber');
  await unsubscribes[0]!();
  await unsubscribes[0]!();
  t.equal(unlistens, 1, 'the last one out stops listening, once');
  if (isPostgres(handle)) await until(async () => (await listenerPids(handle)).length === 0, 'the listening session to end');

  const again = recorder();
  t.teardown(await feed.subscribe(again.listener));
  t.equal(listens, 2, 'a new subscriber starts listening again');
  await publish(handle, marker(2));
  await until(() => again.received.length === 1, 'the change after listening again');
  t.same(recorders[0]!.received, [marker(1)], 'an unsubscribed listener hears nothing more');
});

t.test('unsubscribing stops delivery to that subscriber only', async (t) => {
  const handle = await freshDatabase(t);
  const feed = createChangeFeed(handle);
  const leaving = recorder();
  const staying = recorder();
  const unsubscribeLeaving = await feed.subscribe(leaving.listener);
  t.teardown(await feed.subscribe(staying.listener));
  await publish(handle, marker(1));
  await until(() => leaving.received.length === 1 && staying.received.length === 1, 'the first change');

  await unsubscribeLeaving();
  await publish(handle, marker(2));
  await until(() => staying.received.length === 2, 'the second change');
  t.same(leaving.received, [marker(1)]);
});

t.test('a failing listener neither stops the others nor loses its subscription', async (t) => {
  const handle = await freshDatabase(t);
  const { messages, log } = warnings();
  const feed = createChangeFeed(handle, log);
  let throwingCalls = 0;
  let rejectingCalls = 0;
  t.teardown(
    await feed.subscribe(() => {
      throwingCalls++;
      throw new Error('listener bug');
    }),
  );
  t.teardown(
    await feed.subscribe(async () => {
      rejectingCalls++;
      throw new Error('async listener bug');
    }),
  );
  const healthy = recorder();
  t.teardown(await feed.subscribe(healthy.listener));

  await publish(handle, marker(1));
  await publish(handle, marker(2));
  await until(() => healthy.received.length === 2 && messages.length === 4, 'both changes and four warnings');
  t.same(healthy.received, [marker(1), marker(2)]);
  t.equal(throwingCalls, 2);
  t.equal(rejectingCalls, 2);
  t.same(messages, Array(4).fill('a change listener failed'));
});

t.test('a malformed notification is logged and ignored', async (t) => {
  const handle = await freshDatabase(t);
  const { messages, log } = warnings();
  const feed = createChangeFeed(handle, log);
  const { received, listener } = recorder();
  t.teardown(await feed.subscribe(listener));

  const garbage = ['garbage', 'null', '[]', '{"kind":"messages","accountId":1}', '{"kind":"unknown","accountId":1}'];
  for (const payload of garbage) await handle.db.execute(sql`select pg_notify(${CHANGE_CHANNEL}, ${payload})`);
  await publish(handle, marker(1));
  await until(() => received.length === 1, 'the marker');
  t.same(received, [marker(1)]);
  t.equal(messages.length, garbage.length, 'each one reported');
});

t.test('a reconnect asks every subscriber to resync, and is counted; a failing resync is logged', async (t) => {
  // The database side of a reconnect is tested on Postgres below; this is the feed's side, in any mode.
  let reconnect = () => {};
  const reconnecting = {
    async listen(_channel: string, _onPayload: (payload: string) => void, onReconnect: () => void) {
      reconnect = onReconnect;
      return async () => {};
    },
  } as unknown as DatabaseHandle;
  const { messages, log } = warnings();
  const metrics = createMetrics();
  const feed = createChangeFeed(reconnecting, log, metrics);
  let resyncs = 0;
  await feed.subscribe(() => {}, () => void resyncs++);
  await feed.subscribe(() => {}, () => {
    throw new Error('resync bug');
  });
  await feed.subscribe(() => {});
  await feed.subscribe(() => {}, () => void resyncs++);
  reconnect();
  t.equal(resyncs, 2);
  t.same(messages, ['a change feed resync failed']);
  t.equal((await metrics.changeResyncs.get()).values[0]?.value, 1, 'one reconnect, one resync counted');
});

t.test('parseChange accepts exactly the shapes of Change', async (t) => {
  const valid: Change[] = [
    { kind: 'messages', accountId: 1, folderId: 2, modseq: 3 },
    { kind: 'folders', accountId: 1 },
    { kind: 'account', accountId: 1, reason: 'protocols' },
    { kind: 'account', accountId: 1, reason: 'password' },
    { kind: 'account', accountId: 1, reason: 'deleted' },
    { kind: 'account', accountId: 1, reason: 'sessions' },
  ];
  for (const change of valid) t.same(parseChange(JSON.stringify(change)), change);
  const invalid = [
    '',
    '{',
    '"text"',
    '42',
    '{"kind":"folders"}',
    '{"kind":"folders","accountId":"1"}',
    '{"kind":"folders","accountId":-1}',
    '{"kind":"folders","accountId":1.5}',
    '{"kind":"messages","accountId":1,"folderId":2}',
    '{"kind":"account","accountId":1,"reason":"bored"}',
    '{"kind":"account","accountId":1,"reason":"toString"}',
    '{"kind":"toString","accountId":1}',
  ];
  for (const payload of invalid) t.equal(parseChange(payload), null, payload);
});

t.test('closing the database ends its listeners; unsubscribing afterwards is harmless', async (t) => {
  const url = await freshDatabaseUrl(t);
  const open = () => connect({ databaseUrl: url, dataDir: 'memory://', poolSize: 2 });
  const handle = await open();
  t.teardown(() => handle.close());
  // On Postgres, a second handle watches the first one's listening session go.
  const observer = url === null ? null : await open();
  if (observer !== null) t.teardown(() => observer.close());
  const feed = createChangeFeed(handle);
  let resyncs = 0;
  const unsubscribe = await feed.subscribe(() => {}, () => void resyncs++);
  if (observer !== null) t.equal((await listenerPids(observer)).length, 1);

  const starting = handle.listen(CHANGE_CHANNEL, () => {}, () => {});
  await handle.close();
  await t.rejects(starting, /closed/, 'a listener still starting as the handle closes is ended too');
  if (observer !== null) await until(async () => (await listenerPids(observer)).length === 0, 'the listening session to end');
  await unsubscribe();
  await t.rejects(feed.subscribe(() => {}), /closed/, 'a closed handle cannot listen again');
  await t.rejects(feed.subscribe(() => {}), /closed/, 'nor on a second try');
  t.equal(resyncs, 0, 'an intentional close is no connection loss');
});

t.test('a terminated listening session reconnects, resyncs and delivers again', { skip: embeddedSkip }, async (t) => {
  const { handle } = (await postgresOnly(t))!;
  const feed = createChangeFeed(handle);
  const { received, listener } = recorder();
  let resyncs = 0;
  t.teardown(await feed.subscribe(listener, () => void resyncs++));
  const [before] = await listenerPids(handle);

  await handle.db.execute(sql`select pg_terminate_backend(${before!})`);
  await until(() => resyncs === 1, 'the resync');
  const after = await listenerPids(handle);
  t.equal(after.length, 1, 'listening again, on one session');
  t.not(after[0], before, 'a new session');

  await publish(handle, marker(1));
  await until(() => received.length === 1, 'a change after the reconnect');
  t.same(received, [marker(1)]);
});

t.test('a listener keeps retrying while the database refuses connections', { skip: embeddedSkip }, async (t) => {
  const { url, handle } = (await postgresOnly(t))!;
  const name = new URL(url).pathname.slice(1);
  // On the server's own database: Postgres will not lock out the database a session is in.
  const admin = new pg.Client({ connectionString: serverUrl! });
  await admin.connect();
  t.teardown(() => admin.end());
  const feed = createChangeFeed(handle);
  const { received, listener } = recorder();
  let resyncs = 0;
  t.teardown(await feed.subscribe(listener, () => void resyncs++));
  const [listening] = await listenerPids(handle);

  await admin.query(`alter database ${admin.escapeIdentifier(name)} with allow_connections false`);
  await admin.query('select pg_terminate_backend($1)', [listening]);
  // Long enough for several refused attempts (100, 200, 400 ms…); only the outcome is asserted.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  t.equal(resyncs, 0, 'no resync while nothing listens');
  await admin.query(`alter database ${admin.escapeIdentifier(name)} with allow_connections true`);
  await until(() => resyncs === 1, 'the resync once connections are allowed again');

  await publish(handle, marker(1));
  await until(() => received.length === 1, 'a change after the reconnect');
});

t.test('a change published by another process on the same database arrives', { skip: embeddedSkip }, async (t) => {
  const { url, handle } = (await postgresOnly(t))!;
  const feed = createChangeFeed(handle);
  const { received, listener } = recorder();
  t.teardown(await feed.subscribe(listener));
  const change: Change = { kind: 'messages', accountId: 5, folderId: 9, modseq: 12 };

  await runInOtherProcess(url, 'publish-change', change);
  await until(() => received.length === 1, 'the other process’s change');
  t.same(received, [change]);
});
