import t from 'tap';
import { buildTestApi, PASSWORD } from '../helpers/api.js';
import { apiClient, auditEvents, domainUrl, makeKey } from '../helpers/api-client.js';
import { assertProblem } from '../helpers/problem.js';

const api = await buildTestApi(t);
const client = apiClient(api.app);
const admin = client.as(api.admin);
const provisionerKey = await makeKey(api.services, 'provisioner', 'hosting panel');
const provisioner = client.as(provisionerKey.headers);
const support = client.as((await makeKey(api.services, 'support', 'helpdesk')).headers);
const anonymous = client.as();

const STRONG_ETAG = /^"[^"]+"$/;
const NO_LIMITS = { maxMailboxes: null, maxQuota: { storageBytes: null, messages: null } };
const PLAIN_DEFAULTS = {
  quota: { storageBytes: null, messages: null },
  protocols: { imap: true, pop3: true },
  pop3DeleteMode: 'remove',
};

async function createDomain(name: string, settings: object = {}): Promise<Record<string, any>> {
  const created = await admin.post('/v1/domains', { name, ...settings });
  if (created.statusCode !== 201) throw new Error(`setup: domain ${name}: ${created.body}`);
  return created.json();
}

async function createMailbox(address: string): Promise<void> {
  const created = await admin.post('/v1/mailboxes', { address, password: PASSWORD });
  if (created.statusCode !== 201) throw new Error(`setup: mailbox ${address}: ${created.body}`);
}

/** What the domain looks like now (status, ETag and body), to prove a refused request changed nothing. */
async function snapshot(name: string) {
  const read = await admin.get(domainUrl(name));
  return { status: read.statusCode, etag: read.headers.etag, body: read.body };
}

/** Names of every domain the caller lists with this query, following nextCursor to the end. */
async function listNames(caller = admin, query = ''): Promise<string[]> {
  const names: string[] = [];
  let cursor: string | null = null;
  do {
    const page = await caller.get(`/v1/domains?limit=500${query}${cursor === null ? '' : `&cursor=${cursor}`}`);
    if (page.statusCode !== 200) throw new Error(page.body);
    names.push(...page.json().items.map((d: { name: string }) => d.name));
    cursor = page.json().nextCursor;
  } while (cursor !== null);
  return names;
}

function withoutTimes(resource: Record<string, unknown>) {
  const { createdAt: _c, updatedAt: _u, ...rest } = resource;
  return rest;
}

t.test('POST creates a domain with the default settings; GET reads the same resource and ETag', async (t) => {
  const created = await provisioner.post('/v1/domains', { name: 'fresh.test' }, { 'x-request-id': 'create-fresh-1' });
  t.equal(created.statusCode, 201);
  t.equal(created.headers.location, '/v1/domains/fresh.test');
  t.match(created.headers.etag, STRONG_ETAG);
  const body = created.json();
  t.strictSame(Object.keys(body).sort(), [
    'createdAt',
    'defaults',
    'limits',
    'mailboxCount',
    'name',
    'status',
    'suspendedDelivery',
    'unicodeName',
    'updatedAt',
  ]);
  t.strictSame(withoutTimes(body), {
    name: 'fresh.test',
    unicodeName: 'fresh.test',
    status: 'active',
    suspendedDelivery: 'receive',
    defaults: PLAIN_DEFAULTS,
    limits: NO_LIMITS,
    mailboxCount: 0,
  });
  t.ok(Math.abs(Date.parse(body.createdAt) - Date.now()) < 60_000, 'createdAt is now');
  t.equal(body.updatedAt, body.createdAt);

  const read = await support.get('/v1/domains/fresh.test');
  t.equal(read.statusCode, 200);
  t.strictSame(read.json(), body, 'GET answers what POST did');
  t.equal(read.headers.etag, created.headers.etag, 'and the same ETag');

  const { items } = await auditEvents(admin, 'target=fresh.test');
  t.equal(items.length, 1);
  t.match(items[0], {
    action: 'domain.create',
    targetType: 'domain',
    target: 'fresh.test',
    domain: 'fresh.test',
    actor: { id: provisionerKey.id, name: 'hosting panel' },
    requestId: 'create-fresh-1',
    ip: '127.0.0.1',
    before: null,
  });
  t.strictSame(items[0]!.after, {
    name: 'fresh.test',
    status: 'active',
    suspendedDelivery: 'receive',
    defaults: PLAIN_DEFAULTS,
    limits: NO_LIMITS,
  });
});

