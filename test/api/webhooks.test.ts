import t from 'tap';
import { webhooks } from '../../src/db/schema/index.js';
import { apiClient, auditEvents, makeKey } from '../helpers/api-client.js';
import { buildTestApi } from '../helpers/api.js';
import { assertProblem } from '../helpers/problem.js';

const api = await buildTestApi(t);
const client = apiClient(api.app);
const admin = client.as(api.admin);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

t.test('POST /v1/webhooks answers the webhook with its secret, once; GET and the list never show it', async (t) => {
  const created = await admin.post('/v1/webhooks', {
    url: 'https://hooks.example.net/mailroom?tenant=7',
    events: ['mailbox.deleted', 'mailbox.created', 'mailbox.created'],
    domains: ['Example.COM', 'bücher.example'],
  });
  t.equal(created.statusCode, 201, created.body);
  const body = created.json();
  t.match(body, {
    id: UUID,
    url: 'https://hooks.example.net/mailroom?tenant=7',
    events: ['mailbox.created', 'mailbox.deleted'],
    domains: ['example.com', 'xn--bcher-kva.example'],
    secret: /^whsec_[A-Za-z0-9_-]{43}$/,
    createdAt: String,
  });
  t.equal(created.headers.location, `/v1/webhooks/${body.id}`);

  const read = await admin.get(`/v1/webhooks/${body.id}`);
  t.equal(read.statusCode, 200);
  const { secret, ...shown } = body;
  t.same(read.json(), shown, 'the same webhook, without its secret');
  const list = await admin.get('/v1/webhooks?limit=500');
  t.same(list.json().items.find((item: { id: string }) => item.id === body.id), shown);
  for (const response of [read, list]) {
    t.notOk(response.body.includes(secret), 'no secret');
    t.notOk(/secret/i.test(response.body), 'no secret field at all');
  }
  const stored = await api.database.db.select().from(webhooks);
  t.ok(stored.some((row) => row.secret === secret), 'kept, as signing needs it');

  const audit = await auditEvents(admin, `target=${body.id}`);
  t.same(audit.items.map((event) => event.action), ['webhook.create']);
  t.same(audit.items[0]!.after, { url: body.url, events: body.events, domains: body.domains });
  t.notOk(audit.raw.includes(secret), 'no secret in the audit trail');
});

t.test('events and domains left out mean all; every event type is known', async (t) => {
  const created = await admin.post('/v1/webhooks', { url: 'http://127.0.0.1:9/all' });
  t.equal(created.statusCode, 201);
  t.match(created.json(), { url: 'http://127.0.0.1:9/all', events: null, domains: null });
  const nulls = await admin.post('/v1/webhooks', { url: 'http://127.0.0.1:9/nulls', events: null, domains: null });
  t.match(nulls.json(), { events: null, domains: null });
  const types = [
    'mailbox.created',
    'mailbox.updated',
    'mailbox.deleted',
    'mailbox.protocol_switched',
    'mailbox.suspended',
    'mailbox.unsuspended',
    'mailbox.password_changed',
    'mailbox.quota_crossed',
    'mailbox.login_locked',
  ];
  const every = await admin.post('/v1/webhooks', { url: 'http://127.0.0.1:9/every', events: types });
  t.same(every.json().events, [...types].sort());
});

t.test('bad webhooks are refused with the field named', async (t) => {
  const cases: [Record<string, unknown>, number, string][] = [
    [{ url: 'ftp://example.net/x' }, 422, 'invalid_url'],
    [{ url: 'javascript:alert(1)' }, 422, 'invalid_url'],
    [{ url: 'not a url' }, 422, 'invalid_url'],
    [{ url: 'https://user:pass@example.net/x' }, 422, 'invalid_url'],
    [{ url: 'https://example.net/x#part' }, 422, 'invalid_url'],
    [{ url: '' }, 400, 'validation_failed'],
    [{ url: `https://example.net/${'a'.repeat(2100)}` }, 400, 'validation_failed'],
    [{ url: 'https://example.net/', events: [] }, 422, 'invalid_events'],
    [{ url: 'https://example.net/', events: ['mailbox.exploded'] }, 400, 'validation_failed'],
    [{ url: 'https://example.net/', domains: [] }, 422, 'invalid_domains'],
    [{ url: 'https://example.net/', domains: ['not a domain'] }, 422, 'invalid_domain'],
    [{ url: 'https://example.net/', secret: 'mine' }, 400, 'unknown_field'],
    [{}, 400, 'validation_failed'],
  ];
  const before = (await admin.get('/v1/webhooks?limit=500')).json().items.length;
  for (const [body, status, code] of cases) {
    const problem = assertProblem(t, await admin.post('/v1/webhooks', body), status, code);
    if (status === 422) t.equal(problem.field, code === 'invalid_domain' ? 'domain' : code.replace('invalid_', ''));
  }
  t.equal((await admin.get('/v1/webhooks?limit=500')).json().items.length, before, 'none was made');
});

