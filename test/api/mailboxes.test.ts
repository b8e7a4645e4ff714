import t from 'tap';
import { verifyPassword } from '../../src/core/auth/passwords.js';
import { accounts } from '../../src/db/schema/index.js';
import { ADMIN_TOKEN, buildTestApi, PASSWORD } from '../helpers/api.js';
import { accountRow, apiClient, auditEvents, type Caller, domainUrl, mailboxUrl, makeKey } from '../helpers/api-client.js';
import { assertProblem } from '../helpers/problem.js';

const api = await buildTestApi(t);
const client = apiClient(api.app);
const admin = client.as(api.admin);
const provisionerKey = await makeKey(api.services, 'provisioner', 'provisioning script');
const provisioner = client.as(provisionerKey.headers);
const supportKey = await makeKey(api.services, 'support', 'helpdesk');
const support = client.as(supportKey.headers);
const anonymous = client.as();

const STRONG_ETAG = /^"[^"]+"$/;
/** Shaped like a bcrypt hash; only ever sent where it is refused. */
const IMPORTED_HASH = '$2b$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234';
/** Tokens of the keys made along the way, for the final secret scan. */
const tokens = [provisionerKey.token, supportKey.token];
const RESOURCE_FIELDS = [
  'address',
  'createdAt',
  'displayName',
  'domain',
  'lastLogin',
  'pop3DeleteMode',
  'protocolSwitches',
  'protocols',
  'quota',
  'status',
  'updatedAt',
  'usage',
];
for (const name of ['mail.test', 'other.test']) {
  const created = await admin.post('/v1/domains', { name });
  if (created.statusCode !== 201) throw new Error(`setup: ${created.body}`);
}

async function createMailbox(address: string, fields: object = {}): Promise<Record<string, any>> {
  const created = await admin.post('/v1/mailboxes', { address, password: PASSWORD, ...fields });
  if (created.statusCode !== 201) throw new Error(`setup: mailbox ${address}: ${created.body}`);
  return created.json();
}

/** The mailbox as it is now (status, ETag, body and password hash), to prove a refused request changed nothing. */
async function snapshot(address: string) {
  const read = await admin.get(mailboxUrl(address));
  const row = await accountRow(api.database, address);
  return { status: read.statusCode, etag: read.headers.etag, body: read.body, hash: row?.passwordHash, version: row?.passwordVersion };
}

async function listAddresses(caller: Caller, query = ''): Promise<string[]> {
  const page = await caller.get(`/v1/mailboxes?limit=500${query}`);
  if (page.statusCode !== 200) throw new Error(page.body);
  return page.json().items.map((m: { address: string }) => m.address);
}

/** A switch as the mailbox was created: on or off, no reason, no end, never changed. */
const asCreated = (enabled: boolean) => ({ enabled, reason: null, until: null, changedAt: null });
const NO_NOTES = { imap: { reason: null, until: null }, pop3: { reason: null, until: null } };

function withoutTimes(resource: Record<string, unknown>) {
  const { createdAt: _c, updatedAt: _u, ...rest } = resource;
  return rest;
}

t.test('POST creates a mailbox; it reads exactly as documented, with the same ETag on GET', async (t) => {
  const created = await provisioner.post('/v1/mailboxes', { address: 'ann@mail.test', password: PASSWORD }, { 'x-request-id': 'create-ann' });
  t.equal(created.statusCode, 201);
  t.equal(created.headers.location, '/v1/mailboxes/ann@mail.test');
  t.match(created.headers.etag, STRONG_ETAG);
  const body = created.json();
  t.strictSame(Object.keys(body).sort(), RESOURCE_FIELDS);
  t.strictSame(withoutTimes(body), {
    address: 'ann@mail.test',
    domain: 'mail.test',
    displayName: null,
    status: 'active',
    protocols: { imap: true, pop3: true },
    protocolSwitches: { imap: asCreated(true), pop3: asCreated(true) },
    pop3DeleteMode: 'remove',
    quota: { storageBytes: null, messages: null },
    usage: { storageBytes: 0, messages: 0 },
    lastLogin: null,
  });
  t.ok(Math.abs(Date.parse(body.createdAt) - Date.now()) < 60_000, 'createdAt is now');
  t.equal(body.updatedAt, body.createdAt);

  for (const caller of [admin, provisioner, support]) {
    const read = await caller.get('/v1/mailboxes/ann@mail.test');
    t.equal(read.statusCode, 200);
    t.strictSame(read.json(), body, 'GET answers what POST did');
    t.equal(read.headers.etag, created.headers.etag, 'with the same ETag');
  }
  t.equal((await admin.get('/v1/domains/mail.test')).json().mailboxCount, 1);

  const row = await accountRow(api.database, 'ann@mail.test');
  t.match(row?.passwordHash, /^\$argon2id\$/, 'the password is stored as argon2id');
  t.ok((await verifyPassword(row!.passwordHash, PASSWORD)).valid, 'and verifies');

  const { items } = await auditEvents(admin, 'target=ann@mail.test');
  t.equal(items.length, 1);
  t.match(items[0], {
    action: 'mailbox.create',
    targetType: 'mailbox',
    target: 'ann@mail.test',
    domain: 'mail.test',
    actor: { id: provisionerKey.id, name: 'provisioning script' },
    requestId: 'create-ann',
    ip: '127.0.0.1',
    before: null,
  });
  t.strictSame(items[0]!.after, {
    address: 'ann@mail.test',
    displayName: null,
    status: 'active',
    protocols: { imap: true, pop3: true },
    protocolSwitches: NO_NOTES,
    pop3DeleteMode: 'remove',
    quota: { storageBytes: null, messages: null },
    passwordScheme: 'argon2id',
  });
});

