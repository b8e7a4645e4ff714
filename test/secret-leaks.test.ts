import t from 'tap';
import { buildTestApi, PASSWORD } from './helpers/api.js';
import { accountRow, apiClient, mailboxUrl } from './helpers/api-client.js';
import { checkForLeaksAtEnd, newLeaks, recordOutput } from './helpers/secrets.js';

// The leak check every test file gets through the helpers: it must flag a secret wherever the
// helpers record output. Each leak made here on purpose is taken with newLeaks(), so the file's
// own check at the end stays clean.

const OTHER_PASSWORD = 'a second passphrase for the leak check';

t.test('ordinary use of the API leaks nothing', async (t) => {
  const api = await buildTestApi(t);
  const client = apiClient(api.app).as(api.admin);
  t.equal((await client.post('/v1/domains', { name: 'leak.test' })).statusCode, 201);
  t.equal((await client.post('/v1/mailboxes', { address: 'ann@leak.test', password: PASSWORD })).statusCode, 201);
  t.equal((await client.put(`${mailboxUrl('ann@leak.test')}/password`, { password: OTHER_PASSWORD })).statusCode, 204);
  const key = await client.post('/v1/api-keys', { name: 'dashboard', role: 'support' });
  t.equal(key.statusCode, 201);
  t.equal((await client.get('/v1/mailboxes', { authorization: `Bearer ${key.json().token}` })).statusCode, 200);
  t.same(newLeaks(), [], 'no secret in any log line or response');
});

t.test('a secret logged by a route is flagged as an API log leak', async (t) => {
  const api = await buildTestApi(t);
  api.app.post('/careless', async (request) => {
    request.log.info({ body: request.body }, 'careless route');
    return {};
  });
  await api.services.domains.create({ name: 'leak.test' }, { id: 'test', name: 'test', domains: null });
  await api.services.mailboxes.create({ address: 'bob@leak.test', password: OTHER_PASSWORD }, { id: 'test', name: 'test', domains: null });
  await api.app.inject({ method: 'POST', url: '/careless', headers: api.admin, payload: { password: OTHER_PASSWORD } });
  const leaks = newLeaks();
  t.match(leaks, [{ source: 'API log', secret: /^a se…\(38 chars\)$/ }], 'the password given to the core, found in the log');
  t.notMatch(JSON.stringify(leaks), OTHER_PASSWORD, 'the report itself does not repeat the secret');
});

t.test('a response echoing a token is flagged', async (t) => {
  const api = await buildTestApi(t);
  const support = await api.keyFor('support');
  api.app.get('/echo', async (request) => ({ seen: request.headers.authorization }));
  await api.app.inject({ method: 'GET', url: '/echo', headers: support });
  await api.app.inject({ method: 'GET', url: '/echo', headers: api.admin });
  const sources = newLeaks().map((leak) => leak.source);
  t.same(sources, ['API response to GET /echo', 'API response to GET /echo'], 'the issued key and the bootstrap token');
});

t.test('stored hashes become secrets, audit events become output, when the database closes', async (t) => {
  const api = await buildTestApi(t);
  const actor = { id: 'test', name: 'test', domains: null };
  await api.services.domains.create({ name: 'leak.test' }, actor);
  await api.services.mailboxes.create({ address: 'cat@leak.test', password: PASSWORD }, actor);
  const { passwordHash } = (await accountRow(api.database, 'cat@leak.test'))!;
  recordOutput('a careless log line', `hash=${passwordHash}`);
  await api.services.audit.recordAfter(actor, { action: 'careless', targetType: 'mailbox', target: 'cat@leak.test', domain: 'leak.test', after: { passwordHash } });
  t.same(newLeaks(), [], 'a hash is not known as a secret before the database closes');
  await api.database.close();
  t.same(
    newLeaks().map((leak) => leak.source).sort(),
    ['a careless log line', 'audit event careless'],
    'both outputs flagged once the hashes were read',
  );
  t.same(newLeaks(), [], 'each leak is reported once');
});

t.test('the check at the end of a test throws with every leak', async (t) => {
  const teardowns: (() => unknown)[] = [];
  const fakeTest = { teardown: (fn: () => unknown) => teardowns.push(fn) };
  checkForLeaksAtEnd(fakeTest);
  checkForLeaksAtEnd(fakeTest);
  t.equal(teardowns.length, 1, 'registered once per test');
  recordOutput('a child process', `started with ${PASSWORD}`);
  t.throws(() => teardowns[0]!(), /secrets leaked: corr…\(28 chars\) in a child process/);
  t.doesNotThrow(() => teardowns[0]!(), 'and nothing is left for the next check');
});
