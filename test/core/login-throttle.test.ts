import t from 'tap';
import { clientKey, type LoginThrottleSettings } from '../../src/core/auth/throttle.js';
import { loginFailures } from '../../src/db/schema/index.js';
import { ACTOR, type GatewayFixture, gatewayFixture, PASSWORD } from '../helpers/gateway.js';
import { startTestImap } from '../helpers/imap.js';
import { LineClient, run } from '../helpers/line-client.js';
import { startTestPop3 } from '../helpers/pop3.js';

// Each test comes from loopback addresses of its own (Linux routes all of 127/8 to loopback), so
// the per-address counts of one test do not reach into the next.
const SETTINGS: LoginThrottleSettings = { failuresPerIp: 4, failuresPerMailbox: 6, lockSeconds: 600, maxDelayMs: 50 };
const fixture = await gatewayFixture(t, undefined, SETTINGS);
const imap = await startTestImap(t, { fixture });
const pop3 = await startTestPop3(t, { fixture });
const { services } = fixture;

interface Doors {
  imap: number;
  pop3: number;
}

/** The tagged answer to one LOGIN on a fresh IMAP connection from `from`. */
async function imapLogin(from: string, address: string, password: string, doors: Doors = { imap: imap.port, pop3: pop3.port }) {
  const client = await LineClient.connect(doors.imap, { localAddress: from });
  t.teardown(() => client.close());
  await client.readLine();
  const answer = (await run(client, `a LOGIN ${address} "${password}"`)).at(-1)!;
  client.close();
  return answer;
}

/** The answer to USER and PASS on a fresh POP3 connection from `from`. */
async function pop3Login(from: string, address: string, password: string, doors: Doors = { imap: imap.port, pop3: pop3.port }) {
  const client = await LineClient.connect(doors.pop3, { localAddress: from });
  t.teardown(() => client.close());
  await client.readLine();
  await client.command(`USER ${address}`);
  const answer = (await client.command(`PASS ${password}`))!;
  client.close();
  return answer;
}

/** A counter's or gauge's value for exactly these labels (0 when never counted). */
async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const found = await services.metrics.registry.getSingleMetric(name)!.get();
  return found.values.find((value) => Object.entries(labels).every(([k, v]) => value.labels[k] === v))?.value ?? 0;
}

async function auditOf(target: string) {
  return (await services.audit.list({ target }, { limit: 50 }, ACTOR)).items;
}

await fixture.mailbox('ann@throttle.test');
await fixture.mailbox('bob@throttle.test');
await fixture.mailbox('cid@throttle.test');

t.test('failures from one address over IMAP and POP3 together lock that address out of both', async (t) => {
  const from = '127.0.0.2';
  const delayedBefore = await metric('mailroom_login_throttled_total', { protocol: 'pop3', reason: 'delayed' });
  t.match(await imapLogin(from, 'nobody@throttle.test', 'guess'), /^a NO \[AUTHENTICATIONFAILED\]/);
  t.match(await imapLogin(from, 'ann@throttle.test', 'guess'), /^a NO \[AUTHENTICATIONFAILED\]/);
  t.match(await pop3Login(from, 'nobody@throttle.test', 'guess'), /^-ERR \[AUTH\]/);
  t.match(await pop3Login(from, 'ann@throttle.test', 'guess'), /^-ERR \[AUTH\]/, 'the failure that reaches the threshold is still a failure');
  t.equal(
    (await metric('mailroom_login_throttled_total', { protocol: 'pop3', reason: 'delayed' })) - delayedBefore,
    2,
    'failures past half the threshold were answered late',
  );

  t.match(await imapLogin(from, 'ann@throttle.test', PASSWORD), /^a NO \[UNAVAILABLE\] Too many failed logins from your address/);
  t.match(await pop3Login(from, 'ann@throttle.test', PASSWORD), /^-ERR \[SYS\/TEMP\] Too many failed logins from your address/);
  t.match(await imapLogin(from, 'nobody@throttle.test', 'guess'), /^a NO \[UNAVAILABLE\]/, 'unknown mailboxes are refused alike');

  t.match(await imapLogin('127.0.0.3', 'ann@throttle.test', PASSWORD), /^a OK /, 'the right password from another address works');
  t.match(await pop3Login('127.0.0.3', 'ann@throttle.test', PASSWORD), /^\+OK /);

  const [event] = await auditOf('127.0.0.2');
  t.match(event, { action: 'login_lockout.start', targetType: 'client_address', domain: null, ip: from, after: { failures: 4, protocol: 'pop3' } });
  t.notOk(JSON.stringify(event).includes('guess'), 'no password in the audit event');
  t.equal(await metric('mailroom_login_throttled_total', { protocol: 'imap', reason: 'ip_locked' }), 2);
  t.equal(await metric('mailroom_login_throttled_total', { protocol: 'pop3', reason: 'ip_locked' }), 1);
  t.equal(await metric('mailroom_login_lockouts_total', { kind: 'ip' }), 1);
  t.equal(await metric('mailroom_login_lockouts_active', { kind: 'ip' }), 1);
});