t.test('POST takes every writable field in the resource shape', async (t) => {
  const created = await provisioner.post('/v1/mailboxes', {
    address: 'zoe@mail.test',
    password: PASSWORD,
    displayName: 'Zoë Ünïcode-Smith',
    quota: { storageBytes: 1073741824, messages: 10000 },
    protocols: { imap: true, pop3: false },
    pop3DeleteMode: 'hide',
    status: 'suspended',
  });
  t.equal(created.statusCode, 201);
  const expected = {
    address: 'zoe@mail.test',
    domain: 'mail.test',
    displayName: 'Zoë Ünïcode-Smith',
    status: 'suspended',
    protocols: { imap: true, pop3: false },
    protocolSwitches: { imap: asCreated(true), pop3: asCreated(false) },
    pop3DeleteMode: 'hide',
    quota: { storageBytes: 1073741824, messages: 10000 },
    usage: { storageBytes: 0, messages: 0 },
    lastLogin: null,
  };
  t.strictSame(withoutTimes(created.json()), expected);
  t.strictSame(withoutTimes((await admin.get('/v1/mailboxes/zoe@mail.test')).json()), expected, 'stored as answered');

  for (const mode of ['remove', 'hide', 'trash']) {
    const made = await provisioner.post('/v1/mailboxes', { address: `mode-${mode}@mail.test`, password: PASSWORD, pop3DeleteMode: mode });
    t.equal(made.json().pop3DeleteMode, mode);
  }
  const largest = await provisioner.post('/v1/mailboxes', {
    address: 'huge@mail.test',
    password: PASSWORD,
    quota: { storageBytes: Number.MAX_SAFE_INTEGER, messages: 2147483647 },
  });
  t.strictSame(largest.json().quota, { storageBytes: Number.MAX_SAFE_INTEGER, messages: 2147483647 }, 'the largest quota round-trips');
  const zero = await provisioner.post('/v1/mailboxes', { address: 'zero@mail.test', password: PASSWORD, quota: { storageBytes: 0, messages: 0 } });
  t.strictSame(zero.json().quota, { storageBytes: 0, messages: 0 }, 'zero is a quota, not unlimited');
});

t.test('addresses are case-insensitive on every route', async (t) => {
  const created = await provisioner.post('/v1/mailboxes', { address: 'Bob.Smith@Mail.TEST', password: PASSWORD });
  t.equal(created.statusCode, 201);
  t.equal(created.json().address, 'bob.smith@mail.test');
  t.equal(created.json().domain, 'mail.test');
  t.equal(created.headers.location, '/v1/mailboxes/bob.smith@mail.test');

  for (const spelling of ['BOB.SMITH@MAIL.TEST', 'bob.smith@Mail.Test', ' Bob.Smith@mail.test ']) {
    const read = await support.get(mailboxUrl(spelling));
    t.equal(read.statusCode, 200, `GET ${spelling}`);
    t.equal(read.json().address, 'bob.smith@mail.test');
  }
  for (const spelling of ['bob.smith@MAIL.test', 'BOB.smith@mail.test']) {
    const problem = assertProblem(t, await provisioner.post('/v1/mailboxes', { address: spelling, password: PASSWORD }), 409, 'mailbox_exists');
    t.match(problem.detail, /bob\.smith@mail\.test/);
  }
  t.strictSame(await listAddresses(admin, '&q=BOB.S'), ['bob.smith@mail.test'], 'listed once, in lowercase');

  const patched = await provisioner.patch(mailboxUrl('Bob.Smith@MAIL.test'), { displayName: 'Bob' });
  t.equal(patched.statusCode, 200);
  t.equal((await admin.get('/v1/mailboxes/bob.smith@mail.test')).json().displayName, 'Bob', 'the one mailbox changed');
  t.equal((await support.put(mailboxUrl('BOB.SMITH@mail.test') + '/password', { password: 'a brand new passphrase' })).statusCode, 204);
  t.ok((await verifyPassword((await accountRow(api.database, 'bob.smith@mail.test'))!.passwordHash, 'a brand new passphrase')).valid);
  t.equal((await provisioner.delete(mailboxUrl('Bob.Smith@Mail.Test'))).statusCode, 204);
  assertProblem(t, await admin.get('/v1/mailboxes/bob.smith@mail.test'), 404, 'mailbox_not_found');
  t.strictSame(
    (await auditEvents(admin, 'target=bob.smith@mail.test')).items.map((e) => e.action),
    ['mailbox.delete', 'mailbox.password.set', 'mailbox.update', 'mailbox.create'],
    'audit names the one lowercase address',
  );
});

t.test('IDNA: a mailbox on a Unicode domain is stored with the punycode domain and found in either form', async (t) => {
  t.equal((await admin.post('/v1/domains', { name: 'bücher.example' })).statusCode, 201);
  const created = await provisioner.post('/v1/mailboxes', { address: 'Ann@BÜCHER.example', password: PASSWORD });
  t.equal(created.statusCode, 201);
  t.equal(created.json().address, 'ann@xn--bcher-kva.example');
  t.equal(created.json().domain, 'xn--bcher-kva.example');
  t.equal(created.headers.location, '/v1/mailboxes/ann@xn--bcher-kva.example');

  for (const spelling of ['ann@bücher.example', 'ANN@Bücher.Example', 'ann@xn--bcher-kva.example', 'Ann@XN--BCHER-KVA.EXAMPLE']) {
    const read = await support.get(mailboxUrl(spelling));
    t.equal(read.statusCode, 200, `GET ${spelling}`);
    t.strictSame(read.json(), created.json());
  }
  assertProblem(t, await provisioner.post('/v1/mailboxes', { address: 'ann@xn--bcher-kva.example', password: PASSWORD }), 409, 'mailbox_exists');
  for (const domain of ['bücher.example', 'xn--bcher-kva.example', 'BÜCHER.EXAMPLE']) {
    t.strictSame(await listAddresses(support, `&domain=${encodeURIComponent(domain)}`), ['ann@xn--bcher-kva.example'], `domain=${domain}`);
  }
  t.equal((await provisioner.patch(mailboxUrl('ann@bücher.example'), { status: 'suspended' })).json().status, 'suspended');
  t.equal((await provisioner.put(`${mailboxUrl('ann@bücher.example')}/password`, { password: 'eine neue Passphrase' })).statusCode, 204);
  t.equal((await provisioner.delete(mailboxUrl('ANN@bücher.example'))).statusCode, 204);
  assertProblem(t, await admin.get('/v1/mailboxes/ann@xn--bcher-kva.example'), 404, 'mailbox_not_found');
  t.equal((await admin.get(domainUrl('bücher.example'))).json().mailboxCount, 0);
});

