// "Why can't this user log in?": real IMAP and POP3 logins failing for each reason, then the
// login check read through the API on the same database. The doors sit behind a PROXY-protocol
// balancer, so every attempt comes from a client address of its own (and, without TLS, from
// another host: credentials are refused there).
import { count, eq } from 'drizzle-orm';
import t from 'tap';
import { recordFailedLogin } from '../../src/core/auth/failed-logins.js';
import type { LoginThrottleSettings } from '../../src/core/auth/throttle.js';
import { failedLogins } from '../../src/db/schema/index.js';
import { trustList } from '../../src/net/proxy-protocol.js';
import { buildTestApi } from '../helpers/api.js';
import { apiClient, auditEvents, makeKey } from '../helpers/api-client.js';
import { ACTOR, gatewayFixture, PASSWORD } from '../helpers/gateway.js';
import { startTestImap } from '../helpers/imap.js';
import { LineClient, run } from '../helpers/line-client.js';
import { startTestPop3 } from '../helpers/pop3.js';
import { assertProblem } from '../helpers/problem.js';

const THROTTLE: LoginThrottleSettings = { failuresPerIp: 3, failuresPerMailbox: 4, lockSeconds: 600, maxDelayMs: 0 };
const LOOPBACK = trustList(['127.0.0.1']);
const fixture = await gatewayFixture(t, undefined, THROTTLE);
const imap = await startTestImap(t, { fixture, proxyFrom: { plain: LOOPBACK, secure: LOOPBACK } });
const pop3 = await startTestPop3(t, { fixture, proxyFrom: { plain: LOOPBACK, secure: LOOPBACK } });
const api = await buildTestApi(t, { database: fixture.database, loginThrottle: THROTTLE });
const client = apiClient(api.app);
const admin = client.as(api.admin);
const support = client.as((await makeKey(api.services, 'support', 'helpdesk')).headers);

const DOMAIN = 'check.test';
for (const name of ['ann', 'pat', 'sue', 'lou', 'ivy', 'fay']) await fixture.mailbox(`${name}@${DOMAIN}`);
await fixture.mailbox('dom@frozen.test');

const check = async (address: string, caller = support) => {
  const response = await caller.get(`/v1/mailboxes/${address}/login-check`);
  if (response.statusCode !== 200) throw new Error(`login-check ${address}: ${response.statusCode} ${response.body}`);
  return response.json();
};
const proxied = (ip: string) => Buffer.from(`PROXY TCP4 ${ip} 127.0.0.1 51234 993\r\n`);

/** LOGIN over IMAPS (or plain IMAP, from another host) from `ip`; the tagged answer. */
async function imapLogin(address: string, password: string, ip: string, tls = true): Promise<string> {
  const connection = await LineClient.connect(tls ? imap.securePort : imap.port, { tls, preface: proxied(ip) });
  try {
    await connection.readLine();
    return (await run(connection, `a LOGIN ${address} "${password}"`)).at(-1) ?? 'closed';
  } finally {
    connection.close();
  }
}

/** USER and PASS over POP3S (or plain POP3, from another host) from `ip`; the first refusal or PASS's answer. */
async function pop3Login(address: string, password: string, ip: string, tls = true): Promise<string> {
  const connection = await LineClient.connect(tls ? pop3.securePort : pop3.port, { tls, preface: proxied(ip) });
  try {
    await connection.readLine();
    const user = (await connection.command(`USER ${address}`)) ?? 'closed';
    if (!user.startsWith('+OK')) return user;
    const pass = (await connection.command(`PASS ${password}`)) ?? 'closed';
    if (pass.startsWith('+OK')) await connection.command('QUIT');
    return pass;
  } finally {
    connection.close();
  }
}

