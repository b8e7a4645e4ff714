// Protocol switches with a reason and an end: PATCH in both forms, refusals, live sessions, the
// switch flipping back at `until` (at login at once, stored by the sweep exactly once however
// many processes sweep), and `serve` sweeping by itself.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { eq } from 'drizzle-orm';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import type { Change } from '../../src/core/events/changes.js';
import { createServices } from '../../src/core/services.js';
import { connect } from '../../src/db/client.js';
import { accounts } from '../../src/db/schema/index.js';
import { type Running, start } from '../../src/main.js';
import { buildTestApi } from '../helpers/api.js';
import { accountRow, apiClient, auditEvents, makeKey } from '../helpers/api-client.js';
import { gatewayFixture, PASSWORD } from '../helpers/gateway.js';
import { startTestImap } from '../helpers/imap.js';
import { LineClient, run } from '../helpers/line-client.js';
import { startTestPop3 } from '../helpers/pop3.js';
import { assertProblem } from '../helpers/problem.js';
import { freshDatabaseUrl } from '../helpers/database.js';

const fixture = await gatewayFixture(t);
const imap = await startTestImap(t, { fixture });
const pop3 = await startTestPop3(t, { fixture });
const api = await buildTestApi(t, { database: fixture.database });
const client = apiClient(api.app);
const admin = client.as(api.admin);
const support = client.as((await makeKey(api.services, 'support', 'helpdesk')).headers);
const DOMAIN = 'switch.test';
let serial = 0;

/** A new mailbox of its own for each test. */
async function freshMailbox(fields: Record<string, unknown> = {}): Promise<string> {
  const address = `user${++serial}@${DOMAIN}`;
  await fixture.mailbox(address, fields);
  return address;
}

const inSeconds = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();

async function pop3Login(address: string): Promise<string> {
  const connection = await LineClient.connect(pop3.port);
  try {
    await connection.readLine();
    await connection.command(`USER ${address}`);
    const answer = (await connection.command(`PASS ${PASSWORD}`)) ?? 'closed';
    if (answer.startsWith('+OK')) await connection.command('QUIT');
    return answer;
  } finally {
    connection.close();
  }
}

async function imapLogin(address: string): Promise<string> {
  const connection = await LineClient.connect(imap.port);
  try {
    await connection.readLine();
    return (await run(connection, `a LOGIN ${address} "${PASSWORD}"`)).at(-1) ?? 'closed';
  } finally {
    connection.close();
  }
}

const expireEvents = async (address: string) => (await auditEvents(admin, `target=${address}&action=mailbox.protocol_switch.expire`)).items;

t.test('PATCH takes a switch with a reason and an end; the resource shows it; a plain boolean clears it', async (t) => {
  const address = await freshMailbox();
  const until = inSeconds(3600);
  const patched = await support.patch(`/v1/mailboxes/${address}`, { protocols: { pop3: { enabled: false, reason: 'abuse report #123', until } } });
  t.equal(patched.statusCode, 200, patched.body);
  const body = patched.json();
  t.same(body.protocols, { imap: true, pop3: false }, 'protocols keeps its boolean shape');
  t.match(body.protocolSwitches, {
    imap: { enabled: true, reason: null, until: null, changedAt: null },
    pop3: { enabled: false, reason: 'abuse report #123', until, changedAt: String },
  });
  t.same((await support.get(`/v1/mailboxes/${address}`)).json(), body, 'GET agrees');
  t.match(await pop3Login(address), /^-ERR \[AUTH\] POP3 is disabled/);

  const [event] = (await auditEvents(admin, `target=${address}&action=mailbox.update`)).items;
  t.strictSame(event!.before, {
    protocols: { imap: true, pop3: true },
    protocolSwitches: { imap: { reason: null, until: null }, pop3: { reason: null, until: null } },
  });
  t.strictSame(event!.after, {
    protocols: { imap: true, pop3: false },
    protocolSwitches: { imap: { reason: null, until: null }, pop3: { reason: 'abuse report #123', until } },
  });

  const plain = (await support.patch(`/v1/mailboxes/${address}`, { protocols: { pop3: true } })).json();
  t.same(plain.protocols, { imap: true, pop3: true });
  t.match(plain.protocolSwitches.pop3, { enabled: true, reason: null, until: null });
  t.ok(plain.protocolSwitches.pop3.changedAt > body.protocolSwitches.pop3.changedAt, 'changedAt moves');
  t.match(await pop3Login(address), /^\+OK Logged in/);

  const noted = (await admin.patch(`/v1/mailboxes/${address}`, { protocols: { imap: { enabled: false, reason: 'customer asked' } } })).json();
  t.match(noted.protocolSwitches.imap, { enabled: false, reason: 'customer asked', until: null, changedAt: String }, 'a reason without an end');
  t.equal(noted.protocolSwitches.pop3.changedAt, plain.protocolSwitches.pop3.changedAt, 'the other switch keeps its time');
  const listed = (await admin.get(`/v1/mailboxes?domain=${DOMAIN}&protocol=imap&limit=500`)).json();
  t.notOk(listed.items.some((m: { address: string }) => m.address === address), 'the list filter follows the switch');
});