t.test('local parts must be RFC 5321 dot-atoms: 422 invalid_address, and nothing is created', async (t) => {
  const invalid = [
    'a..b@mail.test',
    '.a@mail.test',
    'a.@mail.test',
    'a b@mail.test',
    'annmail.test',
    '@mail.test',
    'ann@',
    'ann@@mail.test',
    '"ann"@mail.test',
    'ann(x)@mail.test',
    'ann,bob@mail.test',
    'ann<x>@mail.test',
    'añn@mail.test',
    `${'x'.repeat(65)}@mail.test`,
    'ann@mail..test',
    'ann@-mail.test',
    'ann@mail_test.test',
    'ann@localhost',
    'ann@[127.0.0.1]',
  ];
  for (const address of invalid) {
    const problem = assertProblem(t, await provisioner.post('/v1/mailboxes', { address, password: PASSWORD }), 422, 'invalid_address');
    t.equal(problem.field, 'address', `${address}: names the field`);
  }
  const valid = ["o'neil+tag@mail.test", 'a_b-c.d@mail.test', '#!$%&*/=?^`{|}~@mail.test', `${'x'.repeat(64)}@mail.test`];
  for (const address of valid) {
    const created = await provisioner.post('/v1/mailboxes', { address, password: PASSWORD });
    t.equal(created.statusCode, 201, `${address} is a valid dot-atom (${created.body.slice(0, 120)})`);
    t.equal((await support.get(mailboxUrl(address))).statusCode, 200, `${address} can be read back`);
    // Location must be a usable URL even when the local part holds / ? # % and the like.
    const followed = await support.get(String(created.headers.location));
    t.equal(followed.statusCode, 200, `${address}: Location ${created.headers.location} can be followed`);
    t.equal(followed.json().address, address, `${address}: Location leads to the new mailbox`);
  }
  const created = (await auditEvents(admin, 'action=mailbox.create')).items.map((e) => e.target);
  for (const address of invalid) t.notOk(created.includes(address.toLowerCase()), `${address} was not created`);
});

t.test('the mailbox’s domain must exist: 404 domain_not_found', async (t) => {
  for (const address of ['ann@nowhere.test', 'ann@sub.mail.test', 'ann@mail.test.example']) {
    const problem = assertProblem(t, await provisioner.post('/v1/mailboxes', { address, password: PASSWORD }), 404, 'domain_not_found');
    t.match(problem.detail, /no domain/);
    assertProblem(t, await admin.get(mailboxUrl(address)), 404, 'mailbox_not_found');
  }
  assertProblem(t, await support.get('/v1/mailboxes?domain=nowhere.test'), 404, 'domain_not_found');
});

t.test('POST validation: 400 unknown_field or validation_failed, and nothing is created', async (t) => {
  const base = { address: 'val@mail.test', password: PASSWORD };
  const unknown: [object, string][] = [
    [{ ...base, passwordhash: 'x' }, 'body.passwordhash'],
    [{ ...base, usage: { storageBytes: 0, messages: 0 } }, 'body.usage'],
    [{ ...base, domain: 'mail.test' }, 'body.domain'],
    [{ ...base, lastLogin: null }, 'body.lastLogin'],
    [{ ...base, createdAt: '2020-01-01T00:00:00Z' }, 'body.createdAt'],
    [{ ...base, quota: { bytes: 1 } }, 'body.quota.bytes'],
    [{ ...base, protocols: { smtp: true } }, 'body.protocols.smtp'],
    [{ ...base, name: 'Val' }, 'body.name'],
  ];
  for (const [payload, path] of unknown) {
    const problem = assertProblem(t, await provisioner.post('/v1/mailboxes', payload), 400, 'unknown_field');
    t.ok(problem.errors.some((e: { path: string }) => e.path === path), `names ${path}: ${JSON.stringify(problem.errors)}`);
  }
  const invalid: [object, string][] = [
    [{ password: PASSWORD }, 'body.address'],
    [{ address: 'ab', password: PASSWORD }, 'body.address'],
    [{ address: `${'x'.repeat(320)}@mail.test`, password: PASSWORD }, 'body.address'],
    [{ address: { local: 'val' }, password: PASSWORD }, 'body.address'],
    [{ ...base, pop3DeleteMode: 'delete' }, 'body.pop3DeleteMode'],
    [{ ...base, status: 'deleted' }, 'body.status'],
    [{ ...base, quota: { storageBytes: -1 } }, 'body.quota.storageBytes'],
    [{ ...base, quota: { messages: 1.5 } }, 'body.quota.messages'],
    [{ ...base, quota: { messages: 2147483648 } }, 'body.quota.messages'],
    [{ ...base, quota: 1024 }, 'body.quota'],
    [{ ...base, protocols: { imap: 'yes' } }, 'body.protocols.imap'],
    [{ ...base, displayName: 'Line\nBreak' }, 'body.displayName'],
    [{ ...base, displayName: 'Bell\u0007' }, 'body.displayName'],
    [{ ...base, displayName: 'x'.repeat(257) }, 'body.displayName'],
    [{ address: 'val@mail.test', password: '' }, 'body.password'],
    [{ address: 'val@mail.test', password: 'x'.repeat(1025) }, 'body.password'],
    [{ address: 'val@mail.test', passwordHash: '' }, 'body.passwordHash'],
    [{ address: 'val@mail.test', passwordHash: `$6$${'x'.repeat(510)}` }, 'body.passwordHash'],
  ];
  for (const [payload, path] of invalid) {
    const problem = assertProblem(t, await provisioner.post('/v1/mailboxes', payload), 400, 'validation_failed');
    t.ok(problem.errors.some((e: { path: string }) => e.path.startsWith(path)), `names ${path}: ${JSON.stringify(problem.errors)}`);
  }
  assertProblem(t, await admin.get('/v1/mailboxes/val@mail.test'), 404, 'mailbox_not_found');
  t.equal((await auditEvents(admin, 'target=val@mail.test')).items.length, 0);

  const longest = await provisioner.post('/v1/mailboxes', { address: 'val@mail.test', password: PASSWORD, displayName: 'x'.repeat(256) });
  t.equal(longest.statusCode, 201, 'a 256-character display name is fine');
});