t.test('a mailbox that may log in: nothing blocks, each protocol has its last login, password age and quota', async (t) => {
  t.match(await imapLogin(`ann@${DOMAIN}`, PASSWORD, '203.0.113.30'), /^a OK/);
  t.match(await pop3Login(`ann@${DOMAIN}`, PASSWORD, '203.0.113.31'), /^\+OK Logged in/);
  const result = await check(`ann@${DOMAIN}`);
  t.match(result, {
    address: `ann@${DOMAIN}`,
    canLogIn: { imap: true, pop3: true },
    blockers: [],
    status: 'active',
    domain: { name: DOMAIN, status: 'active' },
    protocols: {
      imap: { enabled: true, reason: null, until: null, changedAt: null, lastLogin: { at: String, ip: '203.0.113.30' } },
      pop3: { enabled: true, reason: null, until: null, changedAt: null, lastLogin: { at: String, ip: '203.0.113.31' } },
    },
    lockout: { locked: false, lockedUntil: null, recentFailures: 0 },
    failedLogins: [],
    quota: { limits: { storageBytes: null, messages: null }, usage: { storageBytes: 0, messages: 0 }, percentUsed: { storageBytes: null, messages: null }, newMailRefused: false, refusedBy: [] },
    password: { changedAt: String, ageDays: 0 },
    checkedAt: String,
  });
  t.same(
    result.clientAddresses,
    [
      { address: '203.0.113.30', locked: false, lockedUntil: null, recentFailures: 0 },
      { address: '203.0.113.31', locked: false, lockedUntil: null, recentFailures: 0 },
    ],
    'the addresses of the last logins, with their lockouts',
  );
  t.ok(result.protocols.pop3.lastLogin.at >= result.protocols.imap.lastLogin.at, 'each protocol keeps its own last login');
  const mailbox = (await support.get(`/v1/mailboxes/ann@${DOMAIN}`)).json();
  t.match(mailbox.lastLogin, { protocol: 'pop3', ip: '203.0.113.31' }, 'lastLogin of the resource is still the latest of both');
});

t.test('a wrong password and credentials sent without TLS show as the last failures, newest first', async (t) => {
  t.match(await imapLogin(`ann@${DOMAIN}`, 'not the password', '203.0.113.40'), /^a NO \[AUTHENTICATIONFAILED\]/);
  t.match(await imapLogin(`ann@${DOMAIN}`, PASSWORD, '203.0.113.41', false), /^a NO \[PRIVACYREQUIRED\]/);
  t.match(await pop3Login(`ANN@${DOMAIN}`, PASSWORD, '203.0.113.42', false), /^-ERR \[AUTH\] Plaintext authentication disallowed/);
  t.match(await imapLogin(`nobody@${DOMAIN}`, PASSWORD, '203.0.113.43', false), /^a NO \[PRIVACYREQUIRED\]/, 'an unknown address');
  const result = await check(`ann@${DOMAIN}`);
  t.match(result.failedLogins, [
    { protocol: 'pop3', ip: '203.0.113.42', reason: 'tls_required', at: String },
    { protocol: 'imap', ip: '203.0.113.41', reason: 'tls_required', at: String },
    { protocol: 'imap', ip: '203.0.113.40', reason: 'wrong_password', at: String },
  ]);
  t.equal(result.failedLogins.length, 3);
  t.same(result.canLogIn, { imap: true, pop3: true }, 'none of this stops the right login');
  t.same(result.blockers, []);
  t.match(
    result.clientAddresses.find((c: { address: string }) => c.address === '203.0.113.40'),
    { locked: false, recentFailures: 1 },
    'the address of the wrong password, counted towards its lockout',
  );
  t.match(result.lockout, { locked: false, recentFailures: 1 }, 'the wrong password counts against the mailbox');
});