t.test('bad switches are refused with a problem and change nothing', async (t) => {
  const address = await freshMailbox();
  const before = (await admin.get(`/v1/mailboxes/${address}`)).headers.etag;
  const past = new Date(Date.now() - 1000).toISOString();
  const inPast = await support.patch(`/v1/mailboxes/${address}`, { protocols: { pop3: { enabled: false, until: past } } });
  t.equal(assertProblem(t, inPast, 422, 'invalid_protocol_until').field, 'protocols.pop3.until');
  const cases: [unknown, string, string][] = [
    [{ enabled: false, until: 'tomorrow' }, 'validation_failed', 'body.protocols.pop3.until'],
    [{ enabled: false, until: '2030-01-01T00:00:00' }, 'validation_failed', 'body.protocols.pop3.until'],
    [{ enabled: false, until: 1893456000 }, 'validation_failed', 'body.protocols.pop3.until'],
    [{ enabled: false, reason: '' }, 'validation_failed', 'body.protocols.pop3.reason'],
    [{ enabled: false, reason: 'line\nbreak' }, 'validation_failed', 'body.protocols.pop3.reason'],
    [{ enabled: false, reason: 'x'.repeat(501) }, 'validation_failed', 'body.protocols.pop3.reason'],
    [{ reason: 'no enabled' }, 'validation_failed', 'body.protocols.pop3.enabled'],
    [{ enabled: 'no' }, 'validation_failed', 'body.protocols.pop3.enabled'],
    [{ enabled: false, why: 'x' }, 'unknown_field', 'body.protocols.pop3.why'],
  ];
  for (const [pop3Switch, code, path] of cases) {
    const response = await support.patch(`/v1/mailboxes/${address}`, { protocols: { pop3: pop3Switch } });
    const problem = assertProblem(t, response, 400, code);
    t.ok(problem.errors.some((e: { path: string }) => e.path === path), `${JSON.stringify(pop3Switch)} names ${path}: ${response.body}`);
  }
  t.equal((await admin.get(`/v1/mailboxes/${address}`)).headers.etag, before, 'the mailbox is unchanged');
  t.equal((await auditEvents(admin, `target=${address}&action=mailbox.update`)).items.length, 0);

  const otherTenant = client.as((await makeKey(api.services, 'support', 'other desk', ['other.test'])).headers);
  assertProblem(t, await otherTenant.patch(`/v1/mailboxes/${address}`, { protocols: { pop3: { enabled: false } } }), 404, 'mailbox_not_found');
  const supportQuota = await support.patch(`/v1/mailboxes/${address}`, { protocols: { pop3: { enabled: false } }, quota: { messages: 1 } });
  assertProblem(t, supportQuota, 403, 'role_forbidden');
});

t.test('switching a protocol off with a reason ends its live sessions at once', async (t) => {
  const address = await freshMailbox();
  const session = await imap.login(address);
  const patched = await support.patch(`/v1/mailboxes/${address}`, { protocols: { imap: { enabled: false, reason: 'compromised', until: inSeconds(3600) } } });
  t.equal(patched.statusCode, 200);
  t.equal(await session.readLine(), '* BYE IMAP is disabled for this mailbox');
  t.equal(await session.readLine(), null);
});