t.test('POST takes settings in the resource shape; fields left out keep their defaults', async (t) => {
  const created = await provisioner.post('/v1/domains', {
    name: 'shaped.test',
    status: 'suspended',
    defaults: { quota: { storageBytes: 1048576 }, protocols: { pop3: false }, pop3DeleteMode: 'trash' },
    limits: { maxMailboxes: 5, maxQuota: { storageBytes: 10485760, messages: 1000 } },
  });
  t.equal(created.statusCode, 201);
  const expected = {
    name: 'shaped.test',
    unicodeName: 'shaped.test',
    status: 'suspended',
    suspendedDelivery: 'receive',
    defaults: {
      quota: { storageBytes: 1048576, messages: null },
      protocols: { imap: true, pop3: false },
      pop3DeleteMode: 'trash',
    },
    limits: { maxMailboxes: 5, maxQuota: { storageBytes: 10485760, messages: 1000 } },
    mailboxCount: 0,
  };
  t.strictSame(withoutTimes(created.json()), expected);
  t.strictSame(withoutTimes((await admin.get('/v1/domains/shaped.test')).json()), expected, 'stored as answered');
});

t.test('POST validation: 400 unknown_field, 400 validation_failed, 422 invalid_domain; nothing is created', async (t) => {
  const unknown = [
    [{ name: 'bad1.test', colour: 'red' }, 'body.colour'],
    [{ name: 'bad1.test', mailboxCount: 3 }, 'body.mailboxCount'],
    [{ name: 'bad1.test', unicodeName: 'bad1.test' }, 'body.unicodeName'],
    [{ name: 'bad1.test', defaults: { quota: { bytes: 1 } } }, 'body.defaults.quota.bytes'],
    [{ name: 'bad1.test', limits: { maxQuota: { storageBytes: 1, files: 2 } } }, 'body.limits.maxQuota.files'],
    [{ name: 'bad1.test', defaults: { protocols: { smtp: true } } }, 'body.defaults.protocols.smtp'],
  ] as const;
  for (const [payload, path] of unknown) {
    const problem = assertProblem(t, await provisioner.post('/v1/domains', payload), 400, 'unknown_field');
    t.ok(
      problem.errors.some((e: { path: string }) => e.path === path),
      `the error names ${path}: ${JSON.stringify(problem.errors)}`,
    );
  }

  const invalid: [object, string][] = [
    [{}, 'body.name'],
    [{ name: '' }, 'body.name'],
    [{ name: { ascii: 'bad2.test' } }, 'body.name'],
    [{ name: `${'a'.repeat(250)}.test` }, 'body.name'],
    [{ name: 'bad2.test', status: 'deleted' }, 'body.status'],
    [{ name: 'bad2.test', defaults: { pop3DeleteMode: 'delete' } }, 'body.defaults.pop3DeleteMode'],
    [{ name: 'bad2.test', defaults: { quota: { storageBytes: -1 } } }, 'body.defaults.quota.storageBytes'],
    [{ name: 'bad2.test', defaults: { quota: { messages: 2147483648 } } }, 'body.defaults.quota.messages'],
    [{ name: 'bad2.test', defaults: { protocols: { imap: 'yes' } } }, 'body.defaults.protocols.imap'],
    [{ name: 'bad2.test', limits: { maxMailboxes: -1 } }, 'body.limits.maxMailboxes'],
    [{ name: 'bad2.test', limits: { maxMailboxes: 1.5 } }, 'body.limits.maxMailboxes'],
    [{ name: 'bad2.test', limits: 'none' }, 'body.limits'],
  ];
  for (const [payload, path] of invalid) {
    const problem = assertProblem(t, await provisioner.post('/v1/domains', payload), 400, 'validation_failed');
    t.ok(
      problem.errors.some((e: { path: string }) => e.path.startsWith(path)),
      `${JSON.stringify(payload)}: the error names ${path}: ${JSON.stringify(problem.errors)}`,
    );
  }

  for (const name of ['exa mple.test', 'localhost', '-lead.test', 'trail-.test', 'a..b.test', '1.2.3.4', 'ex%61mple.test', 'bad3.test/x', 'under_score.test', 'x.123', '.', 'bad3.test:8080']) {
    const problem = assertProblem(t, await provisioner.post('/v1/domains', { name }), 422, 'invalid_domain');
    t.equal(problem.field, 'domain', `${name}: names the field`);
  }

  const aboveCeiling = await provisioner.post('/v1/domains', {
    name: 'bad4.test',
    defaults: { quota: { storageBytes: 2000 } },
    limits: { maxQuota: { storageBytes: 1000 } },
  });
  t.equal(assertProblem(t, aboveCeiling, 422, 'default_quota_above_limit').field, 'defaults.quota');

  t.strictSame(await listNames(admin, '&q=bad'), [], 'no refused request created a domain');
  t.equal((await auditEvents(admin, 'action=domain.create')).items.filter((e) => e.target.startsWith('bad')).length, 0);
});

