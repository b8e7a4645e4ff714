import t from 'tap';
import { buildTestApi } from '../helpers/api.js';
import { assertProblem } from '../helpers/problem.js';

const { app, admin } = await buildTestApi(t);
const STRONG = /^"[^"]+"$/;

let counter = 0;
/** A new domain and its current ETag. */
async function freshDomain(): Promise<{ url: string; etag: string }> {
  const name = `etag${++counter}.test`;
  const created = await app.inject({ method: 'POST', url: '/v1/domains', headers: admin, payload: { name } });
  if (created.statusCode !== 201) throw new Error(created.body);
  return { url: `/v1/domains/${name}`, etag: String(created.headers.etag) };
}

const read = (url: string) => app.inject({ method: 'GET', url, headers: admin });
const patch = (url: string, ifMatch: string | undefined, payload: object = { status: 'suspended' }) =>
  app.inject({ method: 'PATCH', url, headers: { ...admin, ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }) }, payload });

t.test('POST and GET give the same strong ETag; PATCH with it works and gives a new one', async (t) => {
  const { url, etag } = await freshDomain();
  t.match(etag, STRONG);
  const got = await read(url);
  t.equal(got.headers.etag, etag);

  const changed = await patch(url, etag);
  t.equal(changed.statusCode, 200);
  t.equal(changed.json().status, 'suspended');
  t.match(changed.headers.etag, STRONG);
  t.not(changed.headers.etag, etag, 'a change makes a new ETag');
  t.equal((await read(url)).headers.etag, changed.headers.etag, 'GET agrees with the PATCH answer');

  // A PATCH that changes nothing keeps the ETag.
  const same = await patch(url, String(changed.headers.etag));
  t.equal(same.statusCode, 200);
  t.equal(same.headers.etag, changed.headers.etag);
});

t.test('a stale ETag answers 412 revision_mismatch and changes nothing', async (t) => {
  const { url, etag } = await freshDomain();
  const first = await patch(url, etag, { limits: { maxMailboxes: 10 } });
  t.equal(first.statusCode, 200);
  const stale = await patch(url, etag, { limits: { maxMailboxes: 20 } });
  assertProblem(t, stale, 412, 'revision_mismatch');
  const now = await read(url);
  t.equal(now.json().limits.maxMailboxes, 10, 'the stale change was not applied');
  t.equal(now.headers.etag, first.headers.etag);
  const events = await app.inject({ method: 'GET', url: `/v1/audit-events?target=${url.split('/').pop()}`, headers: admin });
  t.same(
    events.json().items.map((e: { action: string }) => e.action),
    ['domain.update', 'domain.create'],
  );
});

t.test('If-Match: * matches any current revision; no If-Match means no check', async (t) => {
  const { url, etag } = await freshDomain();
  await patch(url, etag);
  t.equal((await patch(url, '*', { status: 'active' })).statusCode, 200);
  t.equal((await patch(url, ' * ', { status: 'suspended' })).statusCode, 200);
  t.equal((await patch(url, undefined, { status: 'active' })).statusCode, 200);
});

t.test('a weak tag never matches, even with the current revision', async (t) => {
  const { url, etag } = await freshDomain();
  assertProblem(t, await patch(url, `W/${etag}`), 412, 'revision_mismatch');
  assertProblem(t, await app.inject({ method: 'DELETE', url, headers: { ...admin, 'if-match': `W/${etag}` } }), 412, 'revision_mismatch');
  const now = await read(url);
  t.equal(now.json().status, 'active');
  t.equal(now.headers.etag, etag);
});

t.test('a list of tags matches when any of them does', async (t) => {
  const { url, etag } = await freshDomain();
  const changed = await patch(url, `"0.0", ${etag}, "9.9"`);
  t.equal(changed.statusCode, 200);
  t.equal((await patch(url, `${etag},${changed.headers.etag}`, { status: 'active' })).statusCode, 200, 'no spaces');
  const current = String((await read(url)).headers.etag);
  assertProblem(t, await patch(url, `"0.0", W/${current}, ${etag}`), 412, 'revision_mismatch');
  t.equal((await patch(url, `W/${current}, ${current}`)).statusCode, 200, 'the strong copy matches');
});

t.test('a malformed If-Match answers a problem and changes nothing', async (t) => {
  const { url, etag } = await freshDomain();
  for (const header of [etag.slice(1, -1), `${etag} garbage`, '"unterminated', '', ',', `${etag},`, 'W/', '**']) {
    const response = await patch(url, header);
    assertProblem(t, response, 422, 'invalid_if_match');
    t.equal(response.json().field, 'If-Match');
  }
  const now = await read(url);
  t.equal(now.json().status, 'active');
  t.equal(now.headers.etag, etag);
});

t.test('DELETE honours If-Match', async (t) => {
  const { url, etag } = await freshDomain();
  const changed = await patch(url, etag);
  assertProblem(t, await app.inject({ method: 'DELETE', url, headers: { ...admin, 'if-match': etag } }), 412, 'revision_mismatch');
  t.equal((await read(url)).statusCode, 200, 'still there');
  const deleted = await app.inject({ method: 'DELETE', url, headers: { ...admin, 'if-match': String(changed.headers.etag) } });
  t.equal(deleted.statusCode, 204);
  assertProblem(t, await read(url), 404, 'domain_not_found');
});

t.test('an ETag never comes back after delete and re-create', async (t) => {
  const { url, etag } = await freshDomain();
  t.equal((await app.inject({ method: 'DELETE', url, headers: admin })).statusCode, 204);
  const name = url.split('/').pop();
  const again = await app.inject({ method: 'POST', url: '/v1/domains', headers: admin, payload: { name } });
  t.equal(again.statusCode, 201);
  t.not(again.headers.etag, etag);
  assertProblem(t, await patch(url, etag), 412, 'revision_mismatch');
  t.equal((await read(url)).json().status, 'active');
});