t.test('at until the switch is back for logins at once, before any sweep stores it', async (t) => {
  const address = await freshMailbox();
  const until = inSeconds(3);
  t.equal((await support.patch(`/v1/mailboxes/${address}`, { protocols: { pop3: { enabled: false, reason: 'cooling off', until } } })).statusCode, 200);
  t.match(await pop3Login(address), /^-ERR \[AUTH\] POP3 is disabled/);
  await sleep(Math.max(0, Date.parse(until) - Date.now()) + 100);
  t.match(await pop3Login(address), /^\+OK Logged in/, 'POP3 works again');
  t.match(await accountRow(api.database, address), { pop3Enabled: false, pop3Until: Date }, 'no sweep has run: only the time has passed');
  const read = (await support.get(`/v1/mailboxes/${address}`)).json();
  t.same(read.protocols, { imap: true, pop3: true });
  t.same(read.protocolSwitches.pop3, { enabled: true, reason: null, until: null, changedAt: until }, 'shown as flipped at until');
  t.same(await expireEvents(address), [], 'audited only when the sweep stores it');
  const check = (await support.get(`/v1/mailboxes/${address}/login-check`)).json();
  t.match(check, { canLogIn: { pop3: true }, blockers: [] });

  // A change before the sweep comes stores the flip first, audited as the sweep would.
  t.equal((await admin.patch(`/v1/mailboxes/${address}`, { displayName: 'Pat' })).statusCode, 200);
  t.match(await accountRow(api.database, address), { pop3Enabled: true, pop3Until: null, displayName: 'Pat' });
  const events = await expireEvents(address);
  t.equal(events.length, 1);
  t.match(events[0], { actor: { id: 'system' }, before: { protocols: { pop3: false }, protocolSwitches: { pop3: { reason: 'cooling off', until } } } });
  const [update] = (await auditEvents(admin, `target=${address}&action=mailbox.update`)).items;
  t.strictSame([update!.before, update!.after], [{ displayName: null }, { displayName: 'Pat' }], 'the change itself is only the change');
  await fixture.services.protocolSwitches.expire();
  t.equal((await expireEvents(address)).length, 1, 'the sweep finds nothing left');
});

t.test('the sweep stores the flip once, audits it as system and tells live sessions', async (t) => {
  // A temporary switch the other way round: IMAP on for a migration, off again by itself.
  const address = await freshMailbox({ protocols: { imap: false } });
  const until = inSeconds(3);
  const on = await support.patch(`/v1/mailboxes/${address}`, { protocols: { imap: { enabled: true, reason: 'migration', until } } });
  t.equal(on.statusCode, 200);
  const session = await imap.login(address);
  const changes: Change[] = [];
  const unsubscribe = await fixture.gateway.feed.subscribe((change) => void changes.push(change));
  t.teardown(unsubscribe);
  await sleep(Math.max(0, Date.parse(until) - Date.now()) + 100);
  t.match(await imapLogin(address), /^a NO \[CONTACTADMIN\] IMAP is disabled/, 'a new login is refused at once');

  t.ok((await fixture.services.protocolSwitches.expire()) >= 1, 'the sweep flips it');
  t.equal(await session.readLine(), '* BYE IMAP is disabled for this mailbox', 'the live session learns of it and ends');
  const { id } = await fixture.services.mailboxes.find(address, { id: 'test', name: 'test', domains: null });
  t.ok(changes.some((c) => c.kind === 'account' && c.accountId === id && c.reason === 'protocols'), 'published on the change feed');
  const row = await accountRow(api.database, address);
  t.match(row, { imapEnabled: false, imapReason: null, imapUntil: null });
  t.equal(row!.imapChangedAt!.toISOString(), until, 'changed at until');
  t.ok(row!.version > 2, 'a new revision (ETag)');

  const events = await expireEvents(address);
  t.equal(events.length, 1);
  t.match(events[0], { actor: { id: 'system', name: 'system' }, targetType: 'mailbox', domain: DOMAIN, requestId: null });
  t.strictSame(events[0]!.before, { protocols: { imap: true }, protocolSwitches: { imap: { reason: 'migration', until } } });
  t.strictSame(events[0]!.after, { protocols: { imap: false }, protocolSwitches: { imap: { reason: null, until: null } } });
  await fixture.services.protocolSwitches.expire();
  t.equal((await expireEvents(address)).length, 1, 'a second sweep finds nothing to do');
});

