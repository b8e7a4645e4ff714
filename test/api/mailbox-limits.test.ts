import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { buildTestApi, PASSWORD } from '../helpers/api.js';
import { apiClient, auditEvents, makeKey } from '../helpers/api-client.js';
import type { Injected } from '../helpers/problem.js';
import { assertProblem } from '../helpers/problem.js';

const api = await buildTestApi(t);
const client = apiClient(api.app);
const admin = client.as(api.admin);
const provisioner = client.as((await makeKey(api.services, 'provisioner', 'provisioning script')).headers);

async function createDomain(name: string, settings: object = {}): Promise<void> {
  const created = await admin.post('/v1/domains', { name, ...settings });
  if (created.statusCode !== 201) throw new Error(`setup: domain ${name}: ${created.body}`);
}

const create = (address: string, fields: object = {}) => provisioner.post('/v1/mailboxes', { address, password: PASSWORD, ...fields });

async function addresses(domain: string): Promise<string[]> {
  const page = await admin.get(`/v1/mailboxes?limit=500&domain=${domain}`);
  return page.json().items.map((m: { address: string }) => m.address);
}

t.test('fields left out of a new mailbox take the domain’s defaults; given ones merge with them', async (t) => {
  await createDomain('defaults.test', {
    defaults: { quota: { storageBytes: 2048, messages: 20 }, protocols: { imap: false, pop3: true }, pop3DeleteMode: 'trash' },
  });
  const plain = await create('plain@defaults.test');
  t.equal(plain.statusCode, 201);
  t.match(plain.json(), {
    quota: { storageBytes: 2048, messages: 20 },
    protocols: { imap: false, pop3: true },
    pop3DeleteMode: 'trash',
    status: 'active',
    displayName: null,
  });

  const partial = await create('partial@defaults.test', { quota: { messages: 5 }, protocols: { imap: true } });
  t.strictSame(partial.json().quota, { storageBytes: 2048, messages: 5 }, 'a partial quota keeps the default for the rest');
  t.strictSame(partial.json().protocols, { imap: true, pop3: true }, 'partial protocols too');
  t.equal(partial.json().pop3DeleteMode, 'trash');

  const own = await create('own@defaults.test', {
    quota: { storageBytes: 1, messages: 1 },
    protocols: { imap: true, pop3: false },
    pop3DeleteMode: 'hide',
    status: 'suspended',
  });
  t.match(own.json(), { quota: { storageBytes: 1, messages: 1 }, protocols: { imap: true, pop3: false }, pop3DeleteMode: 'hide', status: 'suspended' });

  // New defaults apply to mailboxes made from now on, never to existing ones.
  const changed = await admin.patch('/v1/domains/defaults.test', {
    defaults: { quota: { storageBytes: 4096 }, protocols: { imap: true }, pop3DeleteMode: 'remove' },
  });
  t.equal(changed.statusCode, 200);
  const later = await create('later@defaults.test');
  t.match(later.json(), { quota: { storageBytes: 4096, messages: 20 }, protocols: { imap: true, pop3: true }, pop3DeleteMode: 'remove' });
  const before = (await admin.get('/v1/mailboxes/plain@defaults.test')).json();
  t.strictSame(before, plain.json(), 'the earlier mailbox is untouched');

  // A domain made without defaults gives unlimited quota and both protocols.
  await createDomain('bare.test');
  t.match((await create('ann@bare.test')).json(), {
    quota: { storageBytes: null, messages: null },
    protocols: { imap: true, pop3: true },
    pop3DeleteMode: 'remove',
  });
});

t.test('with an unlimited default and a ceiling, a new mailbox gets the ceiling', async (t) => {
  await createDomain('ceiling-default.test', { limits: { maxQuota: { storageBytes: 4096, messages: 40 } } });
  t.strictSame((await create('ann@ceiling-default.test')).json().quota, { storageBytes: 4096, messages: 40 });
  t.strictSame((await create('bob@ceiling-default.test', { quota: { messages: 3 } })).json().quota, { storageBytes: 4096, messages: 3 });
  await createDomain('half-ceiling.test', { defaults: { quota: { messages: 7 } }, limits: { maxQuota: { storageBytes: 1000 } } });
  t.strictSame((await create('ann@half-ceiling.test')).json().quota, { storageBytes: 1000, messages: 7 });
});