t.test('only admins that are not confined to domains manage webhooks', async (t) => {
  const { id } = (await admin.post('/v1/webhooks', { url: 'https://example.net/roles' })).json();
  const confinedAdmin = client.as((await makeKey(api.services, 'admin', 'tenant admin', ['example.com'])).headers);
  for (const role of ['provisioner', 'support'] as const) {
    const caller = client.as((await makeKey(api.services, role, `${role} key`)).headers);
    assertProblem(t, await caller.post('/v1/webhooks', { url: 'https://example.net/x' }), 403, 'role_forbidden');
    assertProblem(t, await caller.get('/v1/webhooks'), 403, 'role_forbidden');
    assertProblem(t, await caller.get(`/v1/webhooks/${id}/deliveries`), 403, 'role_forbidden');
  }
  assertProblem(t, await confinedAdmin.post('/v1/webhooks', { url: 'https://example.net/x', domains: ['example.com'] }), 403, 'role_forbidden');
  assertProblem(t, await confinedAdmin.get('/v1/webhooks'), 403, 'role_forbidden');
  assertProblem(t, await confinedAdmin.get(`/v1/webhooks/${id}`), 403, 'role_forbidden');
  assertProblem(t, await confinedAdmin.get(`/v1/webhooks/${id}/deliveries`), 403, 'role_forbidden');
  assertProblem(t, await confinedAdmin.delete(`/v1/webhooks/${id}`), 403, 'role_forbidden');
  assertProblem(t, await client.as().get('/v1/webhooks'), 401, 'unauthenticated');
  t.equal((await admin.get(`/v1/webhooks/${id}`)).statusCode, 200, 'still there');
});

t.test('DELETE removes the webhook with its log; unknown ids answer 404 webhook_not_found', async (t) => {
  const { id, url } = (await admin.post('/v1/webhooks', { url: 'https://example.net/gone' })).json();
  t.equal((await admin.get(`/v1/webhooks/${id}/deliveries`)).json().items.length, 0, 'an empty delivery log');
  const deleted = await admin.delete(`/v1/webhooks/${id}`);
  t.equal(deleted.statusCode, 204);
  for (const path of [`/v1/webhooks/${id}`, `/v1/webhooks/${id}/deliveries`]) {
    assertProblem(t, await admin.get(path), 404, 'webhook_not_found');
  }
  assertProblem(t, await admin.delete(`/v1/webhooks/${id}`), 404, 'webhook_not_found');
  for (const odd of ['not-a-uuid', '00000000-0000-4000-8000-000000000000', '%27%3B%20drop%20table%20webhooks']) {
    assertProblem(t, await admin.get(`/v1/webhooks/${odd}`), 404, 'webhook_not_found');
    assertProblem(t, await admin.delete(`/v1/webhooks/${odd}`), 404, 'webhook_not_found');
  }
  const audit = await auditEvents(admin, `target=${id}`);
  t.same(audit.items.map((event) => event.action), ['webhook.delete', 'webhook.create']);
  t.match(audit.items[0]!.before, { url });
});

t.test('the list pages with a cursor; a hostile cursor or status is refused', async (t) => {
  const ids = new Set<string>();
  let cursor: string | null = null;
  do {
    const page: any = await admin.get(`/v1/webhooks?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`);
    t.equal(page.statusCode, 200);
    for (const item of page.json().items) ids.add(item.id);
    cursor = page.json().nextCursor;
  } while (cursor !== null);
  t.equal(ids.size, (await admin.get('/v1/webhooks?limit=500')).json().items.length, 'every webhook once');
  const bad = Buffer.from(JSON.stringify({ after: 'x' })).toString('base64url');
  assertProblem(t, await admin.get(`/v1/webhooks?cursor=${bad}`), 422, 'invalid_cursor');
  const [id] = ids;
  assertProblem(t, await admin.get(`/v1/webhooks/${id}/deliveries?cursor=${bad}`), 422, 'invalid_cursor');
  assertProblem(t, await admin.get(`/v1/webhooks/${id}/deliveries?status=lost`), 400, 'validation_failed');
});

t.test('an Idempotency-Key replays the creation, secret included, to the same caller only', async (t) => {
  const headers = { 'idempotency-key': 'hook-once' };
  const first = await admin.post('/v1/webhooks', { url: 'https://example.net/idem' }, headers);
  const replay = await admin.post('/v1/webhooks', { url: 'https://example.net/idem' }, headers);
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.equal(replay.json().id, first.json().id, 'made once');
});
