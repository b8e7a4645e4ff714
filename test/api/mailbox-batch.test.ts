import { availableParallelism, loadavg } from 'node:os';
import t from 'tap';
import { hashPassword, verifyPassword } from '../../src/core/auth/passwords.js';
import { accountRow, apiClient, auditEvents, makeKey } from '../helpers/api-client.js';
import { buildTestApi, PASSWORD } from '../helpers/api.js';
import { assertProblem } from '../helpers/problem.js';

// 1,000 argon2 hashes on a shared two-core machine take a while.
t.setTimeout(600_000);

const api = await buildTestApi(t);
const client = apiClient(api.app);
const admin = client.as(api.admin);
const BATCH = '/v1/mailboxes:batch';
/** Shaped like a bcrypt hash of cost 4: imported as it is, no hashing. */
const IMPORTED_HASH = '$2b$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234';

for (const body of [{ name: 'batch.test' }, { name: 'small.test', limits: { maxMailboxes: 2 } }, { name: 'other.test' }]) {
  const created = await admin.post('/v1/domains', body);
  if (created.statusCode !== 201) throw new Error(`setup: ${created.body}`);
}

async function createMailbox(address: string, fields: object = {}) {
  const created = await admin.post('/v1/mailboxes', { address, password: PASSWORD, ...fields });
  if (created.statusCode !== 201) throw new Error(`setup: ${created.body}`);
}

/** Every mailbox as the API reads it, and how many audit events there are: what a batch may change. */
async function state() {
  const list = await admin.get('/v1/mailboxes?limit=500');
  return { mailboxes: list.json().items, audit: (await auditEvents(admin)).items.length };
}

