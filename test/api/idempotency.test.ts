import t, { type Test } from 'tap';
import { buildApp } from '../../src/api/app.js';
import { buildTestApi, PASSWORD } from '../helpers/api.js';
import { assertProblem, type Injected } from '../helpers/problem.js';

const api = await buildTestApi(t);
const { app, admin } = api;

/** How many audit events match: every mutation writes one, so this counts how often a change ran. */
async function auditCount(query: string): Promise<number> {
  const events = await app.inject({ method: 'GET', url: `/v1/audit-events?limit=500&${query}`, headers: admin });
  if (events.statusCode !== 200) throw new Error(events.body);
  return events.json().items.length;
}

const withKey = (key: string, headers: { authorization: string } = admin) => ({ ...headers, 'idempotency-key': key });

function assertReplay(t: Test, replay: Injected, first: Injected) {
  t.equal(replay.headers['idempotent-replayed'], 'true', 'marked as a replay');
  t.equal(replay.statusCode, first.statusCode, 'same status');
  t.equal(replay.body, first.body, 'same body');
  for (const header of ['content-type', 'etag', 'location']) {
    t.equal(replay.headers[header], first.headers[header], `same ${header}`);
  }
  t.not(replay.headers['x-request-id'], first.headers['x-request-id'], 'a request id of its own');
}

t.test('POST: a retry with the same key and body replays the first answer; the domain is made once', async (t) => {
  const body = { name: 'post.test', status: 'active', defaults: { pop3DeleteMode: 'hide', protocols: { imap: true, pop3: false } } };
  const reordered = { defaults: { protocols: { pop3: false, imap: true }, pop3DeleteMode: 'hide' }, status: 'active', name: 'post.test' };
  const first = await app.inject({ method: 'POST', url: '/v1/domains', headers: withKey('post-1'), payload: body });
  t.equal(first.statusCode, 201);
  t.equal(first.headers['idempotent-replayed'], undefined, 'the first answer is no replay');
  t.ok(first.headers.etag);
  t.equal(first.headers.location, '/v1/domains/post.test');

  assertReplay(t, await app.inject({ method: 'POST', url: '/v1/domains', headers: withKey('post-1'), payload: reordered }), first);
  assertReplay(t, await app.inject({ method: 'POST', url: '/v1/domains', headers: withKey('post-1'), payload: body }), first);
  t.equal(await auditCount('target=post.test&action=domain.create'), 1, 'created once');

  // Without the key the retry really runs again, and fails.
  assertProblem(t, await app.inject({ method: 'POST', url: '/v1/domains', headers: admin, payload: body }), 409, 'domain_exists');
});

t.test('PATCH: the replay repeats the stored answer and does not change the domain again', async (t) => {
  await app.inject({ method: 'POST', url: '/v1/domains', headers: admin, payload: { name: 'patch.test' } });
  const first = await app.inject({ method: 'PATCH', url: '/v1/domains/patch.test', headers: withKey('patch-1'), payload: { status: 'suspended' } });
  t.equal(first.statusCode, 200);
  t.equal(first.json().status, 'suspended');
  // Someone else changes it back in between.
  const other = await app.inject({ method: 'PATCH', url: '/v1/domains/patch.test', headers: admin, payload: { status: 'active' } });
  t.equal(other.statusCode, 200);

  assertReplay(t, await app.inject({ method: 'PATCH', url: '/v1/domains/patch.test', headers: withKey('patch-1'), payload: { status: 'suspended' } }), first);
  const now = await app.inject({ method: 'GET', url: '/v1/domains/patch.test', headers: admin });
  t.equal(now.json().status, 'active', 'the retry did not run the change again');
  t.equal(now.headers.etag, other.headers.etag);
  t.equal(await auditCount('target=patch.test&action=domain.update'), 2);
});

t.test('DELETE: a retry after success answers the same 204, not 404', async (t) => {
  await app.inject({ method: 'POST', url: '/v1/domains', headers: admin, payload: { name: 'delete.test' } });
  const first = await app.inject({ method: 'DELETE', url: '/v1/domains/delete.test', headers: withKey('delete-1') });
  t.equal(first.statusCode, 204);
  assertReplay(t, await app.inject({ method: 'DELETE', url: '/v1/domains/delete.test', headers: withKey('delete-1') }), first);
  assertProblem(t, await app.inject({ method: 'DELETE', url: '/v1/domains/delete.test', headers: admin }), 404, 'domain_not_found');
  t.equal(await auditCount('target=delete.test&action=domain.delete'), 1);
});

