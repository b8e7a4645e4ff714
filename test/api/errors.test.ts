import t from 'tap';
import { buildApp } from '../../src/api/app.js';
import { buildTestApi, PASSWORD } from '../helpers/api.js';
import { assertProblem } from '../helpers/problem.js';

const api = await buildTestApi(t);
const { app, admin } = api;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SECRET = 'secret-internal-detail: relation "accounts" at 10.0.0.7';

// A second app on the same services: a small body limit, and a route that fails unexpectedly.
const small = await buildApp({ services: api.services, bodyLimit: 256 });
small.post('/v1/boom', { config: { roles: ['admin'] } }, async () => {
  throw new Error(SECRET);
});
t.teardown(() => small.close());

const json = (payload: string) => ({ ...admin, 'content-type': 'application/json' as const, payload });

t.test('malformed JSON answers 400 malformed_json', async (t) => {
  for (const payload of ['{"name":', '{name: "x.test"}', "{'name':'x.test'}", '{"name":"x.test"}}', '\u0000']) {
    const { payload: body, ...headers } = json(payload);
    const response = await app.inject({ method: 'POST', url: '/v1/domains', headers, payload: body });
    const problem = assertProblem(t, response, 400, 'malformed_json');
    t.equal(problem.instance, '/v1/domains');
  }
  const empty = await app.inject({ method: 'POST', url: '/v1/domains', headers: { ...admin, 'content-type': 'application/json' }, payload: '' });
  assertProblem(t, empty, 400, 'malformed_json');
});

t.test('a body over the limit answers 413 body_too_large', async (t) => {
  const fits = await small.inject({ method: 'POST', url: '/v1/domains', headers: admin, payload: { name: 'fits.test' } });
  t.equal(fits.statusCode, 201, 'a small body passes');
  const big = { name: 'big.test', padding: 'x'.repeat(300) };
  assertProblem(t, await small.inject({ method: 'POST', url: '/v1/domains', headers: admin, payload: big }), 413, 'body_too_large');
  // The same body is merely an unknown field where the limit is the default.
  assertProblem(t, await app.inject({ method: 'POST', url: '/v1/domains', headers: admin, payload: big }), 400, 'unknown_field');
});

t.test('a body that is not JSON answers 415 unsupported_media_type', async (t) => {
  for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/domains',
      headers: { ...admin, 'content-type': type },
      payload: '{"name":"plain.test"}',
    });
    assertProblem(t, response, 415, 'unsupported_media_type');
  }
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/domains/plain.test', headers: admin }), 404, 'domain_not_found');
  // JSON with a charset parameter is JSON.
  const withCharset = await app.inject({
    method: 'POST',
    url: '/v1/domains',
    headers: { ...admin, 'content-type': 'application/json; charset=utf-8' },
    payload: '{"name":"charset.test"}',
  });
  t.equal(withCharset.statusCode, 201);
});

t.test('schema violations answer 400 validation_failed naming the path', async (t) => {
  const cases: { url: string; method: 'GET' | 'POST' | 'DELETE'; payload?: object; path: string }[] = [
    { method: 'POST', url: '/v1/domains', payload: {}, path: 'body.name' },
    { method: 'POST', url: '/v1/domains', payload: { name: 'v.test', defaults: { pop3DeleteMode: 'shred' } }, path: 'body.defaults.pop3DeleteMode' },
    { method: 'POST', url: '/v1/domains', payload: { name: 'v.test', limits: { maxMailboxes: -1 } }, path: 'body.limits.maxMailboxes' },
    { method: 'POST', url: '/v1/domains', payload: { name: 'x'.repeat(254) }, path: 'body.name' },
    { method: 'POST', url: '/v1/mailboxes', payload: { address: 'a@v.test', protocols: { imap: 'maybe' } }, path: 'body.protocols.imap' },
    { method: 'GET', url: '/v1/domains?limit=0', path: 'querystring.limit' },
    { method: 'GET', url: '/v1/domains?limit=501', path: 'querystring.limit' },
    { method: 'GET', url: '/v1/domains?limit=ten', path: 'querystring.limit' },
    { method: 'GET', url: '/v1/audit-events?from=yesterday', path: 'querystring.from' },
    { method: 'DELETE', url: `/v1/api-keys/${'a'.repeat(65)}`, path: 'params.id' },
  ];
  for (const c of cases) {
    const response = await app.inject({ method: c.method, url: c.url, headers: admin, ...(c.payload ? { payload: c.payload } : {}) });
    const problem = assertProblem(t, response, 400, 'validation_failed');
    t.ok(Array.isArray(problem.errors) && problem.errors.length > 0, `${c.url}: errors is a non-empty array`);
    t.ok(
      problem.errors.some((error: { path: string; message: string }) => error.path === c.path && error.message.length > 0),
      `${c.method} ${c.url} names ${c.path}: ${JSON.stringify(problem.errors)}`,
    );
    t.match(problem.detail, c.path);
  }
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/domains/v.test', headers: admin }), 404, 'domain_not_found');
});

