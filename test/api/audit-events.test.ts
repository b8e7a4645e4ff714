import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import bcrypt from 'bcryptjs';
import { sql } from 'drizzle-orm';
import t from 'tap';
import { buildTestApi, PASSWORD } from '../helpers/api.js';
import { assertProblem } from '../helpers/problem.js';

const api = await buildTestApi(t);
const { app, admin } = api;

interface Event {
  id: string;
  at: string;
  actor: { id: string; name: string };
  action: string;
  targetType: string;
  target: string;
  domain: string | null;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  requestId: string | null;
  ip: string | null;
}

async function inject(method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, headers: object, payload?: object) {
  const response = await app.inject({ method, url, headers: headers as Record<string, string>, ...(payload ? { payload } : {}) });
  if (response.statusCode >= 300) throw new Error(`setup ${method} ${url}: ${response.body}`);
  return response;
}

/** Every page of a listing, and the raw bodies they came in. */
async function listAll(query: string, headers: object = admin, limit = 500): Promise<{ items: Event[]; bodies: string[] }> {
  const items: Event[] = [];
  const bodies: string[] = [];
  let cursor: string | null = null;
  do {
    const page = await inject('GET', `/v1/audit-events?limit=${limit}&${query}${cursor === null ? '' : `&cursor=${cursor}`}`, headers);
    bodies.push(page.body);
    items.push(...page.json().items);
    cursor = page.json().nextCursor;
  } while (cursor !== null);
  return { items, bodies };
}

// The history every test reads: two domains, keys, mailboxes and password changes by several actors.
const SECOND_PASSWORD = 'a second password, quite long';
const THIRD_PASSWORD = 'the third password, for b.';
const importedHash = bcrypt.hashSync('imported secret', 4);
await inject('POST', '/v1/domains', admin, { name: 'alpha.test' });
await inject('POST', '/v1/domains', admin, { name: 'beta.test' });
const provisioner = (await inject('POST', '/v1/api-keys', admin, { name: 'script', role: 'provisioner' })).json();
const support = (await inject('POST', '/v1/api-keys', admin, { name: 'helpdesk', role: 'support' })).json();
const confined = (await inject('POST', '/v1/api-keys', admin, { name: 'alpha dashboard', role: 'support', domains: ['alpha.test'] })).json();
const asProvisioner = { authorization: `Bearer ${provisioner.token}` };
const asSupport = { authorization: `Bearer ${support.token}` };
const asConfined = { authorization: `Bearer ${confined.token}` };
await inject('POST', '/v1/mailboxes', asProvisioner, { address: 'ann@alpha.test', password: PASSWORD });
await inject('POST', '/v1/mailboxes', asProvisioner, { address: 'bob@beta.test', password: PASSWORD, displayName: 'Bob' });
await inject('PUT', '/v1/mailboxes/ann@alpha.test/password', asConfined, { password: SECOND_PASSWORD });
await inject('PUT', '/v1/mailboxes/bob@beta.test/password', asSupport, { password: THIRD_PASSWORD });
await inject('PUT', '/v1/mailboxes/bob@beta.test/password', admin, { passwordHash: importedHash });
await inject('PATCH', '/v1/mailboxes/bob@beta.test', asSupport, { protocols: { pop3: false } });
await inject('PATCH', '/v1/domains/beta.test', admin, { status: 'suspended' });
const revoked = (await inject('POST', '/v1/api-keys', admin, { name: 'revoked', role: 'admin' })).json();
await inject('DELETE', `/v1/api-keys/${revoked.id}`, admin);

t.test('events read newest first, with who, what, target and where from', async (t) => {
  const { items } = await listAll('');
  t.same(
    items.map((e) => e.action),
    [
      'api_key.revoke',
      'api_key.create',
      'domain.update',
      'mailbox.update',
      'mailbox.password.set',
      'mailbox.password.set',
      'mailbox.password.set',
      'mailbox.create',
      'mailbox.create',
      'api_key.create',
      'api_key.create',
      'api_key.create',
      'domain.create',
      'domain.create',
    ],
  );
  const update = items.find((e) => e.action === 'mailbox.update')!;
  t.match(update, {
    id: String,
    at: String,
    actor: { id: support.id, name: 'helpdesk' },
    targetType: 'mailbox',
    target: 'bob@beta.test',
    domain: 'beta.test',
    before: { protocols: { imap: true, pop3: true } },
    after: { protocols: { imap: true, pop3: false } },
    requestId: String,
    ip: '127.0.0.1',
  });
  t.same(Object.keys(update.after!), ['protocols'], 'only the changed fields');
});