t.test('a name already taken answers 409 domain_exists in any spelling, and the domain is unchanged', async (t) => {
  await createDomain('taken.test');
  const before = await snapshot('taken.test');
  for (const name of ['taken.test', 'TAKEN.Test', 'taken.test.', ' taken.test ']) {
    const problem = assertProblem(t, await provisioner.post('/v1/domains', { name, status: 'suspended' }), 409, 'domain_exists');
    t.match(problem.detail, /taken\.test/);
  }
  t.strictSame(await snapshot('taken.test'), before);
  t.equal((await auditEvents(admin, 'target=taken.test')).items.length, 1, 'only the first create is recorded');
});

t.test('IDNA: a Unicode name is stored and listed as punycode and can be addressed in either form', async (t) => {
  const created = await provisioner.post('/v1/domains', { name: 'Bücher.Example' });
  t.equal(created.statusCode, 201);
  t.equal(created.json().name, 'xn--bcher-kva.example');
  t.equal(created.json().unicodeName, 'bücher.example');
  t.equal(created.headers.location, '/v1/domains/xn--bcher-kva.example');

  for (const spelling of ['bücher.example', 'BÜCHER.EXAMPLE', 'xn--bcher-kva.example', 'XN--BCHER-KVA.Example']) {
    const read = await support.get(domainUrl(spelling));
    t.equal(read.statusCode, 200, `GET ${spelling}`);
    t.strictSame(read.json(), created.json(), `GET ${spelling} reads the same domain`);
  }
  t.strictSame(await listNames(admin, '&q=xn--bcher'), ['xn--bcher-kva.example'], 'listed in ASCII');
  assertProblem(t, await provisioner.post('/v1/domains', { name: 'xn--bcher-kva.example' }), 409, 'domain_exists');

  const patched = await provisioner.patch(domainUrl('bücher.example'), { status: 'suspended' });
  t.equal(patched.statusCode, 200);
  t.equal(patched.json().status, 'suspended');
  t.equal((await admin.get('/v1/domains/xn--bcher-kva.example')).json().status, 'suspended', 'the one domain changed');

  const { items } = await auditEvents(admin, 'target=xn--bcher-kva.example');
  t.strictSame(items.map((e) => e.action), ['domain.update', 'domain.create'], 'audit names the ASCII form');

  t.equal((await provisioner.delete(domainUrl('BÜCHER.example'))).statusCode, 204);
  assertProblem(t, await admin.get('/v1/domains/xn--bcher-kva.example'), 404, 'domain_not_found');
});

t.test('GET /v1/domains pages by limit (default 50) and opaque cursor, in name order, each domain once', async (t) => {
  const names = Array.from({ length: 55 }, (_, i) => `page-${String(i).padStart(2, '0')}.test`);
  // Created out of order, so the order listed is the API's, not the insertion order.
  for (const name of [...names].reverse()) await createDomain(name);

  const first = await support.get('/v1/domains?q=page-');
  t.equal(first.statusCode, 200);
  t.strictSame(Object.keys(first.json()).sort(), ['items', 'nextCursor']);
  t.equal(first.json().items.length, 50, 'default limit is 50');
  t.type(first.json().nextCursor, 'string');
  const second = await support.get(`/v1/domains?q=page-&cursor=${first.json().nextCursor}`);
  t.equal(second.json().items.length, 5);
  t.equal(second.json().nextCursor, null, 'null on the last page');
  t.strictSame(
    [...first.json().items, ...second.json().items].map((d: { name: string }) => d.name),
    names,
    'every domain once, ordered by name',
  );

  const pages: string[][] = [];
  let cursor: string | null = null;
  do {
    const page = await support.get(`/v1/domains?q=page-&limit=20${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`);
    t.equal(page.statusCode, 200);
    pages.push(page.json().items.map((d: { name: string }) => d.name));
    cursor = page.json().nextCursor;
  } while (cursor !== null && pages.length < 10);
  t.strictSame(pages.map((p) => p.length), [20, 20, 15]);
  t.strictSame(pages.flat(), names);

  const exact = await support.get('/v1/domains?q=page-&limit=55');
  t.equal(exact.json().items.length, 55);
  t.equal(exact.json().nextCursor, null, 'a page that ends exactly at the last domain has no next page');
  const all = await support.get('/v1/domains?q=page-&limit=500');
  t.equal(all.json().items.length, 55, 'limit=500 is allowed');

  // A list item is the same resource as GET answers.
  const item = exact.json().items.find((d: { name: string }) => d.name === 'page-07.test');
  t.strictSame(item, (await admin.get('/v1/domains/page-07.test')).json());
});