t.test('maxMailboxes: the next mailbox is 409 domain_mailbox_limit_reached until one is deleted or the limit rises', async (t) => {
  await createDomain('small.test', { limits: { maxMailboxes: 2 } });
  await createDomain('neighbour.test');
  t.equal((await create('one@small.test')).statusCode, 201);
  t.equal((await create('neighbour1@neighbour.test')).statusCode, 201, 'other domains do not count');
  t.equal((await create('two@small.test')).statusCode, 201);
  const full = await create('three@small.test');
  const problem = assertProblem(t, full, 409, 'domain_mailbox_limit_reached');
  t.equal(problem.maxMailboxes, 2);
  t.match(problem.detail, /small\.test allows at most 2 mailboxes/);
  t.strictSame(await addresses('small.test'), ['one@small.test', 'two@small.test'], 'nothing was created');
  t.equal((await auditEvents(admin, 'target=three@small.test')).items.length, 0);
  t.equal((await create('neighbour2@neighbour.test')).statusCode, 201, 'the neighbour is not limited');

  t.equal((await admin.delete('/v1/mailboxes/one@small.test')).statusCode, 204);
  t.equal((await create('three@small.test')).statusCode, 201, 'deleting one frees a place');
  assertProblem(t, await create('four@small.test'), 409, 'domain_mailbox_limit_reached');

  t.equal((await admin.patch('/v1/domains/small.test', { limits: { maxMailboxes: 3 } })).statusCode, 200);
  t.equal((await create('four@small.test')).statusCode, 201, 'a raised limit makes room');
  assertProblem(t, await create('five@small.test'), 409, 'domain_mailbox_limit_reached');

  // Lowering the limit below the count keeps the mailboxes but admits no new one.
  t.equal((await admin.patch('/v1/domains/small.test', { limits: { maxMailboxes: 1 } })).statusCode, 200);
  t.equal((await admin.get('/v1/domains/small.test')).json().mailboxCount, 3);
  assertProblem(t, await create('five@small.test'), 409, 'domain_mailbox_limit_reached');

  await createDomain('closed.test', { limits: { maxMailboxes: 0 } });
  t.equal(assertProblem(t, await create('ann@closed.test'), 409, 'domain_mailbox_limit_reached').maxMailboxes, 0);

  const lifted = await admin.patch('/v1/domains/closed.test', { limits: { maxMailboxes: null } });
  t.equal(lifted.statusCode, 200);
  t.equal(lifted.json().limits.maxMailboxes, null, 'maxMailboxes: null lifts the limit');
  t.equal((await create('ann@closed.test')).statusCode, 201, 'and the domain takes mailboxes');
});

t.test('concurrent creations never overshoot maxMailboxes, and a duplicate address is 409 not 500', async (t) => {
  await createDomain('race.test', { limits: { maxMailboxes: 3 } });
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) => create(`racer${i}@race.test`)));
  const statuses = results.map((r) => r.statusCode).sort();
  t.strictSame(statuses, [201, 201, 201, 409, 409, 409, 409, 409]);
  for (const refused of results.filter((r) => r.statusCode === 409)) t.equal(refused.json().code, 'domain_mailbox_limit_reached');
  t.equal((await addresses('race.test')).length, 3);
  t.equal((await admin.get('/v1/domains/race.test')).json().mailboxCount, 3);

  await createDomain('twins.test');
  const twins = await Promise.all(Array.from({ length: 5 }, () => create('twin@twins.test')));
  const codes = twins.map((r: Injected) => (r.statusCode === 201 ? 'created' : r.json().code)).sort();
  t.strictSame(codes, ['created', 'mailbox_exists', 'mailbox_exists', 'mailbox_exists', 'mailbox_exists']);
  t.strictSame(await addresses('twins.test'), ['twin@twins.test']);
  t.equal((await auditEvents(admin, 'target=twin@twins.test&action=mailbox.create')).items.length, 1);
});

t.test('a domain deleted while mailboxes are being created: either the domain stays with them, or none is made', async (t) => {
  for (let round = 0; round < 3; round++) {
    const name = `vanish${round}.test`;
    await createDomain(name);
    const creations = Array.from({ length: 4 }, (_, i) => create(`m${i}@${name}`));
    // Sent at once, or while the creations hash their passwords and commit.
    const deletion = sleep(round * 40).then(() => provisioner.delete(`/v1/domains/${name}`));
    const [deleted, ...made] = await Promise.all([deletion, ...creations]);
    const created = made.filter((r) => r.statusCode === 201).length;
    for (const r of made) t.ok([201, 404].includes(r.statusCode), `create: ${r.statusCode} ${r.body.slice(0, 80)}`);
    if (deleted!.statusCode === 204) {
      t.equal(created, 0, 'the domain went first, so no mailbox was made');
      assertProblem(t, await admin.get(`/v1/domains/${name}`), 404, 'domain_not_found');
    } else {
      assertProblem(t, deleted!, 409, 'domain_not_empty');
      t.ok(created > 0);
      t.equal((await admin.get(`/v1/domains/${name}`)).json().mailboxCount, created, 'the domain keeps every mailbox made');
    }
  }
});