t.test('a value of the wrong JSON type is 400, not silently converted', async (t) => {
  const wrong: [string, object][] = [
    ['protocols.imap: null', { protocols: { imap: null } }],
    ['protocols.pop3: 0', { protocols: { pop3: 0 } }],
    ['displayName: 42', { displayName: 42 }],
    ['quota.messages: "12"', { quota: { messages: '12' } }],
    ['status: ["active"]', { status: ['active'] }],
  ];
  let n = 0;
  for (const [label, fields] of wrong) {
    const response = await provisioner.post('/v1/mailboxes', { address: `typed${++n}@mail.test`, password: PASSWORD, ...fields });
    t.equal(response.statusCode, 400, `create with ${label}`);
  }
  await createMailbox('typed@mail.test');
  for (const [label, fields] of wrong) {
    const response = await provisioner.patch('/v1/mailboxes/typed@mail.test', fields);
    t.equal(response.statusCode, 400, `PATCH with ${label}`);
  }
  const numeric = await provisioner.put('/v1/mailboxes/typed@mail.test/password', { password: 12345678901234 });
  t.equal(numeric.statusCode, 400, 'a number is not a password');
});

t.test('an unknown mailbox answers 404 mailbox_not_found on every route', async (t) => {
  for (const address of ['ghost@mail.test', 'ghost@nowhere.test', 'not-an-address', 'a..b@mail.test']) {
    const url = mailboxUrl(address);
    t.match(assertProblem(t, await admin.get(url), 404, 'mailbox_not_found').detail, /no mailbox/);
    assertProblem(t, await admin.patch(url, { status: 'suspended' }), 404, 'mailbox_not_found');
    assertProblem(t, await admin.put(`${url}/password`, { password: 'a fine new passphrase' }), 404, 'mailbox_not_found');
    assertProblem(t, await admin.delete(url), 404, 'mailbox_not_found');
  }
  // Too short to be an address at all: refused by the schema.
  assertProblem(t, await admin.get('/v1/mailboxes/ab'), 400, 'validation_failed');
  assertProblem(t, await admin.patch('/v1/mailboxes/ab', { status: 'suspended' }), 400, 'validation_failed');
  assertProblem(t, await admin.put('/v1/mailboxes/ab/password', { password: 'a fine new passphrase' }), 400, 'validation_failed');
  assertProblem(t, await admin.delete('/v1/mailboxes/ab'), 400, 'validation_failed');
  t.equal((await auditEvents(admin, 'target=ghost@mail.test')).items.length, 0, 'nothing was created on the way');
});