t.test('a mixed batch: each operation reported on its own, the failures undo nothing', async (t) => {
  await createMailbox('exists@batch.test');
  await createMailbox('change@batch.test', { displayName: 'Old' });
  await createMailbox('same@batch.test', { displayName: 'Same' });
  await createMailbox('gone@batch.test');
  await createMailbox('newpass@batch.test');
  const before = await accountRow(api.database, 'newpass@batch.test');
  const items = [
    { op: 'create', address: 'New@Batch.test', password: PASSWORD, displayName: 'New', quota: { storageBytes: 1000 } },
    { op: 'create', address: 'exists@batch.test', password: PASSWORD },
    { op: 'update', address: 'change@batch.test', displayName: 'New name', protocols: { pop3: false } },
    { op: 'update', address: 'same@batch.test', displayName: 'Same' },
    { op: 'update', address: 'newpass@batch.test', password: 'another long passphrase' },
    { op: 'delete', address: 'gone@batch.test' },
    { op: 'delete', address: 'never@batch.test' },
    { op: 'create', address: 'ann@nowhere.test', password: PASSWORD },
    { address: 'no-op@batch.test' },
    { op: 'create', address: 'typed@batch.test', password: PASSWORD, quota: { storageBytes: 'lots' } },
    { op: 'update', address: 'change@batch.test', displayName: 'Twice' },
    { op: 'create', address: 'weak@batch.test', password: 'short' },
    { op: 'create', address: 'hash@batch.test', passwordHash: IMPORTED_HASH },
    { op: 'create', address: 'nopass@batch.test' },
    { op: 'create', address: 'not an address', password: PASSWORD },
    42,
  ];
  const response = await admin.post(BATCH, { items }, { 'x-request-id': 'batch-mixed' });
  t.equal(response.statusCode, 200, response.body);
  const body = response.json();
  t.equal(body.applied, true);
  const summary = body.results.map((r: any) => [r.index, r.op, r.address, r.status, r.problem?.code ?? null]);
  t.same(summary, [
    [0, 'create', 'New@Batch.test', 'created', null],
    [1, 'create', 'exists@batch.test', 'failed', 'mailbox_exists'],
    [2, 'update', 'change@batch.test', 'updated', null],
    [3, 'update', 'same@batch.test', 'unchanged', null],
    [4, 'update', 'newpass@batch.test', 'updated', null],
    [5, 'delete', 'gone@batch.test', 'deleted', null],
    [6, 'delete', 'never@batch.test', 'failed', 'mailbox_not_found'],
    [7, 'create', 'ann@nowhere.test', 'failed', 'domain_not_found'],
    [8, null, 'no-op@batch.test', 'failed', 'validation_failed'],
    [9, 'create', 'typed@batch.test', 'failed', 'validation_failed'],
    [10, 'update', 'change@batch.test', 'failed', 'duplicate_address'],
    [11, 'create', 'weak@batch.test', 'failed', 'password_too_weak'],
    [12, 'create', 'hash@batch.test', 'created', null],
    [13, 'create', 'nopass@batch.test', 'failed', 'password_required'],
    [14, 'create', 'not an address', 'failed', 'invalid_address'],
    [15, null, null, 'failed', 'validation_failed'],
  ]);
  t.same(body.counts, { created: 2, updated: 2, unchanged: 1, deleted: 1, failed: 10 });

  // A failure's problem is the one its single request would get.
  const byIndex = (i: number) => body.results[i];
  t.match(byIndex(1).problem, { type: 'https://mailroom.dev/problems/mailbox-exists', title: 'Conflict', status: 409, code: 'mailbox_exists', detail: String });
  t.match(byIndex(6).problem, { status: 404 });
  t.match(byIndex(8).problem, { status: 400, errors: [{ path: 'body.items.8.op', message: 'must be create, update or delete' }] });
  t.match(byIndex(9).problem, { status: 400, errors: [{ path: 'body.items.9.quota.storageBytes' }] });
  t.match(byIndex(11).problem, { status: 422, field: 'password' });
  t.notOk('instance' in byIndex(1).problem, 'an item problem has no request fields');

  // The results carry the mailboxes as they are now; the store agrees.
  t.match(byIndex(0).mailbox, { address: 'new@batch.test', displayName: 'New', quota: { storageBytes: 1000, messages: null } });
  t.match(byIndex(2).mailbox, { displayName: 'New name', protocols: { imap: true, pop3: false } });
  t.match(byIndex(3).mailbox, { displayName: 'Same' });
  t.notOk('mailbox' in byIndex(5), 'a deletion reports no mailbox');
  t.equal((await admin.get('/v1/mailboxes/new@batch.test')).json().displayName, 'New');
  t.equal((await admin.get('/v1/mailboxes/change@batch.test')).json().displayName, 'New name');
  assertProblem(t, await admin.get('/v1/mailboxes/gone@batch.test'), 404, 'mailbox_not_found');
  t.equal((await admin.get('/v1/mailboxes/hash@batch.test')).statusCode, 200);
  for (const missing of ['typed@batch.test', 'weak@batch.test', 'nopass@batch.test']) {
    assertProblem(t, await admin.get(`/v1/mailboxes/${missing}`), 404, 'mailbox_not_found');
  }
  const created = await accountRow(api.database, 'new@batch.test');
  t.ok((await verifyPassword(created!.passwordHash, PASSWORD)).valid, 'the new mailbox has its password');
  t.equal((await accountRow(api.database, 'hash@batch.test'))!.passwordHash, IMPORTED_HASH);
  const changed = await accountRow(api.database, 'newpass@batch.test');
  t.ok((await verifyPassword(changed!.passwordHash, 'another long passphrase')).valid, 'the new password works');
  t.equal(changed!.passwordVersion, before!.passwordVersion + 1);
  const folders = await admin.get('/v1/mailboxes/new@batch.test/folders');
  t.same(folders.json().items.map((f: { name: string }) => f.name).sort(), ['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);

  // Each applied change is audited as its single request is, with the batch's request id.
  const audit = (await auditEvents(admin)).items.filter((e) => e.requestId === 'batch-mixed');
  t.same(audit.map((e) => `${e.action} ${e.target}`).sort(), [
    'mailbox.create hash@batch.test',
    'mailbox.create new@batch.test',
    'mailbox.delete gone@batch.test',
    'mailbox.password.set newpass@batch.test',
    'mailbox.update change@batch.test',
  ]);
  t.match(audit.find((e) => e.action === 'mailbox.update')!, {
    before: { displayName: 'Old', protocols: { imap: true, pop3: true } },
    after: { displayName: 'New name', protocols: { imap: true, pop3: false } },
  });
  t.match(audit.find((e) => e.target === 'new@batch.test')!.after, { passwordScheme: 'argon2id' });
});

t.test('dryRun checks everything and changes nothing', async (t) => {
  await createMailbox('dry@batch.test');
  const before = await state();
  const items = [
    { op: 'create', address: 'dry-new@batch.test', password: PASSWORD },
    { op: 'create', address: 'dry@batch.test', password: PASSWORD },
    { op: 'update', address: 'dry@batch.test', status: 'suspended' },
    { op: 'delete', address: 'dry@batch.test' },
    { op: 'update', address: 'missing@batch.test', displayName: 'x' },
  ];
  const response = await admin.post(`${BATCH}?dryRun=true`, { items });
  t.equal(response.statusCode, 200, response.body);
  const body = response.json();
  t.equal(body.applied, false);
  t.same(body.results.map((r: any) => r.status), ['created', 'failed', 'failed', 'failed', 'failed']);
  t.same(body.results.map((r: any) => r.problem?.code ?? null), [null, 'mailbox_exists', 'duplicate_address', 'duplicate_address', 'mailbox_not_found']);
  t.notOk(body.results.some((r: any) => 'mailbox' in r), 'no mailbox is shown: none was made or changed');
  const alone = await admin.post(`${BATCH}?dryRun=true`, { items: [{ op: 'update', address: 'dry@batch.test', status: 'suspended' }, { op: 'delete', address: 'exists@batch.test' }] });
  t.same(alone.json().results.map((r: any) => r.status), ['updated', 'deleted']);
  t.same(await state(), before, 'no mailbox and no audit event changed');
});

t.test('atomic: one failure and nothing is applied (422 batch_failed with every result); none and all are', async (t) => {
  await createMailbox('atom@batch.test');
  const before = await state();
  const failing = [
    { op: 'create', address: 'atom-new@batch.test', password: PASSWORD },
    { op: 'update', address: 'atom@batch.test', displayName: 'Changed' },
    { op: 'delete', address: 'missing@batch.test' },
  ];
  const refused = await admin.post(`${BATCH}?atomic=true`, { items: failing });
  const problem = assertProblem(t, refused, 422, 'batch_failed');
  t.equal(problem.applied, false);
  t.same(problem.counts, { created: 1, updated: 1, unchanged: 0, deleted: 0, failed: 1 });
  t.same(problem.results.map((r: any) => [r.status, r.problem?.code ?? null]), [['created', null], ['updated', null], ['failed', 'mailbox_not_found']]);
  t.same(await state(), before, 'nothing changed');

  const malformed = await admin.post(`${BATCH}?atomic=true`, { items: [failing[0], { op: 'create', address: 'x@batch.test', extra: 1 }] });
  t.same(assertProblem(t, malformed, 422, 'batch_failed').results.map((r: any) => r.problem?.code ?? null), [null, 'unknown_field']);
  t.same(await state(), before, 'a malformed item stops an atomic batch too');

  const good = await admin.post(`${BATCH}?atomic=true`, { items: failing.slice(0, 2) });
  t.equal(good.statusCode, 200, good.body);
  t.same(good.json().counts, { created: 1, updated: 1, unchanged: 0, deleted: 0, failed: 0 });
  t.equal((await admin.get('/v1/mailboxes/atom@batch.test')).json().displayName, 'Changed');
  t.equal((await admin.get('/v1/mailboxes/atom-new@batch.test')).statusCode, 200);
});

t.test('the domain limits hold across a batch, as for single creations', async (t) => {
  const response = await admin.post(BATCH, {
    items: [
      { op: 'create', address: 'a@small.test', password: PASSWORD },
      { op: 'create', address: 'b@small.test', password: PASSWORD },
      { op: 'create', address: 'c@small.test', password: PASSWORD },
    ],
  });
  t.same(response.json().results.map((r: any) => r.problem?.code ?? r.status), ['created', 'created', 'domain_mailbox_limit_reached']);
  // A deletion earlier in the batch makes room.
  const swap = await admin.post(BATCH, {
    items: [
      { op: 'delete', address: 'a@small.test' },
      { op: 'create', address: 'd@small.test', password: PASSWORD },
    ],
  });
  t.same(swap.json().results.map((r: any) => r.status), ['deleted', 'created']);
});

t.test('bad requests: more than 1,000 items, none, unknown query values; roles and confinement', async (t) => {
  const item = { op: 'delete', address: 'nobody@batch.test' };
  const tooMany = assertProblem(t, await admin.post(BATCH, { items: Array(1001).fill(item) }), 400, 'validation_failed');
  t.match(tooMany.errors, [{ path: 'body.items' }]);
  assertProblem(t, await admin.post(BATCH, { items: [] }), 400, 'validation_failed');
  assertProblem(t, await admin.post(BATCH, [item]), 400, 'validation_failed');
  assertProblem(t, await admin.post(`${BATCH}?dryRun=maybe`, { items: [item] }), 400, 'validation_failed');
  assertProblem(t, await admin.post(`${BATCH}?other=1`, { items: [item] }), 400, 'unknown_field');
  t.equal((await admin.post(BATCH, { items: Array(1000).fill(item) })).statusCode, 200, '1,000 items are taken');

  const support = client.as((await makeKey(api.services, 'support', 'helpdesk')).headers);
  assertProblem(t, await support.post(BATCH, { items: [item] }), 403, 'role_forbidden');

  await createMailbox('theirs@other.test');
  const confined = client.as((await makeKey(api.services, 'provisioner', 'batch.test panel', ['batch.test'])).headers);
  const response = await confined.post(BATCH, {
    items: [
      { op: 'create', address: 'mine@batch.test', password: PASSWORD },
      { op: 'create', address: 'intruder@other.test', password: PASSWORD },
      { op: 'update', address: 'theirs@other.test', displayName: 'Hacked' },
      { op: 'delete', address: 'theirs@other.test' },
    ],
  });
  t.same(response.json().results.map((r: any) => r.problem?.code ?? r.status), ['created', 'domain_not_found', 'mailbox_not_found', 'duplicate_address']);
  t.equal((await admin.get('/v1/mailboxes/theirs@other.test')).json().displayName, null, 'the other domain is untouched');
});

t.test('an Idempotency-Key replays the batch answer instead of running it again', async (t) => {
  const items = [{ op: 'create', address: 'idem@batch.test', password: PASSWORD }];
  const headers = { 'idempotency-key': 'batch-once' };
  const first = await admin.post(BATCH, { items }, headers);
  t.equal(first.json().results[0].status, 'created');
  const replay = await admin.post(BATCH, { items }, headers);
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.equal(replay.body, first.body);
  const again = await admin.post(BATCH, { items });
  t.equal(again.json().results[0].problem.code, 'mailbox_exists', 'without the key it runs again');
  assertProblem(t, await admin.post(BATCH, { items: [{ ...items[0], displayName: 'x' }] }, headers), 422, 'idempotency_key_reused');
});

t.test('1,000 creations with imported hashes: written in a few statements, in seconds', async (t) => {
  const items = Array.from({ length: 1000 }, (_, i) => ({ op: 'create', address: `import${i}@batch.test`, passwordHash: IMPORTED_HASH }));
  const started = performance.now();
  const response = await admin.post(BATCH, { items });
  const seconds = (performance.now() - started) / 1000;
  t.same(response.json().counts, { created: 1000, updated: 0, unchanged: 0, deleted: 0, failed: 0 });
  t.comment(`1,000 creations without hashing took ${seconds.toFixed(2)} s`);
  t.ok(seconds < 60, `within a minute however busy the machine (took ${seconds.toFixed(1)} s)`);
  t.equal((await admin.get('/v1/mailboxes/import999@batch.test/folders')).json().items.length, 6, 'each with its folders');
});

t.test('1,000 creations with passwords: the cost is argon2, on every thread of the pool at once', async (t) => {
  // What one hash costs in CPU time (every thread's, so the load of other processes hardly matters).
  const sample = 8;
  let cpu = process.cpuUsage();
  for (let i = 0; i < sample; i++) await hashPassword(`${PASSWORD} sample ${i}`);
  const hashCpu = cpuSeconds(process.cpuUsage(cpu)) / sample;
  const items = Array.from({ length: 1000 }, (_, i) => ({ op: 'create', address: `bulk${i}@batch.test`, password: `${PASSWORD} ${i}` }));
  cpu = process.cpuUsage();
  const started = performance.now();
  const response = await admin.post(BATCH, { items });
  const seconds = (performance.now() - started) / 1000;
  const batchCpu = cpuSeconds(process.cpuUsage(cpu));
  t.equal(response.statusCode, 200);
  t.same(response.json().counts, { created: 1000, updated: 0, unchanged: 0, deleted: 0, failed: 0 });
  t.comment(
    `1,000 creations took ${seconds.toFixed(1)} s and ${batchCpu.toFixed(1)} CPU s; one hash takes ${(hashCpu * 1000).toFixed(0)} CPU ms ` +
      `(${availableParallelism()} CPUs, load ${loadavg()[0]!.toFixed(1)})`,
  );
  t.ok(batchCpu < 1000 * hashCpu * 1.5, 'hardly anything beyond the hashing');
  t.ok(seconds < 600, `within ten minutes however busy the machine (took ${seconds.toFixed(1)} s)`);
  const last = await accountRow(api.database, 'bulk999@batch.test');
  t.ok((await verifyPassword(last!.passwordHash, `${PASSWORD} 999`)).valid, 'each has its own password');
});

function cpuSeconds(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1e6;
}