t.test('a body sent to a route that takes none is no part of the request, however deeply it nests', async (t) => {
  // Found by test/fuzz/api-inputs.test.ts: hashing such a body for the key overflowed the stack (500).
  await app.inject({ method: 'POST', url: '/v1/domains', headers: admin, payload: { name: 'deep.test' } });
  const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
  const headers = { ...withKey('deep-1'), 'content-type': 'application/json' };
  const first = await app.inject({ method: 'DELETE', url: '/v1/domains/deep.test', headers, payload: deep });
  t.equal(first.statusCode, 204, 'deleted');
  assertReplay(t, await app.inject({ method: 'DELETE', url: '/v1/domains/deep.test', headers, payload: '{"other":1}' }), first);
});

t.test('PUT password: set once, replayed after', async (t) => {
  await app.inject({ method: 'POST', url: '/v1/domains', headers: admin, payload: { name: 'put.test' } });
  const created = await app.inject({ method: 'POST', url: '/v1/mailboxes', headers: admin, payload: { address: 'ann@put.test', password: PASSWORD } });
  t.equal(created.statusCode, 201);
  const url = '/v1/mailboxes/ann@put.test/password';
  const payload = { password: `${PASSWORD} the second` };
  const first = await app.inject({ method: 'PUT', url, headers: withKey('put-1'), payload });
  t.equal(first.statusCode, 204);
  assertReplay(t, await app.inject({ method: 'PUT', url, headers: withKey('put-1'), payload }), first);
  assertReplay(t, await app.inject({ method: 'PUT', url, headers: withKey('put-1'), payload }), first);
  t.equal(await auditCount('target=ann@put.test&action=mailbox.password.set'), 1, 'the password was set once');
});

t.test('the same key with another request answers 422 idempotency_key_reused and changes nothing', async (t) => {
  const first = await app.inject({ method: 'POST', url: '/v1/domains', headers: withKey('reuse-1'), payload: { name: 'reuse.test' } });
  t.equal(first.statusCode, 201);
  const others = [
    { method: 'POST', url: '/v1/domains', payload: { name: 'reuse-other.test' } },
    { method: 'POST', url: '/v1/domains', payload: { name: 'reuse.test', status: 'suspended' } },
    { method: 'PATCH', url: '/v1/domains/reuse.test', payload: { status: 'suspended' } },
    { method: 'DELETE', url: '/v1/domains/reuse.test' },
  ] as const;
  for (const request of others) {
    assertProblem(t, await app.inject({ ...request, headers: withKey('reuse-1') }), 422, 'idempotency_key_reused');
  }
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/domains/reuse-other.test', headers: admin }), 404, 'domain_not_found');
  const domain = await app.inject({ method: 'GET', url: '/v1/domains/reuse.test', headers: admin });
  t.equal(domain.json().status, 'active');
  t.equal(await auditCount('target=reuse.test'), 1);
  // The original request still replays.
  assertReplay(t, await app.inject({ method: 'POST', url: '/v1/domains', headers: withKey('reuse-1'), payload: { name: 'reuse.test' } }), first);
});

t.test('keys belong to one API key: another caller may use the same string independently', async (t) => {
  const provisioner = await api.keyFor('provisioner');
  const mine = await app.inject({ method: 'POST', url: '/v1/domains', headers: withKey('shared'), payload: { name: 'mine.test' } });
  t.equal(mine.statusCode, 201);
  // Another body under the same string: no reuse conflict for the other caller.
  const theirs = await app.inject({ method: 'POST', url: '/v1/domains', headers: withKey('shared', provisioner), payload: { name: 'theirs.test' } });
  t.equal(theirs.statusCode, 201);
  t.equal(theirs.headers['idempotent-replayed'], undefined);
  // The very same request: it runs for the other caller instead of replaying my answer.
  const same = await app.inject({ method: 'POST', url: '/v1/domains', headers: withKey('shared-2', provisioner), payload: { name: 'mine.test' } });
  assertProblem(t, same, 409, 'domain_exists');
  const again = await app.inject({ method: 'POST', url: '/v1/domains', headers: withKey('shared'), payload: { name: 'mine.test' } });
  assertReplay(t, again, mine);
  assertReplay(t, await app.inject({ method: 'POST', url: '/v1/domains', headers: withKey('shared', provisioner), payload: { name: 'theirs.test' } }), theirs);
});