t.test('a mailbox guessed at from many addresses locks, even for its right password, until support unlocks it', async (t) => {
  for (let i = 1; i <= 6; i++) {
    t.match(await imapLogin(`127.0.1.${i}`, 'bob@throttle.test', `guess ${i}`), /^a NO \[AUTHENTICATIONFAILED\]/);
    // The same spread over an unknown address locks nothing: it is counted per address only.
    t.match(await pop3Login(`127.0.1.${i}`, 'ghost@throttle.test', `guess ${i}`), /^-ERR \[AUTH\]/);
  }
  t.match(await imapLogin('127.0.1.20', 'bob@throttle.test', PASSWORD), /^a NO \[UNAVAILABLE\] Too many failed logins to this mailbox/);
  t.match(await pop3Login('127.0.1.20', 'bob@throttle.test', PASSWORD), /^-ERR \[SYS\/TEMP\] Too many failed logins to this mailbox/);
  t.match(await imapLogin('127.0.1.20', 'ann@throttle.test', PASSWORD), /^a OK /, 'other mailboxes are not affected');
  t.match(await pop3Login('127.0.1.21', 'ghost@throttle.test', 'guess'), /^-ERR \[AUTH\] Authentication failed/, 'the unknown address is not locked');

  const lockout = await services.loginThrottle.get('bob@throttle.test', ACTOR);
  t.match(lockout, { locked: true, lockedUntil: String, recentFailures: 6 });
  const [event] = await auditOf('bob@throttle.test');
  t.match(event, { action: 'mailbox.login_lockout.start', targetType: 'mailbox', domain: 'throttle.test', ip: '127.0.1.6', after: { failures: 6, protocol: 'imap' } });
  t.equal(await metric('mailroom_login_throttled_total', { protocol: 'imap', reason: 'mailbox_locked' }), 1);
  t.equal(await metric('mailroom_login_lockouts_active', { kind: 'mailbox' }), 1);

  await services.loginThrottle.clear('bob@throttle.test', ACTOR);
  t.same(await services.loginThrottle.get('bob@throttle.test', ACTOR), { locked: false, lockedUntil: null, recentFailures: 0 });
  t.match(await imapLogin('127.0.1.20', 'bob@throttle.test', PASSWORD), /^a OK /, 'unlocked, the right password works again');
  t.equal((await auditOf('bob@throttle.test'))[0]!.action, 'mailbox.login_lockout.clear');
});