t.test('unknown fields answer 400 unknown_field naming them', async (t) => {
  const cases = [
    { url: '/v1/domains', payload: { name: 'u.test', color: 'red' }, path: 'body.color' },
    { url: '/v1/domains', payload: { name: 'u.test', defaults: { colour: 'red' } }, path: 'body.defaults.colour' },
    { url: '/v1/domains', payload: { name: 'u.test', limits: { maxQuota: { bytes: 1 } } }, path: 'body.limits.maxQuota.bytes' },
    { url: '/v1/mailboxes', payload: { address: 'a@u.test', password: PASSWORD, passwordVersion: 7 }, path: 'body.passwordVersion' },
  ];
  for (const c of cases) {
    const response = await app.inject({ method: 'POST', url: c.url, headers: admin, payload: c.payload });
    const problem = assertProblem(t, response, 400, 'unknown_field');
    t.same(problem.errors, [{ path: c.path, message: 'is not a known field' }]);
  }
  const query = await app.inject({ method: 'GET', url: '/v1/domains?sort=name', headers: admin });
  t.same(assertProblem(t, query, 400, 'unknown_field').errors, [{ path: 'querystring.sort', message: 'is not a known field' }]);
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/domains/u.test', headers: admin }), 404, 'domain_not_found');
});

t.test('a plain X-Request-Id is echoed, in the problem and in audit events', async (t) => {
  const id = 'trace-42.abc:DEF_ghi';
  const failed = await app.inject({ method: 'GET', url: '/v1/domains/none.test', headers: { ...admin, 'x-request-id': id } });
  t.equal(failed.headers['x-request-id'], id);
  t.equal(assertProblem(t, failed, 404, 'domain_not_found').requestId, id);

  const created = await app.inject({ method: 'POST', url: '/v1/domains', headers: { ...admin, 'x-request-id': id }, payload: { name: 'traced.test' } });
  t.equal(created.statusCode, 201);
  t.equal(created.headers['x-request-id'], id);
  const events = await app.inject({ method: 'GET', url: '/v1/audit-events?target=traced.test', headers: admin });
  t.match(events.json().items, [{ action: 'domain.create', requestId: id, ip: '127.0.0.1' }]);

  const longest = 'x'.repeat(128);
  t.equal((await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': longest } })).headers['x-request-id'], longest);
});

t.test('a hostile X-Request-Id is replaced by a generated one', async (t) => {
  const hostile = ['has spaces in it', 'x'.repeat(129), 'a'.repeat(500), '<script>', 'id"with"quotes', 'semi;colon', ''];
  for (const [i, given] of hostile.entries()) {
    const name = `hostile${i}.test`;
    const response = await app.inject({ method: 'POST', url: '/v1/domains', headers: { ...admin, 'x-request-id': given }, payload: { name } });
    t.equal(response.statusCode, 201);
    const id = response.headers['x-request-id'];
    t.match(id, UUID, `${JSON.stringify(given.slice(0, 20))} replaced by a UUID`);
    const events = await app.inject({ method: 'GET', url: `/v1/audit-events?target=${name}`, headers: admin });
    t.equal(events.json().items[0].requestId, id, 'the audit event has the generated id');
    t.notOk(events.body.includes(given || 'never'), 'the hostile id is stored nowhere');
  }
  const problem = await app.inject({ method: 'GET', url: '/v1/nothing', headers: { 'x-request-id': 'a b' } });
  t.match(assertProblem(t, problem, 404, 'not_found').requestId, UUID);
  // Two requests without an id get different ones.
  const [a, b] = await Promise.all([app.inject({ url: '/healthz' }), app.inject({ url: '/healthz' })]);
  t.not(a.headers['x-request-id'], b.headers['x-request-id']);
});

t.test('an unexpected exception answers 500 internal_error without its message', async (t) => {
  const response = await small.inject({ method: 'POST', url: '/v1/boom', headers: { ...admin, 'x-request-id': 'boom-1' }, payload: {} });
  const problem = assertProblem(t, response, 500, 'internal_error');
  t.equal(problem.requestId, 'boom-1', 'the request id lets support find it in the log');
  t.notOk(response.body.includes('secret'), 'the message stays in the log');
  t.notOk(response.body.includes('10.0.0.7'));
  t.notOk(/stack|at \/|\.ts:/.test(response.body), 'no stack trace');
});

t.test('router errors are problem+json too, and long names stay reachable', async (t) => {
  const badUrl = await app.inject({ method: 'GET', url: '/v1/domains/%E0%A4%A', headers: admin });
  assertProblem(t, badUrl, 400, 'bad_url');
  t.ok(badUrl.headers['x-request-id'], 'with the request id header the problem names (found by the API fuzz test)');

  const name = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.test`;
  t.equal((await app.inject({ method: 'POST', url: '/v1/domains', headers: admin, payload: { name } })).statusCode, 201);
  const domain = await app.inject({ method: 'GET', url: `/v1/domains/${name}`, headers: admin });
  t.equal(domain.statusCode, 200, 'a 196-character domain can be read');
  const created = await app.inject({ method: 'POST', url: '/v1/mailboxes', headers: admin, payload: { address: `x@${name}`, password: PASSWORD } });
  t.equal(created.statusCode, 201);
  const mailbox = await app.inject({ method: 'GET', url: `/v1/mailboxes/x@${name}`, headers: admin });
  t.equal(mailbox.statusCode, 200, 'a 198-character address can be read');
  const invalid = await app.inject({ method: 'GET', url: `/v1/mailboxes/x@${'e'.repeat(400)}.test`, headers: admin });
  t.match(invalid.headers['content-type'], /^application\/problem\+json/, 'a long, invalid address');
  const tooLong = await app.inject({ method: 'GET', url: `/v1/mailboxes/x@${'e'.repeat(3000)}.test`, headers: admin });
  t.ok(tooLong.statusCode >= 400 && tooLong.statusCode < 500, 'a parameter beyond any address is refused');
  t.match(tooLong.headers['content-type'], /^application\/problem\+json/, 'as problem+json');
});

t.test('JSON null in a body stays null (unlimited), never coerced to 0 or ""', async (t) => {
  const created = await app.inject({
    method: 'POST',
    url: '/v1/domains',
    headers: admin,
    payload: { name: 'nulls.test', limits: { maxMailboxes: 5, maxQuota: { storageBytes: 1000 } } },
  });
  t.equal(created.statusCode, 201);
  const cleared = await app.inject({
    method: 'PATCH',
    url: '/v1/domains/nulls.test',
    headers: admin,
    payload: { limits: { maxMailboxes: null, maxQuota: { storageBytes: null } } },
  });
  t.equal(cleared.statusCode, 200);
  t.same(cleared.json().limits, { maxMailboxes: null, maxQuota: { storageBytes: null, messages: null } }, 'null means no limit');
  const mailbox = await app.inject({
    method: 'POST',
    url: '/v1/mailboxes',
    headers: admin,
    payload: { address: 'ann@nulls.test', password: PASSWORD, displayName: null, quota: { storageBytes: null } },
  });
  t.equal(mailbox.statusCode, 201, 'a domain without a mailbox limit takes a mailbox');
  const key = await app.inject({ method: 'POST', url: '/v1/api-keys', headers: admin, payload: { name: 'n', role: 'support', domains: null } });
  t.equal(key.json().domains, null, 'an API key with domains: null is unconfined');
});

// Last: this closes the database under the running app.
t.test('a database that is gone answers 5xx problem+json without internals', async (t) => {
  const key = await api.keyFor('admin');
  await api.database.close();
  for (const headers of [admin, key]) {
    const response = await app.inject({ method: 'GET', url: '/v1/domains', headers });
    const problem = assertProblem(t, response, 500, 'internal_error');
    t.notMatch(problem.detail, /closed|pool|pglite|postgres|connect/i);
  }
  const write = await app.inject({ method: 'POST', url: '/v1/domains', headers: { ...admin, 'idempotency-key': 'k1' }, payload: { name: 'late.test' } });
  assertProblem(t, write, 500, 'internal_error');
  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  assertProblem(t, ready, 503, 'database_unavailable');
});