t.test('GET /v1/domains filters: q is a case-insensitive literal prefix, status matches exactly', async (t) => {
  t.strictSame(
    await listNames(support, '&q=PAGE-0'),
    Array.from({ length: 10 }, (_, i) => `page-0${i}.test`),
    'q is lowercased',
  );
  t.strictSame(await listNames(support, '&q=page-4'), ['page-40.test', 'page-41.test', 'page-42.test', 'page-43.test', 'page-44.test', 'page-45.test', 'page-46.test', 'page-47.test', 'page-48.test', 'page-49.test']);
  t.strictSame(await listNames(support, '&q=page_'), [], '_ is literal, not any character');
  t.strictSame(await listNames(support, '&q=page%25'), [], '% is literal, not any string');
  t.strictSame(await listNames(support, '&q=%25'), []);
  t.strictSame(await listNames(support, '&q=age-'), [], 'a prefix, not a substring');

  await admin.patch('/v1/domains/page-03.test', { status: 'suspended' });
  await admin.patch('/v1/domains/page-51.test', { status: 'suspended' });
  t.strictSame(await listNames(support, '&q=page-&status=suspended'), ['page-03.test', 'page-51.test']);
  const active = await listNames(support, '&q=page-&status=active');
  t.equal(active.length, 53);
  t.notOk(active.includes('page-03.test'));

  // mailboxCount is counted per domain in a list too.
  await createMailbox('ann@page-10.test');
  await createMailbox('bob@page-10.test');
  const page = (await support.get('/v1/domains?q=page-1&limit=2')).json();
  t.strictSame(
    page.items.map((d: { name: string; mailboxCount: number }) => [d.name, d.mailboxCount]),
    [['page-10.test', 2], ['page-11.test', 0]],
  );
});

t.test('GET /v1/domains refuses bad paging and filters', async (t) => {
  for (const query of ['limit=0', 'limit=501', 'limit=-1', 'limit=ten', 'limit=1.5', 'status=deleted', `q=${'a'.repeat(254)}`, `cursor=${'a'.repeat(513)}`]) {
    assertProblem(t, await support.get(`/v1/domains?${query}`), 400, 'validation_failed');
  }
  const unknown = assertProblem(t, await support.get('/v1/domains?name=page-01.test'), 400, 'unknown_field');
  t.match(unknown.errors, [{ path: 'querystring.name' }]);

  const cursors = [
    'garbage!',
    'not-a-cursor',
    Buffer.from('not json').toString('base64url'),
    Buffer.from(JSON.stringify({ after: 5 })).toString('base64url'),
    Buffer.from(JSON.stringify({ before: 'page-01.test' })).toString('base64url'),
    Buffer.from(JSON.stringify(['page-01.test'])).toString('base64url'),
    Buffer.from('null').toString('base64url'),
  ];
  for (const cursor of cursors) {
    const problem = assertProblem(t, await support.get(`/v1/domains?cursor=${encodeURIComponent(cursor)}`), 422, 'invalid_cursor');
    t.equal(problem.field, 'cursor');
  }
});