t.test('PATCH changes any subset of the writable fields; partial quota and protocols merge', async (t) => {
  const created = await createMailbox('pat@mail.test', {
    displayName: 'Pat',
    quota: { storageBytes: 5000, messages: 50 },
  });
  let etag = String((await admin.get('/v1/mailboxes/pat@mail.test')).headers.etag);
  const steps: [object, Record<string, unknown>][] = [
    [{ protocols: { pop3: false } }, { protocols: { imap: true, pop3: false } }],
    [{ quota: { messages: 80 } }, { quota: { storageBytes: 5000, messages: 80 } }],
    [{ quota: { storageBytes: 9000 } }, { quota: { storageBytes: 9000, messages: 80 } }],
    [{ displayName: 'Pat Jones' }, { displayName: 'Pat Jones' }],
    [{ pop3DeleteMode: 'trash' }, { pop3DeleteMode: 'trash' }],
    [{ status: 'suspended', protocols: { imap: false } }, { status: 'suspended', protocols: { imap: false, pop3: false } }],
  ];
  let current = created;
  for (const [change, expected] of steps) {
    const patched = await provisioner.patch('/v1/mailboxes/pat@mail.test', change, { 'x-request-id': 'patch-pat' });
    t.equal(patched.statusCode, 200, JSON.stringify(change));
    t.match(patched.json(), expected, `${JSON.stringify(change)} merged`);
    t.not(patched.headers.etag, etag, 'a new ETag');
    t.match(patched.headers.etag, STRONG_ETAG);
    etag = String(patched.headers.etag);
    t.equal(patched.json().createdAt, created.createdAt);
    const read = await admin.get('/v1/mailboxes/pat@mail.test');
    t.strictSame(read.json(), patched.json(), 'GET agrees');
    t.equal(read.headers.etag, etag);
    current = patched.json();
  }
  t.ok(current.protocolSwitches.pop3.changedAt < current.protocolSwitches.imap.changedAt, 'each switch keeps the time it changed');
  t.strictSame(withoutTimes(current), {
    address: 'pat@mail.test',
    domain: 'mail.test',
    displayName: 'Pat Jones',
    status: 'suspended',
    protocols: { imap: false, pop3: false },
    protocolSwitches: {
      imap: { enabled: false, reason: null, until: null, changedAt: current.protocolSwitches.imap.changedAt },
      pop3: { enabled: false, reason: null, until: null, changedAt: current.protocolSwitches.pop3.changedAt },
    },
    pop3DeleteMode: 'trash',
    quota: { storageBytes: 9000, messages: 80 },
    usage: { storageBytes: 0, messages: 0 },
    lastLogin: null,
  });

  const { items } = await auditEvents(admin, 'target=pat@mail.test&action=mailbox.update');
  t.equal(items.length, steps.length, 'one event per change');
  const [last, , , , , first] = items;
  t.match(first, { actor: { id: provisionerKey.id, name: 'provisioning script' }, requestId: 'patch-pat', ip: '127.0.0.1', domain: 'mail.test', targetType: 'mailbox' });
  t.strictSame(first!.before, { protocols: { imap: true, pop3: true } }, 'only the changed field, before');
  t.strictSame(first!.after, { protocols: { imap: true, pop3: false } }, 'and after');
  t.strictSame(last!.before, { status: 'active', protocols: { imap: true, pop3: false } });
  t.strictSame(last!.after, { status: 'suspended', protocols: { imap: false, pop3: false } });

  for (const change of [{}, { status: 'suspended' }, { protocols: {} }, { quota: { messages: 80 } }, { displayName: 'Pat Jones' }]) {
    const same = await provisioner.patch('/v1/mailboxes/pat@mail.test', change);
    t.equal(same.statusCode, 200);
    t.equal(same.headers.etag, etag, `${JSON.stringify(change)} changes nothing and keeps the ETag`);
    t.strictSame(same.json(), current);
  }
  t.equal((await auditEvents(admin, 'target=pat@mail.test&action=mailbox.update')).items.length, steps.length, 'no event for no change');

  const cleared = await provisioner.patch('/v1/mailboxes/pat@mail.test', { displayName: null });
  t.equal(cleared.statusCode, 200);
  t.equal(cleared.json().displayName, null, 'displayName: null clears the name');
});

t.test('PATCH validation: 400 for unknown or malformed fields; nothing changes', async (t) => {
  await createMailbox('fixed@mail.test');
  const before = await snapshot('fixed@mail.test');
  for (const [payload, path] of [
    [{ address: 'moved@mail.test' }, 'body.address'],
    [{ password: 'a sneaky new passphrase' }, 'body.password'],
    [{ passwordHash: IMPORTED_HASH }, 'body.passwordHash'],
    [{ domain: 'other.test' }, 'body.domain'],
    [{ usage: { messages: 0 } }, 'body.usage'],
    [{ lastLogin: null }, 'body.lastLogin'],
    [{ quota: { bytes: 5 } }, 'body.quota.bytes'],
    [{ protocols: { pop3: false, smtp: true } }, 'body.protocols.smtp'],
  ] as const) {
    const response = await provisioner.patch('/v1/mailboxes/fixed@mail.test', payload);
    const problem = assertProblem(t, response, 400, 'unknown_field');
    t.ok(problem.errors.some((e: { path: string }) => e.path === path), `names ${path}`);
    t.notOk(response.body.includes('sneaky'), 'the refused password is not echoed');
  }
  for (const payload of [
    { status: 'deleted' },
    { pop3DeleteMode: 'delete' },
    { protocols: { imap: 'no' } },
    { quota: { storageBytes: -5 } },
    { quota: { messages: 'many' } },
    { displayName: 'Tab\there' },
    [],
  ]) {
    assertProblem(t, await provisioner.patch('/v1/mailboxes/fixed@mail.test', payload), 400, 'validation_failed');
  }
  t.strictSame(await snapshot('fixed@mail.test'), before);
  t.equal((await auditEvents(admin, 'target=fixed@mail.test&action=mailbox.update')).items.length, 0);
});