t.test('an invalid Idempotency-Key answers 400 invalid_idempotency_key before anything runs', async (t) => {
  for (const key of ['', ' ', 'a'.repeat(256), 'clé', 'two words', 'tab\there']) {
    const response = await app.inject({ method: 'POST', url: '/v1/domains', headers: withKey(key), payload: { name: 'invalid-key.test' } });
    assertProblem(t, response, 400, 'invalid_idempotency_key');
  }
  assertProblem(t, await app.inject({ method: 'GET', url: '/v1/domains/invalid-key.test', headers: admin }), 404, 'domain_not_found');
  const longest = await app.inject({ method: 'POST', url: '/v1/domains', headers: withKey('k'.repeat(255)), payload: { name: 'longest-key.test' } });
  t.equal(longest.statusCode, 201, '255 visible ASCII characters are fine');
  const odd = await app.inject({ method: 'POST', url: '/v1/domains', headers: withKey('!#$%&\'*+-.^_`|~:/?[]{}'), payload: { name: 'odd-key.test' } });
  t.equal(odd.statusCode, 201, 'any visible ASCII is fine');
  // Reads ignore the header.
  t.equal((await app.inject({ method: 'GET', url: '/v1/domains', headers: withKey('') })).statusCode, 200);
});

t.test('a 4xx answer is replayed too, even once the request would succeed', async (t) => {
  const patch = { method: 'PATCH', url: '/v1/domains/later.test', payload: { status: 'suspended' } } as const;
  const first = await app.inject({ ...patch, headers: withKey('4xx-1') });
  assertProblem(t, first, 404, 'domain_not_found');
  await app.inject({ method: 'POST', url: '/v1/domains', headers: admin, payload: { name: 'later.test' } });
  const replay = await app.inject({ ...patch, headers: withKey('4xx-1') });
  assertReplay(t, replay, first);
  t.equal(replay.json().requestId, first.json().requestId, 'the stored problem, verbatim');
  t.equal((await app.inject({ method: 'GET', url: '/v1/domains/later.test', headers: admin })).json().status, 'active');
});

t.test('a request refused by validation is not remembered, so the corrected retry runs', async (t) => {
  const invalid = await app.inject({ method: 'POST', url: '/v1/domains', headers: withKey('fix-1'), payload: { name: 'fixed.test', color: 'red' } });
  assertProblem(t, invalid, 400, 'unknown_field');
  const fixed = await app.inject({ method: 'POST', url: '/v1/domains', headers: withKey('fix-1'), payload: { name: 'fixed.test' } });
  t.equal(fixed.statusCode, 201);
  t.equal(fixed.headers['idempotent-replayed'], undefined);
});

t.test('a 5xx answer is forgotten, so the retry runs again', async (t) => {
  const flaky = await buildApp({ services: api.services, bodyLimit: 1024 });
  t.teardown(() => flaky.close());
  let calls = 0;
  flaky.post('/v1/flaky', { config: { roles: ['admin'] } }, async () => {
    calls += 1;
    if (calls === 1) throw new Error('transient');
    return { calls };
  });
  const request = { method: 'POST', url: '/v1/flaky', headers: withKey('flaky-1'), payload: { x: 1 } } as const;
  assertProblem(t, await flaky.inject(request), 500, 'internal_error');
  const second = await flaky.inject(request);
  t.equal(second.statusCode, 200);
  t.same(second.json(), { calls: 2 }, 'the retry ran');
  const third = await flaky.inject(request);
  assertReplay(t, third, second);
  t.equal(calls, 2, 'the success is replayed, not run again');
});

t.test('concurrent requests with one key: exactly one runs', async (t) => {
  for (let round = 0; round < 5; round++) {
    const name = `race${round}.test`;
    const responses = await Promise.all(
      [0, 1, 2].map(() => app.inject({ method: 'POST', url: '/v1/domains', headers: withKey(`race-${round}`), payload: { name } })),
    );
    const ran = responses.filter((r) => r.statusCode === 201 && r.headers['idempotent-replayed'] === undefined);
    t.equal(ran.length, 1, `round ${round}: one request ran`);
    for (const response of responses) {
      if (response === ran[0]) continue;
      if (response.statusCode === 409) {
        assertProblem(t, response, 409, 'idempotency_request_in_progress');
      } else {
        assertReplay(t, response, ran[0]!);
      }
    }
    t.equal(await auditCount(`target=${name}`), 1, `round ${round}: created once`);
  }
});