t.test('PATCH changes any subset of the writable fields; nested objects merge with what is there', async (t) => {
  const created = await createDomain('patchy.test', {
    defaults: { quota: { storageBytes: 1000, messages: 50 } },
    limits: { maxMailboxes: 10 },
  });
  let etag = String((await admin.get('/v1/domains/patchy.test')).headers.etag);

  const steps: [object, Record<string, unknown>][] = [
    [{ defaults: { protocols: { pop3: false } } }, { defaults: { ...created.defaults, protocols: { imap: true, pop3: false } } }],
    [{ defaults: { quota: { messages: 200 } } }, { defaults: { ...created.defaults, protocols: { imap: true, pop3: false }, quota: { storageBytes: 1000, messages: 200 } } }],
    [{ limits: { maxQuota: { messages: 500 } } }, { limits: { maxMailboxes: 10, maxQuota: { storageBytes: null, messages: 500 } } }],
    [{ limits: { maxMailboxes: 20 } }, { limits: { maxMailboxes: 20, maxQuota: { storageBytes: null, messages: 500 } } }],
    [{ status: 'suspended', defaults: { pop3DeleteMode: 'hide' } }, { status: 'suspended' }],
  ];
  let current = created;
  for (const [change, expected] of steps) {
    const patched = await provisioner.patch('/v1/domains/patchy.test', change, { 'x-request-id': 'patchy' });
    t.equal(patched.statusCode, 200, JSON.stringify(change));
    t.match(patched.json(), expected, `${JSON.stringify(change)} merged`);
    t.match(patched.headers.etag, STRONG_ETAG);
    t.not(patched.headers.etag, etag, 'a change makes a new ETag');
    etag = String(patched.headers.etag);
    t.equal(patched.json().createdAt, created.createdAt);
    const read = await admin.get('/v1/domains/patchy.test');
    t.strictSame(read.json(), patched.json(), 'GET agrees with the PATCH answer');
    t.equal(read.headers.etag, etag);
    current = patched.json();
  }
  t.strictSame(withoutTimes(current), {
    name: 'patchy.test',
    unicodeName: 'patchy.test',
    status: 'suspended',
    suspendedDelivery: 'receive',
    defaults: { quota: { storageBytes: 1000, messages: 200 }, protocols: { imap: true, pop3: false }, pop3DeleteMode: 'hide' },
    limits: { maxMailboxes: 20, maxQuota: { storageBytes: null, messages: 500 } },
    mailboxCount: 0,
  });

  // One audit event per change, with only the fields that changed, before and after.
  const { items } = await auditEvents(admin, 'target=patchy.test&action=domain.update');
  t.equal(items.length, steps.length);
  const first = items[items.length - 1]!;
  t.match(first, { actor: { id: provisionerKey.id, name: 'hosting panel' }, requestId: 'patchy', ip: '127.0.0.1', domain: 'patchy.test' });
  t.strictSame(first.before, { defaults: created.defaults });
  t.strictSame(first.after, { defaults: { ...created.defaults, protocols: { imap: true, pop3: false } } });
  const last = items[0]!;
  t.strictSame(Object.keys(last.after!).sort(), ['defaults', 'status']);
  t.equal(last.before!.status, 'active');
  t.equal(last.after!.status, 'suspended');
  t.equal(last.before!.defaults.pop3DeleteMode, 'remove');
  t.equal(last.after!.defaults.pop3DeleteMode, 'hide');

  // A PATCH that changes nothing keeps the ETag and writes no event.
  for (const change of [{}, { status: 'suspended' }, { defaults: {} }, { limits: { maxQuota: {} } }]) {
    const same = await provisioner.patch('/v1/domains/patchy.test', change);
    t.equal(same.statusCode, 200);
    t.equal(same.headers.etag, etag, `${JSON.stringify(change)} keeps the ETag`);
    t.strictSame(same.json(), current);
  }
  t.equal((await auditEvents(admin, 'target=patchy.test&action=domain.update')).items.length, steps.length);
});