t.test('If-Match on PATCH and DELETE: current works, stale is 412 and changes nothing, * always matches', async (t) => {
  const created = await provisioner.post('/v1/mailboxes', { address: 'etag@mail.test', password: PASSWORD });
  const first = String(created.headers.etag);
  t.equal((await admin.get('/v1/mailboxes/etag@mail.test')).headers.etag, first);
  const changed = await provisioner.patch('/v1/mailboxes/etag@mail.test', { displayName: 'One' }, { 'if-match': first });
  t.equal(changed.statusCode, 200);
  const second = String(changed.headers.etag);
  t.not(second, first);

  assertProblem(t, await provisioner.patch('/v1/mailboxes/etag@mail.test', { displayName: 'Two' }, { 'if-match': first }), 412, 'revision_mismatch');
  assertProblem(t, await provisioner.delete('/v1/mailboxes/etag@mail.test', { 'if-match': first }), 412, 'revision_mismatch');
  const now = await admin.get('/v1/mailboxes/etag@mail.test');
  t.equal(now.json().displayName, 'One', 'the stale change did not apply');
  t.equal(now.headers.etag, second);

  // A password change is a change of the mailbox: an ETag read before it is stale after it.
  t.equal((await support.put('/v1/mailboxes/etag@mail.test/password', { password: 'another fine passphrase' })).statusCode, 204);
  const third = String((await admin.get('/v1/mailboxes/etag@mail.test')).headers.etag);
  t.not(third, second, 'the password change bumped the ETag');
  assertProblem(t, await support.patch('/v1/mailboxes/etag@mail.test', { status: 'suspended' }, { 'if-match': second }), 412, 'revision_mismatch');
  t.equal((await admin.get('/v1/mailboxes/etag@mail.test')).json().status, 'active');

  const star = await support.patch('/v1/mailboxes/etag@mail.test', { status: 'suspended' }, { 'if-match': '*' });
  t.equal(star.statusCode, 200);
  t.equal(star.json().status, 'suspended');
  const current = await support.patch('/v1/mailboxes/etag@mail.test', { status: 'active' }, { 'if-match': String(star.headers.etag) });
  t.equal(current.statusCode, 200);
  assertProblem(t, await provisioner.delete('/v1/mailboxes/etag@mail.test', { 'if-match': third }), 412, 'revision_mismatch');
  t.equal((await admin.get('/v1/mailboxes/etag@mail.test')).statusCode, 200, 'still there');
  t.equal((await provisioner.delete('/v1/mailboxes/etag@mail.test', { 'if-match': String(current.headers.etag) })).statusCode, 204);
  assertProblem(t, await admin.get('/v1/mailboxes/etag@mail.test'), 404, 'mailbox_not_found');

  await createMailbox('star@mail.test');
  t.equal((await provisioner.delete('/v1/mailboxes/star@mail.test', { 'if-match': '*' })).statusCode, 204);
  t.equal(
    (await auditEvents(admin, 'target=etag@mail.test')).items.map((e) => e.action).join(' '),
    'mailbox.delete mailbox.update mailbox.update mailbox.password.set mailbox.update mailbox.create',
  );
});

t.test('concurrent PATCHes sent with the same If-Match: exactly one wins, the rest are 412', async (t) => {
  const created = await provisioner.post('/v1/mailboxes', { address: 'race@mail.test', password: PASSWORD });
  const etag = String(created.headers.etag);
  const names = ['One', 'Two', 'Three', 'Four', 'Five'];
  const results = await Promise.all(names.map((displayName) => provisioner.patch('/v1/mailboxes/race@mail.test', { displayName }, { 'if-match': etag })));
  t.strictSame(results.map((r) => r.statusCode).sort(), [200, 412, 412, 412, 412]);
  const winner = results.find((r) => r.statusCode === 200)!;
  const now = await admin.get('/v1/mailboxes/race@mail.test');
  t.equal(now.json().displayName, winner.json().displayName, 'the winner’s change is the one stored');
  t.equal(now.headers.etag, winner.headers.etag);
  t.equal((await auditEvents(admin, 'target=race@mail.test&action=mailbox.update')).items.length, 1);
});

t.test('DELETE removes the mailbox, records what it was, and frees the address', async (t) => {
  const created = await createMailbox('gone@other.test', { displayName: 'Gone', protocols: { pop3: false } });
  t.equal((await admin.get('/v1/domains/other.test')).json().mailboxCount, 1);
  const deleted = await provisioner.delete('/v1/mailboxes/gone@other.test', { 'x-request-id': 'delete-gone' });
  t.equal(deleted.statusCode, 204);
  t.equal(deleted.body, '');
  assertProblem(t, await admin.get('/v1/mailboxes/gone@other.test'), 404, 'mailbox_not_found');
  t.strictSame(await listAddresses(admin, '&domain=other.test'), []);
  t.equal((await admin.get('/v1/domains/other.test')).json().mailboxCount, 0);
  t.equal(await accountRow(api.database, 'gone@other.test'), undefined, 'the row is gone');
  assertProblem(t, await provisioner.delete('/v1/mailboxes/gone@other.test'), 404, 'mailbox_not_found');

  const { items } = await auditEvents(admin, 'target=gone@other.test&action=mailbox.delete');
  t.equal(items.length, 1);
  t.match(items[0], { actor: { id: provisionerKey.id, name: 'provisioning script' }, requestId: 'delete-gone', ip: '127.0.0.1', after: null, domain: 'other.test' });
  t.strictSame(items[0]!.before, {
    address: 'gone@other.test',
    displayName: 'Gone',
    status: 'active',
    protocols: { imap: true, pop3: false },
    protocolSwitches: NO_NOTES,
    pop3DeleteMode: 'remove',
    quota: { storageBytes: null, messages: null },
    usage: { storageBytes: 0, messages: 0 },
  });

  const again = await provisioner.post('/v1/mailboxes', { address: 'gone@other.test', password: PASSWORD });
  t.equal(again.statusCode, 201, 'the address can be used again');
  t.equal(again.json().displayName, null, 'as a new mailbox');
  t.not(again.headers.etag, `"${created.etag}"`);
});

t.test('every mailbox route answers 401 without a token or with a bad one, and changes nothing', async (t) => {
  await createMailbox('locked@mail.test');
  const before = await snapshot('locked@mail.test');
  for (const caller of [anonymous, client.as({ authorization: 'Bearer not-a-real-token' }), client.as({ authorization: 'Basic YWRtaW46YWRtaW4=' })]) {
    const responses = [
      await caller.post('/v1/mailboxes', { address: 'intruder@mail.test', password: PASSWORD }),
      await caller.get('/v1/mailboxes'),
      await caller.get('/v1/mailboxes/locked@mail.test'),
      await caller.patch('/v1/mailboxes/locked@mail.test', { status: 'suspended' }),
      await caller.put('/v1/mailboxes/locked@mail.test/password', { password: 'an intruder passphrase' }),
      await caller.delete('/v1/mailboxes/locked@mail.test'),
    ];
    for (const response of responses) {
      assertProblem(t, response, 401, 'unauthenticated');
      t.equal(response.headers['www-authenticate'], 'Bearer realm="mailroom"');
      t.notOk(/"(items|address|quota)"/.test(response.body), 'no mailbox data in the answer');
    }
  }
  t.strictSame(await snapshot('locked@mail.test'), before);
  assertProblem(t, await admin.get('/v1/mailboxes/intruder@mail.test'), 404, 'mailbox_not_found');
});