t.test("a successful login forgets the mailbox's failures but not the address's", async (t) => {
  const from = '127.0.2.1';
  for (let i = 0; i < 3; i++) t.match(await pop3Login(from, 'cid@throttle.test', 'guess'), /^-ERR \[AUTH\]/);
  t.equal((await services.loginThrottle.get('cid@throttle.test', ACTOR)).recentFailures, 3);
  t.match(await pop3Login(from, 'cid@throttle.test', PASSWORD), /^\+OK /);
  t.equal((await services.loginThrottle.get('cid@throttle.test', ACTOR)).recentFailures, 0, 'the mailbox starts afresh');
  // Otherwise a guesser holding one mailbox could log into it now and then to keep guessing others.
  t.match(await pop3Login(from, 'ann@throttle.test', 'guess'), /^-ERR \[AUTH\]/);
  t.match(await pop3Login(from, 'cid@throttle.test', PASSWORD), /^-ERR \[SYS\/TEMP\]/, 'the address reached its threshold');
});

t.test('the lock holds on another gateway process on the same database', { skip: fixture.url === null && 'one process owns an embedded database' }, async (t) => {
  const other: GatewayFixture = await gatewayFixture(t, fixture.url, SETTINGS);
  const doors = { imap: (await startTestImap(t, { fixture: other })).port, pop3: (await startTestPop3(t, { fixture: other })).port };
  const from = '127.0.3.1';
  for (let i = 0; i < 4; i++) t.match(await imapLogin(from, 'ann@throttle.test', 'guess'), /^a NO \[AUTHENTICATIONFAILED\]/);
  t.match(await pop3Login(from, 'ann@throttle.test', PASSWORD, doors), /^-ERR \[SYS\/TEMP\]/);
  t.match(await imapLogin(from, 'ann@throttle.test', PASSWORD, doors), /^a NO \[UNAVAILABLE\]/);
});

t.test('a lockout ends by itself after its period', async (t) => {
  const short = await gatewayFixture(t, undefined, { failuresPerIp: 1, failuresPerMailbox: 0, lockSeconds: 2, maxDelayMs: 0 });
  await short.mailbox('dee@throttle.test');
  const doors = { imap: (await startTestImap(t, { fixture: short })).port, pop3: (await startTestPop3(t, { fixture: short })).port };
  const from = '127.0.4.1';
  t.match(await pop3Login(from, 'dee@throttle.test', 'guess', doors), /^-ERR \[AUTH\]/);
  t.match(await pop3Login(from, 'dee@throttle.test', PASSWORD, doors), /^-ERR \[SYS\/TEMP\]/, 'locked at the first failure');
  let answer = '';
  for (let i = 0; i < 100 && !answer.startsWith('+OK'); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    answer = await pop3Login(from, 'dee@throttle.test', PASSWORD, doors);
  }
  t.match(answer, /^\+OK /, 'the right password works once the lock is over');
  await short.services.loginThrottle.forgetExpired();
  t.same(await short.database.db.select().from(loginFailures), [], 'counts whose period is over are forgotten');
});

t.test('an IPv6 client is counted by its /64, so it cannot step to a fresh address', async (t) => {
  t.equal(clientKey('2001:db8:1:2::5'), '2001:db8:1:2::/64');
  t.equal(clientKey('2001:0db8:0001:0002:ffff:1:2:3'), '2001:db8:1:2::/64', 'spelled out in full');
  t.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64');
  t.equal(clientKey('::1'), '0:0:0:0::/64');
  t.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64', 'without its zone');
  t.equal(clientKey('192.0.2.7'), '192.0.2.7', 'IPv4 as it is');

  await fixture.mailbox('eve@throttle.test');
  const attempt = (ip: string, password: string) => services.login.login({ address: 'eve@throttle.test', password, protocol: 'imap', ip });
  for (let i = 1; i <= 4; i++) await t.rejects(attempt(`2001:db8:7:7::${i}`, 'guess'), { message: 'Authentication failed' });
  await t.rejects(attempt('2001:db8:7:7:abcd::1', PASSWORD), { message: /from your address/ }, 'another address of the /64 is locked too');
  t.equal((await attempt('2001:db8:7:8::1', PASSWORD)).address, 'eve@throttle.test', 'the next /64 is not');
});
