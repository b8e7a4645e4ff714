import bcrypt from 'bcryptjs';
import t from 'tap';
import { buildTestApi } from '../helpers/api.js';
import { apiClient, type Caller, makeKey } from '../helpers/api-client.js';
import { assertProblem } from '../helpers/problem.js';

const api = await buildTestApi(t);
const client = apiClient(api.app);
const admin = client.as(api.admin);
const support = client.as((await makeKey(api.services, 'support', 'helpdesk')).headers);
// Importing a cheap hash keeps setting up 150 mailboxes fast; the password is beside the point here.
const passwordHash = bcrypt.hashSync('listing password', 4);

for (const name of ['list.test', 'punct.test', 'proto.test', 'bücher.example']) {
  const created = await admin.post('/v1/domains', { name });
  if (created.statusCode !== 201) throw new Error(`setup: ${created.body}`);
}

async function createMailbox(address: string, fields: object = {}): Promise<void> {
  const created = await admin.post('/v1/mailboxes', { address, passwordHash, ...fields });
  if (created.statusCode !== 201) throw new Error(`setup: mailbox ${address}: ${created.body}`);
}

const USERS = Array.from({ length: 120 }, (_, i) => `user${String(i).padStart(3, '0')}@list.test`);
// Made in a shuffled order, so the order listed is the API's, not the insertion order.
for (const address of [...USERS].sort((a, b) => (a.split('').reverse().join('') < b.split('').reverse().join('') ? -1 : 1))) {
  await createMailbox(address);
}

interface Walk {
  pages: string[][];
  cursors: (string | null)[];
}

/** Follows nextCursor from the first page to the last, collecting addresses page by page. */
async function walk(caller: Caller, query: string, onPage?: (index: number) => Promise<void>): Promise<Walk> {
  const pages: string[][] = [];
  const cursors: (string | null)[] = [];
  let cursor: string | null = null;
  do {
    const page = await caller.get(`/v1/mailboxes?${query}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`);
    if (page.statusCode !== 200) throw new Error(page.body);
    pages.push(page.json().items.map((m: { address: string }) => m.address));
    cursor = page.json().nextCursor;
    cursors.push(cursor);
    await onPage?.(pages.length);
  } while (cursor !== null && pages.length < 200);
  return { pages, cursors };
}

const all = async (query: string) => (await walk(support, `limit=500&${query}`)).pages.flat();

t.test('120 mailboxes page 50 at a time: each exactly once, in address order', async (t) => {
  const { pages, cursors } = await walk(support, 'domain=list.test&limit=50');
  t.strictSame(pages.map((p) => p.length), [50, 50, 20]);
  t.strictSame(pages.flat(), USERS, 'every mailbox once, in address order');
  t.equal(new Set(pages.flat()).size, 120);
  t.equal(cursors[2], null, 'null on the last page');
  t.ok(cursors.slice(0, 2).every((c) => typeof c === 'string' && c.length > 0), 'an opaque string before that');

  const first = await support.get('/v1/mailboxes?domain=list.test');
  t.strictSame(Object.keys(first.json()).sort(), ['items', 'nextCursor']);
  t.equal(first.json().items.length, 50, 'the default limit is 50');
  t.equal(first.json().nextCursor, cursors[0], 'the same cursor for the same page');

  const sevens = await walk(support, 'domain=list.test&limit=7');
  t.equal(sevens.pages.length, 18);
  t.strictSame(sevens.pages.flat(), USERS, 'any page size walks the same order');

  const exact = await support.get('/v1/mailboxes?domain=list.test&limit=120');
  t.equal(exact.json().items.length, 120);
  t.equal(exact.json().nextCursor, null, 'a page ending exactly at the last mailbox has no next page');
  const one = await support.get('/v1/mailboxes?domain=list.test&limit=500');
  t.equal(one.json().items.length, 120, 'limit=500 is allowed');

  // A list item is the same resource as GET answers.
  t.strictSame(exact.json().items[7], (await admin.get(`/v1/mailboxes/${USERS[7]}`)).json());
});