t.test('support may switch protocols, suspend and set passwords; anything else is 403 role_forbidden', async (t) => {
  await createMailbox('help@mail.test', { displayName: 'Help' });
  const before = await snapshot('help@mail.test');
  const refused: [string, () => Promise<{ statusCode: number; body: string; headers: any; json(): any }>, RegExp][] = [
    ['create', () => support.post('/v1/mailboxes', { address: 'helper@mail.test', password: PASSWORD }), /support/],
    ['delete', () => support.delete('/v1/mailboxes/help@mail.test'), /support/],
    ['displayName', () => support.patch('/v1/mailboxes/help@mail.test', { displayName: 'Renamed' }), /displayName/],
    ['quota', () => support.patch('/v1/mailboxes/help@mail.test', { quota: { storageBytes: 1 } }), /quota/],
    ['pop3DeleteMode', () => support.patch('/v1/mailboxes/help@mail.test', { pop3DeleteMode: 'hide' }), /pop3DeleteMode/],
    ['mixed', () => support.patch('/v1/mailboxes/help@mail.test', { status: 'suspended', displayName: 'X' }), /displayName/],
    ['hash import', () => support.put('/v1/mailboxes/help@mail.test/password', { passwordHash: IMPORTED_HASH }), /hash/],
  ];
  for (const [label, request, detail] of refused) {
    const problem = assertProblem(t, await request(), 403, 'role_forbidden');
    t.match(problem.detail, detail, `${label}: the detail says what is not allowed`);
  }
  t.strictSame(await snapshot('help@mail.test'), before, 'nothing changed');
  assertProblem(t, await admin.get('/v1/mailboxes/helper@mail.test'), 404, 'mailbox_not_found');
  t.equal((await auditEvents(admin, 'target=help@mail.test')).items.length, 1, 'only the creation is recorded');

  const protocols = await support.patch('/v1/mailboxes/help@mail.test', { protocols: { imap: false } });
  t.equal(protocols.statusCode, 200);
  t.strictSame(protocols.json().protocols, { imap: false, pop3: true });
  const suspended = await support.patch('/v1/mailboxes/help@mail.test', { status: 'suspended', protocols: { imap: true } });
  t.equal(suspended.statusCode, 200);
  t.equal(suspended.json().status, 'suspended');
  t.equal((await support.patch('/v1/mailboxes/help@mail.test', {})).statusCode, 200, 'an empty change is allowed');
  t.equal((await support.put('/v1/mailboxes/help@mail.test/password', { password: 'support chose this one' })).statusCode, 204);
  const row = await accountRow(api.database, 'help@mail.test');
  t.ok((await verifyPassword(row!.passwordHash, 'support chose this one')).valid, 'support set the password');
  t.equal(row!.passwordVersion, before.version! + 1);
  const events = (await auditEvents(admin, 'target=help@mail.test')).items;
  t.strictSame(events.map((e) => e.action), ['mailbox.password.set', 'mailbox.update', 'mailbox.update', 'mailbox.create']);
  t.ok(events.slice(0, 3).every((e) => e.actor.id === supportKey.id && e.actor.name === 'helpdesk'), 'recorded as the support key');
});

