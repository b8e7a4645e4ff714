import t from 'tap';
import { loginFailures } from '../../src/db/schema/index.js';
import { buildTestApi, PASSWORD } from '../helpers/api.js';
import { assertProblem } from '../helpers/problem.js';

const api = await buildTestApi(t, { loginThrottle: { failuresPerIp: 100, failuresPerMailbox: 3, lockSeconds: 600, maxDelayMs: 0 } });
const { app, admin, services } = api;

const ADDRESS = 'ann@lockout.test';
await app.inject({ method: 'POST', url: '/v1/domains', headers: admin, payload: { name: 'lockout.test' } });
await app.inject({ method: 'POST', url: '/v1/mailboxes', headers: admin, payload: { address: ADDRESS, password: PASSWORD } });

const login = (password: string, ip = '192.0.2.1') => services.login.login({ address: ADDRESS, password, protocol: 'imap', ip });

async function metricsLine(name: string): Promise<string | undefined> {
  const body = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  return body.split('\n').find((line) => line.startsWith(name));
}

t.test('support sees a locked mailbox and unlocks it; the unlock is audited', async (t) => {
  const support = await api.keyFor('support');
  const path = `/v1/mailboxes/${ADDRESS}/login-lockout`;
  t.same((await app.inject({ method: 'GET', url: path, headers: support })).json(), { locked: false, lockedUntil: null, recentFailures: 0 });

  for (const ip of ['192.0.2.1', '192.0.2.2', '2001:db8::1']) await t.rejects(login('wrong', ip), { message: 'Authentication failed' });
  await t.rejects(login(PASSWORD), { message: /Too many failed logins to this mailbox/ }, 'the right password is refused while locked');
  const locked = await app.inject({ method: 'GET', url: path, headers: support });
  t.equal(locked.statusCode, 200);
  t.match(locked.json(), { locked: true, lockedUntil: String, recentFailures: 3 });
  t.ok(Date.parse(locked.json().lockedUntil) > Date.now(), 'locked until a time to come');
  t.equal(await metricsLine('mailroom_login_lockouts_total{kind="mailbox"}'), 'mailroom_login_lockouts_total{kind="mailbox"} 1');
  t.equal(await metricsLine('mailroom_login_lockouts_active{kind="mailbox"}'), 'mailroom_login_lockouts_active{kind="mailbox"} 1');
  t.equal(await metricsLine('mailroom_login_throttled_total{protocol="imap",reason="mailbox_locked"}'), 'mailroom_login_throttled_total{protocol="imap",reason="mailbox_locked"} 1');

  const cleared = await app.inject({ method: 'DELETE', url: path, headers: support });
  t.equal(cleared.statusCode, 204);
  t.same((await app.inject({ method: 'GET', url: path, headers: support })).json(), { locked: false, lockedUntil: null, recentFailures: 0 });
  t.equal((await login(PASSWORD)).address, ADDRESS, 'the right password works again');
  t.equal(await metricsLine('mailroom_login_lockouts_active{kind="mailbox"}'), 'mailroom_login_lockouts_active{kind="mailbox"} 0');

  const events = (await app.inject({ method: 'GET', url: `/v1/audit-events?target=${ADDRESS}&limit=5`, headers: admin })).json().items;
  t.match(events[0], {
    action: 'mailbox.login_lockout.clear',
    actor: { name: 'support test key' },
    before: { locked: true, recentFailures: 3 },
  });
  t.match(events[1], { action: 'mailbox.login_lockout.start', actor: { id: 'login-throttle' }, ip: '2001:db8::1' });
});

t.test('an unknown mailbox is 404 and gains no lockout record', async (t) => {
  await t.rejects(services.login.login({ address: 'nobody@lockout.test', password: 'x', protocol: 'pop3', ip: '192.0.2.9' }));
  const counted = await api.database.db.select({ kind: loginFailures.kind, key: loginFailures.key }).from(loginFailures);
  t.same(counted.filter((row) => row.kind === 'mailbox'), [], 'failures for unknown mailboxes are not stored per mailbox');
  t.ok(counted.some((row) => row.kind === 'ip' && row.key === '192.0.2.9'), 'only per client address');
  const path = '/v1/mailboxes/nobody@lockout.test/login-lockout';
  assertProblem(t, await app.inject({ method: 'GET', url: path, headers: admin }), 404, 'mailbox_not_found');
  assertProblem(t, await app.inject({ method: 'DELETE', url: path, headers: admin }), 404, 'mailbox_not_found');
});

t.test('support sees a locked client address and unlocks it; confined keys may not', async (t) => {
  const support = await api.keyFor('support');
  const ip = '198.51.100.7';
  const path = `/v1/login-lockouts/clients/${ip}`;
  for (let i = 0; i < 100; i++) {
    await t.rejects(services.login.login({ address: `guess${i}@lockout.test`, password: 'x', protocol: 'pop3', ip }));
  }
  await t.rejects(login(PASSWORD, ip), { message: /Too many failed logins/ }, 'the address is locked out, even with a right password');
  t.match((await app.inject({ method: 'GET', url: path, headers: support })).json(), { locked: true, lockedUntil: String, recentFailures: 100 });

  const confined = await api.keyFor('admin', ['lockout.test']);
  assertProblem(t, await app.inject({ method: 'GET', url: path, headers: confined }), 403, 'domain_confined');
  assertProblem(t, await app.inject({ method: 'DELETE', url: path, headers: confined }), 403, 'domain_confined');
  await t.rejects(login(PASSWORD, ip), { message: /Too many failed logins/ }, 'still locked');
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/login-lockouts/clients/not-an-address', headers: support }), 422, 'invalid_ip');

  t.equal((await app.inject({ method: 'DELETE', url: path, headers: support })).statusCode, 204);
  t.same((await app.inject({ method: 'GET', url: path, headers: support })).json(), { locked: false, lockedUntil: null, recentFailures: 0 });
  t.equal((await login(PASSWORD, ip)).address, ADDRESS, 'logins from the address work again');
  const events = (await app.inject({ method: 'GET', url: `/v1/audit-events?target=${ip}&limit=5`, headers: admin })).json().items;
  t.match(events[0], { action: 'login_lockout.clear', actor: { name: 'support test key' }, before: { locked: true, recentFailures: 100 } });
  t.match(events[1], { action: 'login_lockout.start', ip });
});