t.test('paging stays correct while mailboxes come and go between pages', async (t) => {
  const { pages } = await walk(support, 'domain=list.test&limit=50', async (index) => {
    if (index !== 1) return;
    // Before the cursor (not seen now), after it (seen once), and one deleted from a later page.
    await createMailbox('aaa@list.test');
    await createMailbox('user999@list.test');
    t.equal((await admin.delete('/v1/mailboxes/user100@list.test')).statusCode, 204);
  });
  const seen = pages.flat();
  t.strictSame(seen, [...USERS.filter((a) => a !== 'user100@list.test'), 'user999@list.test']);
  t.equal(new Set(seen).size, seen.length, 'nothing twice');
  t.strictSame((await all('domain=list.test')).slice(0, 2), ['aaa@list.test', 'user000@list.test'], 'a fresh walk sees the new one');
  await createMailbox('user100@list.test');
  t.equal((await admin.delete('/v1/mailboxes/aaa@list.test')).statusCode, 204);
  t.equal((await admin.delete('/v1/mailboxes/user999@list.test')).statusCode, 204);
});

t.test('addresses with punctuation page in one stable order, each once', async (t) => {
  const addresses = ['a.b', 'a-b', 'a_b', 'a+b', 'a%c', 'axb', 'abc', 'a', 'ab', 'a.c', "o'neil", 'z~', '0', '9.9', 'Mixed.Case'];
  for (const local of addresses) await createMailbox(`${local}@punct.test`);
  const reference = await all('domain=punct.test');
  t.strictSame([...reference].sort(), addresses.map((a) => `${a.toLowerCase()}@punct.test`).sort(), 'all of them, lowercased');
  for (const limit of [1, 2, 4]) {
    const { pages } = await walk(support, `domain=punct.test&limit=${limit}`);
    t.strictSame(pages.flat(), reference, `limit=${limit} walks the same order as one big page`);
  }
});

t.test('filter q: a case-insensitive prefix of the address, with % and _ taken literally', async (t) => {
  t.strictSame(await all('q=user11'), USERS.slice(110, 120));
  t.strictSame(await all('q=USER11'), USERS.slice(110, 120), 'case-insensitive');
  t.strictSame(await all('q=user1'), USERS.slice(100, 120));
  t.strictSame(await all(`q=${encodeURIComponent('user007@list')}`), ['user007@list.test']);
  t.strictSame(await all(`q=${encodeURIComponent('User007@LIST.test')}`), ['user007@list.test']);
  t.strictSame(await all('q=ser0'), [], 'a prefix, not a substring');
  t.strictSame(await all('q=a_'), ['a_b@punct.test'], '_ matches only itself');
  t.strictSame(await all(`q=${encodeURIComponent('a%')}`), ['a%c@punct.test'], '% matches only itself');
  t.strictSame(await all(`q=${encodeURIComponent('%')}`), []);
  t.strictSame(await all(`q=${encodeURIComponent('_')}`), []);
  t.strictSame(await all(`q=${encodeURIComponent('\\')}`), [], 'a backslash is literal too');
  t.strictSame(await all('q=a.'), ['a.b@punct.test', 'a.c@punct.test']);
  t.equal((await all('q=')).length, (await all('')).length, 'an empty q matches everything');

  const { pages } = await walk(support, 'q=user0&limit=30');
  t.strictSame(pages.map((p) => p.length), [30, 30, 30, 10], 'a filter pages like the whole list');
  t.strictSame(pages.flat(), USERS.slice(0, 100));
});