t.test('several sweepers at once flip each switch exactly once', async (t) => {
  const addresses = await Promise.all([1, 2, 3, 4, 5].map(() => freshMailbox()));
  const until = inSeconds(4);
  for (const address of addresses) {
    t.equal((await admin.patch(`/v1/mailboxes/${address}`, { protocols: { pop3: { enabled: false, until } } })).statusCode, 200);
  }
  await sleep(Math.max(0, Date.parse(until) - Date.now()) + 100);
  // On Postgres, sweepers with connections of their own, as several processes have; embedded, one database admits one process.
  const sweepers = [fixture.services];
  if (fixture.url !== null) {
    for (let i = 0; i < 3; i++) {
      const handle = await connect({ databaseUrl: fixture.url, dataDir: 'memory://', poolSize: 2 });
      t.teardown(() => handle.close());
      sweepers.push(createServices(handle.db, { passwordPolicy: { minLength: 10 }, bootstrapToken: null, maxMessageSize: 1024 }));
    }
  }
  const flipped = await Promise.all([...sweepers, ...sweepers].map((services) => services.protocolSwitches.expire()));
  t.equal(flipped.reduce((sum, n) => sum + n, 0), addresses.length, `${sweepers.length * 2} sweeps flipped ${addresses.length} switches`);
  for (const address of addresses) {
    t.equal((await expireEvents(address)).length, 1, `${address}: one audit event`);
    t.match(await accountRow(api.database, address), { pop3Enabled: true, pop3Until: null });
  }
  const rows = await api.database.db.select({ until: accounts.pop3Until }).from(accounts).where(eq(accounts.pop3Enabled, false));
  t.same(rows, [], 'no switch is left behind');
});

t.test('serve sweeps by itself every MAILROOM_PROTOCOL_SWITCH_SWEEP seconds, once however many processes run', async (t) => {
  const token = 'switch-sweep-admin-token';
  const databaseUrl = await freshDatabaseUrl(t);
  const config = async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mailroom-sweep-'));
    t.teardown(() => rm(dataDir, { recursive: true, force: true }));
    return loadConfig({
      MAILROOM_DATA_DIR: dataDir,
      MAILROOM_LOG_LEVEL: 'silent',
      MAILROOM_HTTP_PORT: '0',
      MAILROOM_ADMIN_TOKEN: token,
      MAILROOM_PROTOCOL_SWITCH_SWEEP: '1',
      ...(databaseUrl === null ? {} : { DATABASE_URL: databaseUrl }),
    });
  };
  // Two services on one Postgres, as two processes; the embedded database belongs to one.
  const servers: Running[] = [];
  for (let i = 0; i < (databaseUrl === null ? 1 : 2); i++) {
    const running = await start(await config(), ['api']);
    t.teardown(() => running.close());
    servers.push(running);
  }
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${servers[0]!.urls.api}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: response.status, body: await response.json() };
  };
  t.equal((await call('POST', '/v1/domains', { name: 'sweep.test' })).status, 201);
  t.equal((await call('POST', '/v1/mailboxes', { address: 'ann@sweep.test', password: PASSWORD })).status, 201);
  const until = inSeconds(3);
  t.equal((await call('PATCH', '/v1/mailboxes/ann@sweep.test', { protocols: { pop3: { enabled: false, reason: 'test', until } } })).status, 200);
  const expired = async () => (await call('GET', '/v1/audit-events?action=mailbox.protocol_switch.expire')).body.items;
  for (let i = 0; i < 100 && (await expired()).length === 0; i++) await sleep(100);
  await sleep(2500); // two more rounds of every process
  const events = await expired();
  t.equal(events.length, 1, `one flip with ${servers.length} processes sweeping`);
  t.match(events[0], { target: 'ann@sweep.test', actor: { id: 'system', name: 'system' } });
  t.ok(Date.parse(events[0].at) >= Date.parse(until), 'not before until');
  t.match((await call('GET', '/v1/mailboxes/ann@sweep.test')).body.protocolSwitches.pop3, { enabled: true, reason: null, until: null, changedAt: until });
});