t.test('a key confined to one domain gets 404 for other domains’ mailboxes, lists none of them, changes nothing', async (t) => {
  for (const name of ['cust-a.test', 'cust-b.test', 'cust-c.test']) t.equal((await admin.post('/v1/domains', { name })).statusCode, 201);
  await createMailbox('ann@cust-a.test');
  await createMailbox('amy@cust-c.test');
  await createMailbox('ann@cust-b.test', { displayName: 'B’s Ann' });
  await createMailbox('bea@cust-b.test');
  const confinedKey = await makeKey(api.services, 'provisioner', 'customer A panel', ['cust-a.test', 'cust-c.test']);
  const confinedSupportKey = await makeKey(api.services, 'support', 'customer A helpdesk', ['cust-a.test']);
  tokens.push(confinedKey.token, confinedSupportKey.token);
  const confined = client.as(confinedKey.headers);
  const confinedSupport = client.as(confinedSupportKey.headers);
  const before = await snapshot('ann@cust-b.test');

  t.strictSame(await listAddresses(confined), ['amy@cust-c.test', 'ann@cust-a.test'], 'only its own domains’ mailboxes');
  t.strictSame(await listAddresses(confined, '&q=ann@'), ['ann@cust-a.test']);
  t.strictSame(await listAddresses(confined, '&q=bea'), []);
  t.strictSame(await listAddresses(confinedSupport), ['ann@cust-a.test']);
  const page = await confined.get('/v1/mailboxes?limit=1');
  t.strictSame(page.json().items.map((m: { address: string }) => m.address), ['amy@cust-c.test']);
  const next = await confined.get(`/v1/mailboxes?limit=1&cursor=${page.json().nextCursor}`);
  t.strictSame(next.json().items.map((m: { address: string }) => m.address), ['ann@cust-a.test']);
  t.equal(next.json().nextCursor, null, 'paging never reaches other domains');
  assertProblem(t, await confined.get('/v1/mailboxes?domain=cust-b.test'), 404, 'domain_not_found');

  for (const caller of [confined, confinedSupport]) {
    const read = await caller.get('/v1/mailboxes/ann@cust-b.test');
    t.match(assertProblem(t, read, 404, 'mailbox_not_found').detail, /no mailbox/);
    assertProblem(t, await caller.patch('/v1/mailboxes/ann@cust-b.test', { status: 'suspended' }), 404, 'mailbox_not_found');
    assertProblem(t, await caller.patch('/v1/mailboxes/ann@cust-b.test', { status: 'suspended' }, { 'if-match': '*' }), 404, 'mailbox_not_found');
    assertProblem(t, await caller.put('/v1/mailboxes/ann@cust-b.test/password', { password: 'hijacked passphrase' }), 404, 'mailbox_not_found');
  }
  assertProblem(t, await confined.delete('/v1/mailboxes/ann@cust-b.test'), 404, 'mailbox_not_found');
  assertProblem(t, await confined.delete('/v1/mailboxes/ann@cust-b.test', { 'if-match': '*' }), 404, 'mailbox_not_found');
  assertProblem(t, await confined.post('/v1/mailboxes', { address: 'eve@cust-b.test', password: PASSWORD }), 404, 'domain_not_found');
  t.strictSame(await snapshot('ann@cust-b.test'), before, 'the other domain’s mailbox is unchanged, password included');
  assertProblem(t, await admin.get('/v1/mailboxes/eve@cust-b.test'), 404, 'mailbox_not_found');
  t.equal((await auditEvents(admin, 'target=ann@cust-b.test')).items.length, 1, 'only its creation is recorded');

  const { items: seen } = await auditEvents(confinedSupport);
  t.ok(seen.length > 0, 'the confined key sees its own domain’s events');
  t.ok(seen.every((e) => e.domain === 'cust-a.test'), 'and no other domain’s');

  // Its own mailboxes work as usual.
  t.equal((await confined.post('/v1/mailboxes', { address: 'cat@cust-a.test', password: PASSWORD })).statusCode, 201);
  t.equal((await confinedSupport.patch('/v1/mailboxes/ann@cust-a.test', { status: 'suspended' })).statusCode, 200);
  t.equal((await confinedSupport.put('/v1/mailboxes/ann@cust-a.test/password', { password: 'a fine own passphrase' })).statusCode, 204);
  t.equal((await confined.delete('/v1/mailboxes/cat@cust-a.test')).statusCode, 204);
});

t.test('Idempotency-Key on POST /v1/mailboxes: a retry replays the answer; the mailbox is made once', async (t) => {
  const body = { address: 'idem@mail.test', password: PASSWORD, displayName: 'Idem' };
  const headers = { 'idempotency-key': 'create-idem-1' };
  const first = await provisioner.post('/v1/mailboxes', body, headers);
  t.equal(first.statusCode, 201);
  t.equal(first.headers['idempotent-replayed'], undefined);
  for (const retry of [body, { displayName: 'Idem', password: PASSWORD, address: 'idem@mail.test' }]) {
    const replay = await provisioner.post('/v1/mailboxes', retry, headers);
    t.equal(replay.statusCode, 201, 'same status');
    t.equal(replay.body, first.body, 'same body');
    t.equal(replay.headers['idempotent-replayed'], 'true');
    t.equal(replay.headers.etag, first.headers.etag);
    t.equal(replay.headers.location, first.headers.location);
  }
  t.strictSame(await listAddresses(admin, '&q=idem@'), ['idem@mail.test'], 'one mailbox');
  t.equal((await auditEvents(admin, 'target=idem@mail.test&action=mailbox.create')).items.length, 1, 'one audit event');

  for (const other of [
    { ...body, displayName: 'Someone else' },
    { ...body, password: 'a different passphrase' },
    { ...body, address: 'idem2@mail.test' },
  ]) {
    assertProblem(t, await provisioner.post('/v1/mailboxes', other, headers), 422, 'idempotency_key_reused');
  }
  assertProblem(t, await admin.get('/v1/mailboxes/idem2@mail.test'), 404, 'mailbox_not_found');
  t.equal((await admin.get('/v1/mailboxes/idem@mail.test')).json().displayName, 'Idem');

  // A refusal is remembered too: the retry of a 409 answers the same 409, marked as a replay.
  const conflict = await provisioner.post('/v1/mailboxes', body, { 'idempotency-key': 'create-idem-2' });
  assertProblem(t, conflict, 409, 'mailbox_exists');
  const conflictReplay = await provisioner.post('/v1/mailboxes', body, { 'idempotency-key': 'create-idem-2' });
  t.equal(conflictReplay.statusCode, 409);
  t.equal(conflictReplay.headers['idempotent-replayed'], 'true');
  t.equal(conflictReplay.json().code, 'mailbox_exists');
});

// Last: searches everything the tests above received.
t.test('no password, password hash or API token appears in any response or audit event', async (t) => {
  const stored = await api.database.db.select({ hash: accounts.passwordHash }).from(accounts);
  const secrets = [
    ADMIN_TOKEN,
    ...tokens,
    PASSWORD,
    IMPORTED_HASH,
    'a brand new passphrase',
    'a different passphrase',
    'a fine new passphrase',
    'a fine own passphrase',
    'a sneaky new passphrase',
    'an intruder passphrase',
    'another fine passphrase',
    'hijacked passphrase',
    'support chose this one',
    'eine neue Passphrase',
    '12345678901234',
    ...stored.map((row) => row.hash),
  ];
  t.ok(stored.length > 20, `${stored.length} stored hashes to look for`);
  const transcript = client.transcript();
  const { raw } = await auditEvents(admin);
  for (const value of secrets) {
    const escaped = JSON.stringify(value).slice(1, -1);
    t.notOk(transcript.includes(escaped), `${value.slice(0, 12)}… never in a response`);
    t.notOk(raw.includes(escaped), `${value.slice(0, 12)}… never in an audit event`);
  }
});