t.test('PATCH validation: 400 for unknown or malformed fields, 422 for a default above the ceiling; nothing changes', async (t) => {
  await createDomain('strict.test', { defaults: { quota: { storageBytes: 1000 } }, limits: { maxQuota: { storageBytes: 5000 } } });
  const before = await snapshot('strict.test');
  for (const [payload, path] of [
    [{ name: 'other.test' }, 'body.name'],
    [{ mailboxCount: 0 }, 'body.mailboxCount'],
    [{ createdAt: '2020-01-01T00:00:00Z' }, 'body.createdAt'],
    [{ defaults: { quota: { storageBytes: 10, bytes: 1 } } }, 'body.defaults.quota.bytes'],
    [{ limits: { maxUsers: 3 } }, 'body.limits.maxUsers'],
  ] as const) {
    const problem = assertProblem(t, await provisioner.patch('/v1/domains/strict.test', payload), 400, 'unknown_field');
    t.ok(problem.errors.some((e: { path: string }) => e.path === path), `names ${path}`);
  }
  for (const payload of [
    { status: 'gone' },
    { limits: { maxMailboxes: -3 } },
    { defaults: { protocols: { imap: 'maybe' } } },
    { defaults: { pop3DeleteMode: 'expunge' } },
    { defaults: { quota: { storageBytes: 1e20 } } },
    [],
  ]) {
    assertProblem(t, await provisioner.patch('/v1/domains/strict.test', payload), 400, 'validation_failed');
  }
  const lowered = await provisioner.patch('/v1/domains/strict.test', { limits: { maxQuota: { storageBytes: 500 } } });
  t.equal(assertProblem(t, lowered, 422, 'default_quota_above_limit').field, 'defaults.quota');
  const raised = await provisioner.patch('/v1/domains/strict.test', { defaults: { quota: { storageBytes: 6000 } } });
  assertProblem(t, raised, 422, 'default_quota_above_limit');
  t.strictSame(await snapshot('strict.test'), before, 'nothing changed');
  t.equal((await auditEvents(admin, 'target=strict.test&action=domain.update')).items.length, 0);

  // Both at once, consistently, is fine.
  const both = await provisioner.patch('/v1/domains/strict.test', {
    defaults: { quota: { storageBytes: 400 } },
    limits: { maxQuota: { storageBytes: 500 } },
  });
  t.equal(both.statusCode, 200);
  t.strictSame(both.json().limits.maxQuota, { storageBytes: 500, messages: null });
});

t.test('If-Match on PATCH and DELETE: the current ETag works, a stale one is 412 and changes nothing, * always matches', async (t) => {
  const created = await provisioner.post('/v1/domains', { name: 'match.test' });
  const first = String(created.headers.etag);
  const changed = await provisioner.patch('/v1/domains/match.test', { status: 'suspended' }, { 'if-match': first });
  t.equal(changed.statusCode, 200);
  const second = String(changed.headers.etag);
  t.not(second, first);

  const stale = await provisioner.patch('/v1/domains/match.test', { status: 'active' }, { 'if-match': first });
  t.match(assertProblem(t, stale, 412, 'revision_mismatch').detail, /changed/);
  assertProblem(t, await provisioner.delete('/v1/domains/match.test', { 'if-match': first }), 412, 'revision_mismatch');
  const now = await admin.get('/v1/domains/match.test');
  t.equal(now.json().status, 'suspended', 'the stale PATCH did not apply');
  t.equal(now.headers.etag, second);
  t.equal((await auditEvents(admin, 'target=match.test')).items.length, 2, 'create and the one PATCH');

  const star = await provisioner.patch('/v1/domains/match.test', { status: 'active' }, { 'if-match': '*' });
  t.equal(star.statusCode, 200);
  t.equal(star.json().status, 'active');
  assertProblem(t, await provisioner.delete('/v1/domains/match.test', { 'if-match': second }), 412, 'revision_mismatch');
  t.equal((await provisioner.delete('/v1/domains/match.test', { 'if-match': String(star.headers.etag) })).statusCode, 204);
  assertProblem(t, await admin.get('/v1/domains/match.test'), 404, 'domain_not_found');

  await createDomain('star.test');
  t.equal((await provisioner.delete('/v1/domains/star.test', { 'if-match': '*' })).statusCode, 204, '* matches on DELETE');
});

