import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import t from 'tap';
import { ADMIN_TOKEN, buildTestApi } from '../helpers/api.js';
import { assertProblem } from '../helpers/problem.js';

const api = await buildTestApi(t);
const { app, admin } = api;

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function createKey(body: Record<string, unknown>, headers = admin) {
  return app.inject({ method: 'POST', url: '/v1/api-keys', headers, payload: body });
}

t.test('POST /v1/api-keys answers the key with its token once, and the token works with its role', async (t) => {
  const created = await createKey({ name: 'provisioning script', role: 'provisioner' });
  t.equal(created.statusCode, 201);
  t.match(created.headers['content-type'], /^application\/json/);
  t.notOk(created.headers.location, 'no Location: a key is read only through the list');
  const key = created.json();
  t.match(key, {
    id: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    name: 'provisioning script',
    role: 'provisioner',
    domains: null,
    token: /^\S{32,}$/,
    createdAt: String,
  });
  t.ok(Math.abs(Date.parse(key.createdAt) - Date.now()) < 60_000, 'createdAt is now');

  // Provisioners manage domains but not keys.
  const domain = await app.inject({ method: 'POST', url: '/v1/domains', headers: bearer(key.token), payload: { name: 'keys-a.test' } });
  t.equal(domain.statusCode, 201, 'the new token creates a domain');
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/api-keys', headers: bearer(key.token) }), 403, 'role_forbidden');

  // The audit trail names the new key as the actor.
  const events = await app.inject({ method: 'GET', url: `/v1/audit-events?target=keys-a.test`, headers: admin });
  t.equal(events.json().items[0].actor.id, key.id);
  t.equal(events.json().items[0].actor.name, 'provisioning script');
});

t.test('a support token gets the support role', async (t) => {
  const { token } = (await createKey({ name: 'helpdesk', role: 'support' })).json();
  t.equal((await app.inject({ method: 'GET', url: '/v1/domains', headers: bearer(token) })).statusCode, 200);
  const create = await app.inject({ method: 'POST', url: '/v1/domains', headers: bearer(token), payload: { name: 'support.test' } });
  assertProblem(t, create, 403, 'role_forbidden');
});

t.test('GET /v1/api-keys lists keys without tokens or hashes', async (t) => {
  const { id, token } = (await createKey({ name: 'listed', role: 'admin' })).json();
  const tokenHash = createHash('sha256').update(token).digest('hex');
  const items: Record<string, unknown>[] = [];
  const bodies: string[] = [];
  let cursor: string | null = null;
  do {
    const page: Awaited<ReturnType<typeof app.inject>> = await app.inject({
      method: 'GET',
      url: `/v1/api-keys?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`,
      headers: admin,
    });
    t.equal(page.statusCode, 200);
    bodies.push(page.body);
    items.push(...page.json().items);
    cursor = page.json().nextCursor;
  } while (cursor !== null);
  const listed = items.find((item) => item.id === id);
  t.match(listed, { id, name: 'listed', role: 'admin', domains: null, createdAt: String });
  t.equal(new Set(items.map((item) => item.id)).size, items.length, 'paging repeats no key');
  for (const body of bodies) {
    t.notOk(body.includes(token), 'no token in the list');
    t.notOk(body.includes(tokenHash), 'no token hash in the list');
    t.notOk(/token|hash/i.test(body), 'no token or hash field at all');
  }
  for (const item of items) t.notOk('token' in item || 'tokenHash' in item);
});

t.test('DELETE /v1/api-keys/{id} revokes at once', async (t) => {
  const { id, token } = (await createKey({ name: 'short-lived', role: 'provisioner' })).json();
  t.equal((await app.inject({ method: 'GET', url: '/v1/domains', headers: bearer(token) })).statusCode, 200, 'works before');

  const revoked = await app.inject({ method: 'DELETE', url: `/v1/api-keys/${id}`, headers: admin });
  t.equal(revoked.statusCode, 204);
  t.equal(revoked.body, '');

  const after = await app.inject({ method: 'GET', url: '/v1/domains', headers: bearer(token) });
  assertProblem(t, after, 401, 'unauthenticated');
  t.match(after.headers['www-authenticate'], /^Bearer/);

  const list = await app.inject({ method: 'GET', url: '/v1/api-keys?limit=500', headers: admin });
  t.notOk(list.json().items.some((item: { id: string }) => item.id === id), 'a revoked key is no longer listed');

  assertProblem(t, await app.inject({ method: 'DELETE', url: `/v1/api-keys/${id}`, headers: admin }), 404, 'api_key_not_found');

  const events = await app.inject({ method: 'GET', url: `/v1/audit-events?target=${id}`, headers: admin });
  t.same(
    events.json().items.map((event: { action: string }) => event.action),
    ['api_key.revoke', 'api_key.create'],
  );
});

t.test('revoking an unknown or malformed id answers 404 api_key_not_found', async (t) => {
  for (const id of [
    '00000000-0000-4000-8000-000000000000',
    'not-a-uuid',
    '------------------------------------',
    'a'.repeat(36),
    '00000000000040008000000000000000',
    '%27%3B%20drop%20table%20api_keys',
  ]) {
    assertProblem(t, await app.inject({ method: 'DELETE', url: `/v1/api-keys/${id}`, headers: admin }), 404, 'api_key_not_found');
  }
  // The keys table survived the odd ids above.
  t.equal((await app.inject({ method: 'GET', url: '/v1/api-keys', headers: admin })).statusCode, 200);
});

t.test('a hostile cursor is refused, not a server error', async (t) => {
  for (const after of ['x', 7, null, '00000000-0000-4000-8000-00000000000g']) {
    const cursor = Buffer.from(JSON.stringify({ after })).toString('base64url');
    assertProblem(t, await app.inject({ method: 'GET', url: `/v1/api-keys?cursor=${cursor}`, headers: admin }), 422, 'invalid_cursor');
  }
});