t.test('a protocol switched off with a reason and an end: refused over it, open over the other', async (t) => {
  const until = new Date(Date.now() + 3_600_000).toISOString();
  const patched = await support.patch(`/v1/mailboxes/pat@${DOMAIN}`, { protocols: { pop3: { enabled: false, reason: 'abuse report #123', until } } });
  t.equal(patched.statusCode, 200, patched.body);
  t.match(await pop3Login(`pat@${DOMAIN}`, PASSWORD, '203.0.113.50'), /^-ERR \[AUTH\] POP3 is disabled for this mailbox/);
  t.match(await imapLogin(`pat@${DOMAIN}`, PASSWORD, '203.0.113.51'), /^a OK/);
  const result = await check(`pat@${DOMAIN}`);
  t.same(result.canLogIn, { imap: true, pop3: false });
  t.match(result.blockers, [{ code: 'protocol_disabled', detail: /^POP3 is switched off \(abuse report #123\); it comes back by itself at / }]);
  t.equal(result.blockers.length, 1);
  t.match(result.protocols.pop3, { enabled: false, reason: 'abuse report #123', until, changedAt: String, lastLogin: null });
  t.match(result.failedLogins, [{ protocol: 'pop3', ip: '203.0.113.50', reason: 'protocol_disabled' }]);
  t.equal(result.failedLogins.length, 1);
  t.equal(result.lockout.recentFailures, 0, 'a refusal after the right password is no failed guess');
});

t.test('a suspended mailbox, and a mailbox of a suspended domain', async (t) => {
  t.equal((await admin.patch(`/v1/mailboxes/sue@${DOMAIN}`, { status: 'suspended' })).statusCode, 200);
  t.match(await imapLogin(`sue@${DOMAIN}`, PASSWORD, '203.0.113.60'), /^a NO .*suspended/);
  t.match(await pop3Login(`sue@${DOMAIN}`, 'not the password', '203.0.113.61'), /^-ERR \[AUTH\] Authentication failed/, 'a wrong password is told no more');
  const sue = await check(`sue@${DOMAIN}`);
  t.same(sue.canLogIn, { imap: false, pop3: false });
  t.match(sue.blockers, [{ code: 'mailbox_suspended', detail: String }]);
  t.equal(sue.status, 'suspended');
  t.match(sue.failedLogins, [
    { protocol: 'pop3', ip: '203.0.113.61', reason: 'wrong_password' },
    { protocol: 'imap', ip: '203.0.113.60', reason: 'suspended' },
  ]);

  t.equal((await admin.patch('/v1/domains/frozen.test', { status: 'suspended' })).statusCode, 200);
  t.match(await pop3Login('dom@frozen.test', PASSWORD, '203.0.113.62'), /^-ERR \[AUTH\] .*domain is suspended/);
  const dom = await check('dom@frozen.test', admin);
  t.same(dom.canLogIn, { imap: false, pop3: false });
  t.equal(dom.status, 'active');
  t.same(dom.domain, { name: 'frozen.test', status: 'suspended' });
  t.match(dom.blockers, [{ code: 'domain_suspended', detail: /frozen\.test/ }]);
  t.match(dom.failedLogins, [{ protocol: 'pop3', reason: 'suspended' }]);
});

t.test('a mailbox locked by failed logins; support clears the lockout through the login check', async (t) => {
  // One guess from each of four addresses: the mailbox is locked, no address is.
  for (const ip of ['203.0.113.70', '203.0.113.71', '203.0.113.72', '203.0.113.73']) {
    t.match(await imapLogin(`lou@${DOMAIN}`, 'not the password', ip), /^a NO \[AUTHENTICATIONFAILED\]/);
  }
  t.match(await pop3Login(`lou@${DOMAIN}`, PASSWORD, '203.0.113.74'), /^-ERR \[SYS\/TEMP\] Too many failed logins to this mailbox/);
  const locked = await check(`lou@${DOMAIN}`);
  t.same(locked.canLogIn, { imap: false, pop3: false });
  t.match(locked.lockout, { locked: true, lockedUntil: String, recentFailures: 4 });
  t.match(locked.blockers, [{ code: 'mailbox_locked', detail: /locked the mailbox until/ }]);
  t.same(
    locked.failedLogins.map((f: { reason: string; ip: string }) => [f.reason, f.ip]),
    [
      ['locked', '203.0.113.74'],
      ['wrong_password', '203.0.113.73'],
      ['wrong_password', '203.0.113.72'],
      ['wrong_password', '203.0.113.71'],
      ['wrong_password', '203.0.113.70'],
    ],
  );
  t.ok(locked.clientAddresses.every((c: { locked: boolean }) => !c.locked), 'no client address is locked');

  const cleared = await support.delete(`/v1/mailboxes/lou@${DOMAIN}/login-check/lockout`);
  t.equal(cleared.statusCode, 204);
  const after = await check(`lou@${DOMAIN}`);
  t.same(after.canLogIn, { imap: true, pop3: true });
  t.same(after.lockout, { locked: false, lockedUntil: null, recentFailures: 0 });
  t.same(after.blockers, []);
  t.equal(after.failedLogins.length, 5, 'the history stays for support to read');
  t.match(await imapLogin(`lou@${DOMAIN}`, PASSWORD, '203.0.113.75'), /^a OK/, 'the right password works again');
  const [event] = (await auditEvents(admin, `target=lou@${DOMAIN}&action=mailbox.login_lockout.clear`)).items;
  t.match(event, { actor: { name: 'helpdesk' }, before: { locked: true, recentFailures: 4 } });
});

t.test('a locked client address: shown with the mailbox it was used on; a confined key sees the lock, not the count', async (t) => {
  const ip = '198.51.100.20';
  t.match(await imapLogin(`ivy@${DOMAIN}`, 'not the password', ip), /^a NO/);
  t.match(await imapLogin(`guess1@${DOMAIN}`, 'not the password', ip), /^a NO/);
  t.match(await pop3Login(`guess2@${DOMAIN}`, 'not the password', ip), /^-ERR/);
  t.match(await imapLogin(`ivy@${DOMAIN}`, PASSWORD, ip), /^a NO \[UNAVAILABLE\] Too many failed logins from your address/);
  const result = await check(`ivy@${DOMAIN}`, admin);
  t.same(result.canLogIn, { imap: true, pop3: true }, 'from other addresses the mailbox is open');
  t.match(result.clientAddresses, [{ address: ip, locked: true, lockedUntil: String, recentFailures: 3 }]);
  t.match(result.blockers, [{ code: 'client_address_locked', detail: new RegExp(`client address ${ip.replaceAll('.', '\\.')}`) }]);
  t.match(result.failedLogins, [{ reason: 'locked', ip }, { reason: 'wrong_password', ip }]);
  t.equal(result.lockout.locked, false);

  const confined = client.as((await makeKey(api.services, 'support', 'tenant desk', [DOMAIN])).headers);
  const seen = await check(`ivy@${DOMAIN}`, confined);
  t.same(seen.clientAddresses, [{ address: ip, locked: true, lockedUntil: result.clientAddresses[0].lockedUntil, recentFailures: null }]);
  const provisioner = client.as((await makeKey(api.services, 'provisioner', 'provisioning')).headers);
  t.equal((await provisioner.get(`/v1/mailboxes/ivy@${DOMAIN}/login-check`)).statusCode, 200, 'every role may look');
});

t.test('over quota refuses mail, not logins', async (t) => {
  for (const subject of ['one', 'two']) await imap.deliver(`fay@${DOMAIN}`, `Subject: ${subject}\r\n\r\nx\r\n`);
  t.equal((await admin.patch(`/v1/mailboxes/fay@${DOMAIN}`, { quota: { messages: 1 } })).statusCode, 200);
  const result = await check(`fay@${DOMAIN}`);
  t.match(result.quota, {
    limits: { storageBytes: null, messages: 1 },
    usage: { messages: 2 },
    percentUsed: { storageBytes: null, messages: 200 },
    newMailRefused: true,
    refusedBy: ['messages'],
  });
  t.same(result.canLogIn, { imap: true, pop3: true });
  t.same(result.blockers, []);
  t.match(await imapLogin(`fay@${DOMAIN}`, PASSWORD, '203.0.113.80'), /^a OK/);
});

t.test('at most 20 failed logins are kept per mailbox, the newest', async (t) => {
  const { id } = await fixture.services.mailboxes.find(`fay@${DOMAIN}`, ACTOR);
  for (let i = 1; i <= 25; i++) {
    await recordFailedLogin(fixture.database.db, { accountId: id, protocol: 'imap', ip: `192.0.2.${i}`, reason: 'wrong_password' });
  }
  const [kept] = await fixture.database.db.select({ n: count() }).from(failedLogins).where(eq(failedLogins.accountId, id));
  t.equal(kept!.n, 20);
  const result = await check(`fay@${DOMAIN}`);
  t.equal(result.failedLogins.length, 20);
  t.equal(result.failedLogins[0].ip, '192.0.2.25');
  t.equal(result.failedLogins[19].ip, '192.0.2.6');
});

t.test('refusals: unknown mailbox, another tenant, no key', async (t) => {
  const other = client.as((await makeKey(api.services, 'admin', 'other tenant', ['other.test'])).headers);
  for (const caller of [other, admin]) {
    const address = caller === admin ? `nobody@${DOMAIN}` : `ann@${DOMAIN}`;
    assertProblem(t, await caller.get(`/v1/mailboxes/${address}/login-check`), 404, 'mailbox_not_found');
    assertProblem(t, await caller.delete(`/v1/mailboxes/${address}/login-check/lockout`), 404, 'mailbox_not_found');
  }
  assertProblem(t, await client.as().get(`/v1/mailboxes/ann@${DOMAIN}/login-check`), 401, 'unauthenticated');
  assertProblem(t, await admin.get('/v1/mailboxes/ab/login-check'), 400, 'validation_failed');
});