t.test('DELETE refuses a domain with mailboxes (409 domain_not_empty), deletes it once they are gone', async (t) => {
  await createDomain('full.test', { limits: { maxMailboxes: 9 } });
  await createMailbox('ann@full.test');
  await createMailbox('bob@full.test');
  t.equal((await admin.get('/v1/domains/full.test')).json().mailboxCount, 2);
  const before = await snapshot('full.test');

  const refused = assertProblem(t, await provisioner.delete('/v1/domains/full.test'), 409, 'domain_not_empty');
  t.equal(refused.mailboxCount, 2);
  t.match(refused.detail, /2 mailboxes/);
  t.strictSame(await snapshot('full.test'), before, 'the domain is still there, unchanged');
  t.equal((await admin.get('/v1/mailboxes/ann@full.test')).statusCode, 200, 'and so are its mailboxes');

  t.equal((await admin.delete('/v1/mailboxes/ann@full.test')).statusCode, 204);
  assertProblem(t, await provisioner.delete('/v1/domains/full.test'), 409, 'domain_not_empty');
  t.equal((await admin.get('/v1/domains/full.test')).json().mailboxCount, 1);
  t.equal((await admin.delete('/v1/mailboxes/bob@full.test')).statusCode, 204);

  const deleted = await provisioner.delete('/v1/domains/full.test', { 'x-request-id': 'delete-full' });
  t.equal(deleted.statusCode, 204);
  t.equal(deleted.body, '');
  assertProblem(t, await admin.get('/v1/domains/full.test'), 404, 'domain_not_found');
  t.notOk((await listNames(admin, '&q=full')).includes('full.test'), 'no longer listed');
  assertProblem(t, await provisioner.delete('/v1/domains/full.test'), 404, 'domain_not_found');
  assertProblem(t, await admin.post('/v1/mailboxes', { address: 'cat@full.test', password: PASSWORD }), 404, 'domain_not_found');

  const { items } = await auditEvents(admin, 'target=full.test&action=domain.delete');
  t.equal(items.length, 1);
  t.match(items[0], { actor: { id: provisionerKey.id, name: 'hosting panel' }, requestId: 'delete-full', ip: '127.0.0.1', after: null });
  t.match(items[0]!.before, { name: 'full.test', status: 'active', limits: { maxMailboxes: 9 } });
});

t.test('an unknown domain answers 404 domain_not_found on every route; a malformed name is refused', async (t) => {
  for (const name of ['nowhere.test', 'NoWhere.test', 'nöwhere.test']) {
    const url = domainUrl(name);
    t.match(assertProblem(t, await admin.get(url), 404, 'domain_not_found').detail, /nowhere|xn--/);
    assertProblem(t, await admin.patch(url, { status: 'suspended' }), 404, 'domain_not_found');
    assertProblem(t, await admin.delete(url), 404, 'domain_not_found');
  }
  t.strictSame(await listNames(admin, '&q=nowhere'), [], 'the PATCH did not create it');
  assertProblem(t, await admin.get(domainUrl('not a domain')), 422, 'invalid_domain');
  assertProblem(t, await admin.patch(domainUrl('under_score.test'), { status: 'active' }), 422, 'invalid_domain');
  assertProblem(t, await admin.delete(domainUrl('-dash.test')), 422, 'invalid_domain');
  // An empty name is refused by the schema.
  assertProblem(t, await admin.get('/v1/domains/'), 400, 'validation_failed');
  assertProblem(t, await admin.patch('/v1/domains/', { status: 'active' }), 400, 'validation_failed');
  assertProblem(t, await admin.delete('/v1/domains/'), 400, 'validation_failed');
});

t.test('every domain route answers 401 without a token or with a bad one, and changes nothing', async (t) => {
  await createDomain('locked.test');
  const before = await snapshot('locked.test');
  const revoked = await makeKey(api.services, 'admin', 'revoked key');
  await api.services.apiKeys.revoke(revoked.id, { id: 'test', name: 'test', domains: null });
  const callers = [
    anonymous,
    client.as({ authorization: 'Bearer not-a-real-token' }),
    client.as({ authorization: `Basic ${Buffer.from('admin:secret').toString('base64')}` }),
    client.as(revoked.headers),
  ];
  for (const caller of callers) {
    const responses = [
      await caller.post('/v1/domains', { name: 'intruder.test' }),
      await caller.get('/v1/domains'),
      await caller.get('/v1/domains/locked.test'),
      await caller.patch('/v1/domains/locked.test', { status: 'suspended' }),
      await caller.delete('/v1/domains/locked.test'),
    ];
    for (const response of responses) {
      assertProblem(t, response, 401, 'unauthenticated');
      t.equal(response.headers['www-authenticate'], 'Bearer realm="mailroom"');
      t.notOk(/"(items|defaults|name)"/.test(response.body), 'no domain data in the answer');
    }
  }
  t.strictSame(await snapshot('locked.test'), before);
  assertProblem(t, await admin.get('/v1/domains/intruder.test'), 404, 'domain_not_found');
});

t.test('support may read domains but not create, change or delete them (403 role_forbidden)', async (t) => {
  await createDomain('readonly.test');
  const before = await snapshot('readonly.test');
  const refused = [
    await support.post('/v1/domains', { name: 'helpdesk.test' }),
    await support.patch('/v1/domains/readonly.test', { status: 'suspended' }),
    await support.patch('/v1/domains/readonly.test', {}),
    await support.delete('/v1/domains/readonly.test'),
  ];
  for (const response of refused) {
    t.match(assertProblem(t, response, 403, 'role_forbidden').detail, /support/);
  }
  t.strictSame(await snapshot('readonly.test'), before, 'nothing changed');
  assertProblem(t, await admin.get('/v1/domains/helpdesk.test'), 404, 'domain_not_found');
  t.equal((await support.get('/v1/domains/readonly.test')).statusCode, 200);
  t.equal((await support.get('/v1/domains?q=readonly')).json().items.length, 1);
});