t.test('a quota above the domain’s maxQuota is 422 quota_above_domain_limit, on create and on PATCH', async (t) => {
  await createDomain('capped.test', { limits: { maxQuota: { storageBytes: 1000, messages: 10 } } });
  for (const quota of [{ storageBytes: 1001 }, { messages: 11 }, { storageBytes: Number.MAX_SAFE_INTEGER, messages: 1 }]) {
    const problem = assertProblem(t, await create('big@capped.test', { quota }), 422, 'quota_above_domain_limit');
    t.equal(problem.field, 'quota');
    t.strictSame(problem.maxQuota, { storageBytes: 1000, messages: 10 }, 'the answer says what the ceiling is');
    t.match(problem.detail, /capped\.test/);
  }
  t.strictSame(await addresses('capped.test'), [], 'nothing was created');

  const unlimited = await create('unlimited@capped.test', { quota: { storageBytes: null } });
  t.equal(unlimited.statusCode, 422, 'an unlimited quota exceeds any ceiling');
  t.equal(unlimited.json().code, 'quota_above_domain_limit', 'quota_above_domain_limit');

  const atCeiling = await create('fits@capped.test', { quota: { storageBytes: 1000, messages: 10 } });
  t.equal(atCeiling.statusCode, 201, 'exactly the ceiling fits');
  const below = await create('small@capped.test', { quota: { storageBytes: 10, messages: 1 } });
  t.equal(below.statusCode, 201);

  const before = await admin.get('/v1/mailboxes/small@capped.test');
  for (const quota of [{ storageBytes: 1001 }, { messages: 11 }, { storageBytes: 2000, messages: 20 }]) {
    const problem = assertProblem(t, await provisioner.patch('/v1/mailboxes/small@capped.test', { quota }), 422, 'quota_above_domain_limit');
    t.strictSame(problem.maxQuota, { storageBytes: 1000, messages: 10 });
  }
  const patchedUnlimited = await provisioner.patch('/v1/mailboxes/small@capped.test', { quota: { messages: null } });
  t.equal(patchedUnlimited.statusCode, 422, 'PATCH to unlimited is above the ceiling too');
  const after = await admin.get('/v1/mailboxes/small@capped.test');
  t.equal(after.body, before.body, 'nothing changed');
  t.equal(after.headers.etag, before.headers.etag, 'the ETag is unchanged');

  const within = await provisioner.patch('/v1/mailboxes/small@capped.test', { quota: { storageBytes: 1000 } });
  t.equal(within.statusCode, 200);
  t.strictSame(within.json().quota.storageBytes, 1000);

  // Without a ceiling anything goes, unlimited included.
  await createDomain('open.test');
  const open = await create('ann@open.test', { quota: { storageBytes: Number.MAX_SAFE_INTEGER, messages: 2147483647 } });
  t.equal(open.statusCode, 201);
});

t.test('after the ceiling is lowered, existing quotas stay, other changes work, and quota changes must fit', async (t) => {
  await createDomain('shrink.test', { limits: { maxQuota: { storageBytes: 1000 } } });
  t.equal((await create('ann@shrink.test', { quota: { storageBytes: 1000 } })).statusCode, 201);
  t.equal((await admin.patch('/v1/domains/shrink.test', { limits: { maxQuota: { storageBytes: 500 } } })).statusCode, 200);
  t.equal((await admin.get('/v1/mailboxes/ann@shrink.test')).json().quota.storageBytes, 1000, 'not cut down behind the customer’s back');
  const renamed = await provisioner.patch('/v1/mailboxes/ann@shrink.test', { displayName: 'Ann', protocols: { pop3: false } });
  t.equal(renamed.statusCode, 200, 'other fields can still change');
  assertProblem(t, await provisioner.patch('/v1/mailboxes/ann@shrink.test', { quota: { messages: 5 } }), 422, 'quota_above_domain_limit');
  const shrunk = await provisioner.patch('/v1/mailboxes/ann@shrink.test', { quota: { storageBytes: 400, messages: 5 } });
  t.equal(shrunk.statusCode, 200);
  t.strictSame(shrunk.json().quota, { storageBytes: 400, messages: 5 });
  const { items } = await auditEvents(admin, 'target=ann@shrink.test&action=mailbox.update');
  t.strictSame(items[0]!.before, { quota: { storageBytes: 1000, messages: null } });
  t.strictSame(items[0]!.after, { quota: { storageBytes: 400, messages: 5 } });
});