t.test('filter by target (case-insensitive)', async (t) => {
  for (const target of ['bob@beta.test', 'BOB@Beta.TEST']) {
    const { items } = await listAll(`target=${encodeURIComponent(target)}`);
    t.same(
      items.map((e) => e.action),
      ['mailbox.update', 'mailbox.password.set', 'mailbox.password.set', 'mailbox.create'],
      target,
    );
    t.ok(items.every((e) => e.target === 'bob@beta.test'));
  }
  t.same((await listAll('target=beta.test')).items.map((e) => e.action), ['domain.update', 'domain.create']);
  t.same((await listAll(`target=${revoked.id}`)).items.map((e) => e.action), ['api_key.revoke', 'api_key.create']);
  t.same((await listAll('target=nobody.test')).items, []);
});

t.test('filter by actor', async (t) => {
  const byProvisioner = (await listAll(`actor=${provisioner.id}`)).items;
  t.same(byProvisioner.map((e) => [e.action, e.target]), [
    ['mailbox.create', 'bob@beta.test'],
    ['mailbox.create', 'ann@alpha.test'],
  ]);
  const bySupport = (await listAll(`actor=${support.id}`)).items;
  t.same(bySupport.map((e) => e.action), ['mailbox.update', 'mailbox.password.set']);
  const byBootstrap = (await listAll('actor=bootstrap-admin')).items;
  t.equal(byBootstrap.length, 9);
  t.ok(byBootstrap.every((e) => e.actor.id === 'bootstrap-admin' && e.actor.name === 'MAILROOM_ADMIN_TOKEN'));
});

t.test('filter by action, and filters combine', async (t) => {
  const sets = (await listAll('action=mailbox.password.set')).items;
  t.same(sets.map((e) => e.target), ['bob@beta.test', 'bob@beta.test', 'ann@alpha.test']);
  t.same((await listAll(`action=mailbox.password.set&actor=${support.id}`)).items.map((e) => e.target), ['bob@beta.test']);
  t.same((await listAll('action=mailbox.password.set&target=ann@alpha.test')).items.map((e) => e.actor.id), [confined.id]);
  t.same((await listAll('action=mailbox.delete')).items, []);
});

t.test('filter by time range', async (t) => {
  // Three events far enough apart that the clock tells them apart.
  const at: string[] = [];
  for (const name of ['time1.test', 'time2.test', 'time3.test']) {
    await sleep(30);
    const created = await inject('POST', '/v1/domains', admin, { name });
    at.push((await listAll(`target=${name}`)).items[0]!.at);
    t.equal(created.statusCode, 201);
    await sleep(30);
  }
  const [t1, t2, t3] = at as [string, string, string];
  const targets = async (query: string) =>
    (await listAll(`action=domain.create&${query}`)).items.map((e) => e.target).filter((name) => name.startsWith('time'));
  const between = (a: string, b: string) => new Date((Date.parse(a) + Date.parse(b)) / 2).toISOString();

  t.same(await targets(`from=${between(t1, t2)}`), ['time3.test', 'time2.test'], 'from');
  t.same(await targets(`to=${between(t2, t3)}`), ['time2.test', 'time1.test'], 'to');
  t.same(await targets(`from=${between(t1, t2)}&to=${between(t2, t3)}`), ['time2.test'], 'from and to');
  t.same(await targets(`from=${between(t2, t3)}&to=${between(t1, t2)}`), [], 'an empty range');
  // Both ends are inclusive: an event's own time, as listed, finds it.
  t.same(await targets(`from=${t2}&to=${t2}`), ['time2.test'], 'from = to = the event time');
  t.same(await targets(`to=${t1}`), ['time1.test'], 'to = the event time');
  // Any time zone offset means the same instant.
  const shifted = new Date(Date.parse(between(t1, t2)) + 2 * 3600_000).toISOString().replace('Z', '+02:00');
  t.same(await targets(`from=${encodeURIComponent(shifted)}`), ['time3.test', 'time2.test'], 'an offset');
});