t.test('a key confined to one domain sees only that one; the others answer 404 and stay unchanged', async (t) => {
  await createDomain('scope-a.test');
  await createDomain('scope-b.test');
  await createDomain('bücher-scope.example');
  await createMailbox('ann@scope-b.test');
  const confinedKey = await makeKey(api.services, 'provisioner', 'customer A', ['scope-a.test', 'bücher-scope.example']);
  const confined = client.as(confinedKey.headers);
  const confinedSupport = client.as((await makeKey(api.services, 'support', 'customer A support', ['scope-a.test'])).headers);
  const before = await snapshot('scope-b.test');

  t.strictSame(await listNames(confined), ['scope-a.test', 'xn--bcher-scope-thb.example'], 'lists only its own domains');
  t.strictSame(await listNames(confined, '&q=scope-b'), []);
  t.strictSame(await listNames(confinedSupport), ['scope-a.test']);
  const paged = await confined.get('/v1/domains?limit=1');
  t.equal(paged.json().items[0].name, 'scope-a.test');
  const next = await confined.get(`/v1/domains?limit=1&cursor=${paged.json().nextCursor}`);
  t.strictSame(next.json().items.map((d: { name: string }) => d.name), ['xn--bcher-scope-thb.example']);
  t.equal(next.json().nextCursor, null, 'paging stays within the key’s domains');

  for (const caller of [confined, confinedSupport]) {
    const read = await caller.get('/v1/domains/scope-b.test');
    t.match(assertProblem(t, read, 404, 'domain_not_found').detail, /no domain scope-b\.test/, 'exactly like a missing domain');
  }
  assertProblem(t, await confined.patch('/v1/domains/scope-b.test', { status: 'suspended' }), 404, 'domain_not_found');
  assertProblem(t, await confined.patch('/v1/domains/scope-b.test', { status: 'suspended' }, { 'if-match': '*' }), 404, 'domain_not_found');
  assertProblem(t, await confined.delete('/v1/domains/scope-b.test'), 404, 'domain_not_found');
  assertProblem(t, await confined.post('/v1/domains', { name: 'scope-c.test' }), 403, 'domain_out_of_scope');
  assertProblem(t, await confined.post('/v1/domains', { name: 'scope-b.test' }), 403, 'domain_out_of_scope');
  t.strictSame(await snapshot('scope-b.test'), before, 'the other domain is unchanged');
  assertProblem(t, await admin.get('/v1/domains/scope-c.test'), 404, 'domain_not_found');
  t.equal((await auditEvents(admin, 'target=scope-b.test')).items.length, 1, 'only its creation is recorded');

  // Its own domains work, in either spelling.
  t.equal((await confined.get('/v1/domains/scope-a.test')).statusCode, 200);
  t.equal((await confined.get(domainUrl('Bücher-Scope.example'))).statusCode, 200);
  const own = await confined.patch('/v1/domains/scope-a.test', { defaults: { pop3DeleteMode: 'trash' } });
  t.equal(own.statusCode, 200);
  t.equal(own.json().defaults.pop3DeleteMode, 'trash');
  t.equal((await confined.delete(domainUrl('bücher-scope.example'))).statusCode, 204);
  t.equal((await confined.post('/v1/domains', { name: 'bücher-scope.example' })).statusCode, 201, 'a confined key may create its own domain');
});

t.test('suspendedDelivery: whether suspended mailboxes still receive mail', async (t) => {
  const created = await admin.post('/v1/domains', { name: 'rejecting.test', suspendedDelivery: 'reject' });
  t.equal(created.statusCode, 201, created.body);
  t.equal(created.json().suspendedDelivery, 'reject');
  const patched = await admin.patch('/v1/domains/rejecting.test', { suspendedDelivery: 'receive' });
  t.equal(patched.statusCode, 200);
  t.equal(patched.json().suspendedDelivery, 'receive');
  t.equal((await admin.patch('/v1/domains/rejecting.test', { suspendedDelivery: 'bounce' })).statusCode, 400);
});