t.test('filters domain, status and protocol, alone and combined, with paging', async (t) => {
  await createMailbox('both@proto.test', { protocols: { imap: true, pop3: true } });
  await createMailbox('imap@proto.test', { protocols: { imap: true, pop3: false } });
  await createMailbox('pop3@proto.test', { protocols: { imap: false, pop3: true } });
  await createMailbox('none@proto.test', { protocols: { imap: false, pop3: false } });
  await createMailbox('held@proto.test', { status: 'suspended' });
  await createMailbox('ann@bücher.example');

  t.strictSame(await all('domain=proto.test'), ['both@proto.test', 'held@proto.test', 'imap@proto.test', 'none@proto.test', 'pop3@proto.test']);
  t.strictSame(await all('domain=proto.test&protocol=imap'), ['both@proto.test', 'held@proto.test', 'imap@proto.test']);
  t.strictSame(await all('domain=proto.test&protocol=pop3'), ['both@proto.test', 'held@proto.test', 'pop3@proto.test']);
  t.strictSame(await all('domain=proto.test&status=suspended'), ['held@proto.test']);
  t.strictSame(await all('status=suspended'), ['held@proto.test'], 'across domains');
  t.strictSame(await all('domain=proto.test&status=active&protocol=pop3'), ['both@proto.test', 'pop3@proto.test']);
  t.strictSame(await all('domain=proto.test&status=active&protocol=pop3&q=p'), ['pop3@proto.test']);
  t.strictSame(await all('domain=PROTO.test&q=none'), ['none@proto.test'], 'the domain filter is case-insensitive');
  t.strictSame(await all('domain=list.test&protocol=imap&q=user00'), USERS.slice(0, 10));
  t.strictSame(await all(`domain=${encodeURIComponent('bücher.example')}`), ['ann@xn--bcher-kva.example'], 'a Unicode domain filter');
  t.strictSame(await all('domain=xn--bcher-kva.example'), ['ann@xn--bcher-kva.example']);
  t.strictSame(await all('domain=punct.test&protocol=imap&status=suspended'), []);

  // Suspending and switching protocols moves mailboxes in and out of the filters at once.
  await admin.patch('/v1/mailboxes/user005@list.test', { status: 'suspended', protocols: { imap: false } });
  t.strictSame(await all('domain=list.test&status=suspended'), ['user005@list.test']);
  t.notOk((await all('domain=list.test&protocol=imap')).includes('user005@list.test'));
  t.ok((await all('domain=list.test&protocol=pop3')).includes('user005@list.test'));

  const { pages } = await walk(support, 'domain=proto.test&protocol=imap&limit=2');
  t.strictSame(pages, [['both@proto.test', 'held@proto.test'], ['imap@proto.test']], 'paging within filters');

  assertProblem(t, await support.get('/v1/mailboxes?domain=nowhere.test'), 404, 'domain_not_found');
  assertProblem(t, await support.get('/v1/mailboxes?domain=not_a_domain'), 422, 'invalid_domain');
});

t.test('bad limits, filters and cursors are refused', async (t) => {
  for (const query of ['limit=0', 'limit=501', 'limit=-1', 'limit=many', 'limit=2.5', 'status=deleted', 'protocol=smtp', 'protocol=IMAP', `q=${'a'.repeat(321)}`, `cursor=${'a'.repeat(513)}`, 'domain=']) {
    assertProblem(t, await support.get(`/v1/mailboxes?${query}`), 400, 'validation_failed');
  }
  for (const query of ['address=user001@list.test', 'sort=desc', 'offset=10']) {
    assertProblem(t, await support.get(`/v1/mailboxes?${query}`), 400, 'unknown_field');
  }
  const cursors = [
    'garbage',
    '!!!',
    Buffer.from('{"after":').toString('base64url'),
    Buffer.from(JSON.stringify({ after: 17 })).toString('base64url'),
    Buffer.from(JSON.stringify({ after: null })).toString('base64url'),
    Buffer.from(JSON.stringify({ position: 'user001@list.test' })).toString('base64url'),
    Buffer.from(JSON.stringify('user001@list.test')).toString('base64url'),
  ];
  for (const cursor of cursors) {
    const problem = assertProblem(t, await support.get(`/v1/mailboxes?cursor=${encodeURIComponent(cursor)}`), 422, 'invalid_cursor');
    t.equal(problem.field, 'cursor');
  }
});