t.test('a time that is not a real instant is refused, not a server error', async (t) => {
  for (const query of ['from=yesterday', 'to=2024-01-01', 'from=2024-13-01T00:00:00Z', 'from=2024-01-01T00:00:00']) {
    assertProblem(t, await app.inject({ method: 'GET', url: `/v1/audit-events?${query}`, headers: admin }), 400, 'validation_failed');
  }
  // Valid RFC 3339 that the database cannot take: a leap second, year 0 or 10000 in UTC.
  for (const [query, field] of [
    ['from=2016-12-31T23:59:60Z', 'from'],
    ['to=0000-01-01T00:00:00Z', 'to'],
    [`from=${encodeURIComponent('0001-01-01T00:30:00+01:00')}`, 'from'],
    [`to=${encodeURIComponent('9999-12-31T23:59:59-01:00')}`, 'to'],
  ]) {
    const response = await app.inject({ method: 'GET', url: `/v1/audit-events?${query}`, headers: admin });
    t.equal(assertProblem(t, response, 422, 'invalid_time').field, field);
  }
  // The ends of the range that can be stored work.
  const total = (await listAll('')).items.length;
  for (const query of ['from=0001-01-01T00:00:00Z', 'to=9999-12-31T23:59:59.999Z']) {
    const response = await app.inject({ method: 'GET', url: `/v1/audit-events?limit=500&${query}`, headers: admin });
    t.equal(response.statusCode, 200, query);
    t.equal(response.json().items?.length, total, `${query}: every event`);
  }
});

t.test('pages newest first with an opaque cursor', async (t) => {
  const all = (await listAll('')).items;
  t.ok(all.length > 10);
  const paged = await listAll('', admin, 3);
  t.same(paged.items, all, 'pages of 3 add up to the whole list');
  t.equal(paged.bodies.length, Math.ceil(all.length / 3));
  const ids = all.map((e) => Number(e.id));
  t.ok(ids.every((id, i) => i === 0 || id < ids[i - 1]!), 'ids strictly decreasing');
  t.ok(all.every((e, i) => i === 0 || e.at <= all[i - 1]!.at), 'times never increase');
  const filtered = await listAll('action=api_key.create', admin, 1);
  t.same(filtered.items.map((e) => e.target), [revoked.id, confined.id, support.id, provisioner.id], 'paging keeps the filter');

  const last = await app.inject({ method: 'GET', url: `/v1/audit-events?limit=${all.length}`, headers: admin });
  t.equal(last.json().nextCursor, null, 'no cursor after the last page');
  for (const cursor of ['nope', Buffer.from('{"after":1.5}').toString('base64url'), Buffer.from('{"after":"7"}').toString('base64url')]) {
    assertProblem(t, await app.inject({ method: 'GET', url: `/v1/audit-events?cursor=${cursor}`, headers: admin }), 422, 'invalid_cursor');
  }
});

t.test('a domain-confined key sees only events of its own domains', async (t) => {
  const { items } = await listAll('', asConfined);
  t.same(items.map((e) => [e.action, e.target]), [
    ['mailbox.password.set', 'ann@alpha.test'],
    ['mailbox.create', 'ann@alpha.test'],
    ['domain.create', 'alpha.test'],
  ]);
  t.same((await listAll('target=beta.test', asConfined)).items, [], 'another domain, even when asked for');
  t.same((await listAll('target=bob@beta.test', asConfined)).items, []);
  t.same((await listAll('action=api_key.create', asConfined)).items, [], 'no API key events: they belong to no domain');
  // An unconfined support key sees everything.
  t.equal((await listAll('', asSupport)).items.length, (await listAll('')).items.length);
});

t.test('provisioners may not read the audit trail', async (t) => {
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/audit-events', headers: asProvisioner }), 403, 'role_forbidden');
});

t.test('events never hold passwords, hashes or tokens', async (t) => {
  const accounts = (await api.database.db.execute(sql`select password_hash from accounts`)) as unknown as {
    rows: { password_hash: string }[];
  };
  const storedHashes = accounts.rows.map((row) => row.password_hash);
  t.equal(storedHashes.length, 2);
  const tokens = [provisioner.token, support.token, confined.token, revoked.token] as string[];
  const secrets = [
    PASSWORD,
    SECOND_PASSWORD,
    THIRD_PASSWORD,
    importedHash,
    importedHash.slice(7),
    ...storedHashes,
    ...storedHashes.map((hash) => hash.split('$').pop()!),
    ...tokens,
    ...tokens.map((token) => createHash('sha256').update(token).digest('hex')),
  ];
  const { items, bodies } = await listAll('');
  t.ok(items.some((e) => e.action === 'mailbox.password.set' && e.after?.passwordScheme === 'bcrypt'), 'the scheme may show');
  const raw = (await api.database.db.execute(sql`select * from audit_events`)) as unknown as { rows: unknown[] };
  const stored = JSON.stringify(raw.rows);
  for (const secret of secrets) {
    for (const body of bodies) t.notOk(body.includes(secret), `no ${secret.slice(0, 12)}… in the API answer`);
    t.notOk(stored.includes(secret), `no ${secret.slice(0, 12)}… in the audit table`);
  }
  for (const body of [...bodies, stored]) {
    t.notMatch(body, /\$argon2|\$2[aby]\$|mr_[\w-]{20}|"password"|"passwordHash"|"token"|tokenHash/);
  }
});