t.test('only an admin that is not domain-confined may manage keys', async (t) => {
  const { id: victim } = (await createKey({ name: 'victim', role: 'support' })).json();
  const callers = {
    provisioner: await api.keyFor('provisioner'),
    support: await api.keyFor('support'),
    'confined admin': await api.keyFor('admin', ['keys-a.test']),
  };
  for (const [who, headers] of Object.entries(callers)) {
    t.test(who, async (t) => {
      assertProblem(t, await createKey({ name: 'escalate', role: 'admin' }, headers), 403, 'role_forbidden');
      assertProblem(t, await app.inject({ method: 'GET', url: '/v1/api-keys', headers }), 403, 'role_forbidden');
      assertProblem(t, await app.inject({ method: 'DELETE', url: `/v1/api-keys/${victim}`, headers }), 403, 'role_forbidden');
    });
  }
  // The victim survived every attempt.
  const list = await app.inject({ method: 'GET', url: '/v1/api-keys?limit=500', headers: admin });
  t.ok(list.json().items.some((item: { id: string }) => item.id === victim));
  t.notOk(list.json().items.some((item: { name: string }) => item.name === 'escalate'));
});

t.test('the body is validated', async (t) => {
  assertProblem(t, await createKey({ name: 'x', role: 'root' }), 400, 'validation_failed');
  assertProblem(t, await createKey({ name: '', role: 'admin' }), 400, 'validation_failed');
  assertProblem(t, await createKey({ role: 'admin' }), 400, 'validation_failed');
  assertProblem(t, await createKey({ name: 'x' }), 400, 'validation_failed');
  assertProblem(t, await createKey({ name: 'x'.repeat(201), role: 'admin' }), 400, 'validation_failed');
  assertProblem(t, await createKey({ name: 'x', role: 'admin', domains: [{ name: 'example.com' }] }), 400, 'validation_failed');
  const unknown = assertProblem(t, await createKey({ name: 'x', role: 'admin', token: 'chosen' }), 400, 'unknown_field');
  t.same(unknown.errors, [{ path: 'body.token', message: 'is not a known field' }]);
  assertProblem(t, await createKey({ name: '   ', role: 'admin' }), 422, 'invalid_name');
  assertProblem(t, await createKey({ name: 'x', role: 'admin', domains: ['not a domain'] }), 422, 'invalid_domain');
  assertProblem(t, await createKey({ name: 'x', role: 'support', domains: [] }), 422, 'invalid_domains');
  // Nothing above made a key.
  const list = await app.inject({ method: 'GET', url: '/v1/api-keys?limit=500', headers: admin });
  t.notOk(list.json().items.some((item: { name: string }) => item.name === 'x' || item.name.trim() === ''));
});

t.test('domains of a key are IDNA-normalised, lowercased and deduplicated', async (t) => {
  const created = await createKey({ name: 'customer', role: 'support', domains: ['Bücher.Example', 'EXAMPLE.com.', 'example.com'] });
  t.equal(created.statusCode, 201);
  t.same(created.json().domains, ['example.com', 'xn--bcher-kva.example']);
  const list = await app.inject({ method: 'GET', url: '/v1/api-keys?limit=500', headers: admin });
  t.same(list.json().items.find((item: { id: string }) => item.id === created.json().id).domains, ['example.com', 'xn--bcher-kva.example']);

  // The confinement holds: the customer sees its own domain and nothing else.
  for (const name of ['bücher.example', 'other.example']) {
    t.equal((await app.inject({ method: 'POST', url: '/v1/domains', headers: admin, payload: { name } })).statusCode, 201);
  }
  const customer = bearer(created.json().token);
  const own = await app.inject({ method: 'GET', url: '/v1/domains/B%C3%BCcher.example', headers: customer });
  t.equal(own.statusCode, 200);
  t.equal(own.json().name, 'xn--bcher-kva.example');
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/domains/other.example', headers: customer }), 404, 'domain_not_found');
});

t.test('the MAILROOM_ADMIN_TOKEN bootstrap token is an unconfined admin', async (t) => {
  const created = await createKey({ name: 'made by bootstrap', role: 'admin' }, bearer(ADMIN_TOKEN));
  t.equal(created.statusCode, 201);
  t.equal((await app.inject({ method: 'GET', url: '/v1/api-keys', headers: bearer(ADMIN_TOKEN) })).statusCode, 200);
  const events = await app.inject({ method: 'GET', url: `/v1/audit-events?target=${created.json().id}`, headers: admin });
  t.match(events.json().items[0], { action: 'api_key.create', actor: { id: 'bootstrap-admin', name: 'MAILROOM_ADMIN_TOKEN' } });
  assertProblem(
    t,
    await app.inject({ method: 'GET', url: '/v1/api-keys', headers: bearer(`${ADMIN_TOKEN}x`) }),
    401,
    'unauthenticated',
  );
});

t.test('a token is stored only as its SHA-256 hash', async (t) => {
  const { id, token } = (await createKey({ name: 'stored', role: 'admin' })).json();
  const result = (await api.database.db.execute(sql`select * from api_keys where id = ${id}`)) as unknown as {
    rows: Record<string, unknown>[];
  };
  t.equal(result.rows.length, 1);
  const row = result.rows[0]!;
  t.equal(row.token_hash, createHash('sha256').update(token).digest('hex'));
  for (const [column, value] of Object.entries(row)) {
    const text = value instanceof Date ? value.toISOString() : JSON.stringify(value);
    t.notOk(text?.includes(token), `column ${column} does not hold the token`);
    t.notOk(text?.includes(token.slice(3, 20)), `column ${column} holds no part of the token`);
  }
});
