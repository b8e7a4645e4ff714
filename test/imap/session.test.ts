import t from 'tap';
import { LineClient, run } from '../helpers/line-client.js';
import { PASSWORD, startTestImap } from '../helpers/imap.js';

const imap = await startTestImap(t);
await imap.mailbox('ann@imap.test');

async function connect(): Promise<LineClient> {
  const client = await LineClient.connect(imap.port);
  t.teardown(() => client.close());
  const greeting = await client.readLine();
  if (!greeting?.startsWith('* OK')) throw new Error(`greeting: ${greeting}`);
  return client;
}

t.test('greeting, CAPABILITY, LOGIN, SELECT, LOGOUT', async (t) => {
  const client = await connect();
  const capability = await run(client, 'a1 CAPABILITY');
  t.match(capability[0], /^\* CAPABILITY IMAP4rev1 .*STARTTLS.*AUTH=PLAIN/);
  t.equal(capability[1], 'a1 OK CAPABILITY completed');
  t.match((await run(client, `a2 LOGIN ann@imap.test "${PASSWORD}"`)).at(-1), /^a2 OK \[CAPABILITY .*MOVE.*\] Logged in/);
  const selected = await run(client, 'a3 SELECT inbox');
  t.ok(selected.includes('* 0 EXISTS'));
  t.ok(selected.some((l) => /^\* OK \[UIDVALIDITY \d+\]/.test(l)));
  t.match(selected.at(-1), /^a3 OK \[READ-WRITE\]/);
  const logout = await run(client, 'a4 LOGOUT');
  t.same(logout, ['* BYE Logging out', 'a4 OK LOGOUT completed']);
  t.equal(await client.readLine(), null);
});

t.test('bad input: BAD with the tag, and the session goes on', async (t) => {
  const client = await connect();
  t.match((await run(client, 'b1 FROBNICATE')).at(-1), /^b1 BAD Unknown command/);
  t.match((await run(client, 'b2 SELECT INBOX')).at(-1), /^b2 BAD SELECT is not allowed before login/);
  t.match((await run(client, 'b3 LOGIN "unterminated')).at(-1), /^b3 BAD/);
  t.match((await run(client, `b4 LOGIN ann@imap.test wrong`)).at(-1), /^b4 NO \[AUTHENTICATIONFAILED\]/);
  t.match((await run(client, 'b5 NOOP')).at(-1), /^b5 OK/);
});

t.test('a literal password, synchronising and LITERAL+', async (t) => {
  const client = await connect();
  client.send(`c1 LOGIN ann@imap.test {${PASSWORD.length}}\r\n`);
  t.match(await client.readLine(), /^\+ /);
  client.send(`${PASSWORD}\r\n`);
  t.match(await client.readLine(), /^c1 OK/);
  const other = await connect();
  t.match((await run(other, `c2 LOGIN {14+}\r\nann@imap.test "${PASSWORD}"`)).at(-1), /^c2 OK/);
});

t.test('a session whose selected folder another session deletes is told BYE', async (t) => {
  const first = await connect();
  const second = await connect();
  await run(first, `d1 LOGIN ann@imap.test "${PASSWORD}"`);
  await run(second, `d2 LOGIN ann@imap.test "${PASSWORD}"`);
  t.match((await run(first, 'd3 CREATE Doomed')).at(-1), /^d3 OK/);
  t.match((await run(first, 'd4 SELECT Doomed')).at(-1), /^d4 OK/);
  t.match((await run(second, 'd5 DELETE Doomed')).at(-1), /^d5 OK/);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const answer = await run(first, 'd6 NOOP');
  t.match(answer[0], /^\* BYE .*deleted/);
  t.equal(await first.readLine(), null, 'and the connection is closed');
});

t.test('connections per mailbox and address: NO [LIMIT] past the limit, on every gateway together', async (t) => {
  const limited = await startTestImap(t, { url: imap.url, limits: { maxConnectionsPerMailbox: 2 } });
  const address = 'busy@imap.test';
  await limited.mailbox(address);
  await limited.mailbox('calm@imap.test');
  const open = async (server = limited) => {
    const client = await LineClient.connect(server.port);
    t.teardown(() => client.close());
    await client.readLine();
    return client;
  };
  const plain = Buffer.from(`\0${address}\0${PASSWORD}`).toString('base64');
  const first = await open();
  t.match((await run(first, `a1 LOGIN ${address} "${PASSWORD}"`)).at(-1), /^a1 OK/);
  const second = await open();
  t.match((await run(second, `a2 AUTHENTICATE PLAIN ${plain}`)).at(-1), /^a2 OK/);
  const third = await open();
  for (const attempt of [1, 2, 3]) {
    t.same(await run(third, `b${attempt} LOGIN ${address} "${PASSWORD}"`), [
      `b${attempt} NO [LIMIT] This mailbox has 2 connections open from your address already; close some first`,
    ]);
  }
  t.match(await run(third, `b4 AUTHENTICATE PLAIN ${plain}`), [/^b4 NO \[LIMIT\]/]);
  t.match((await run(third, 'b5 SELECT INBOX')).at(-1), /^b5 BAD SELECT is not allowed before login/, 'still not logged in');
  t.match((await run(third, `b6 LOGIN calm@imap.test "${PASSWORD}"`)).at(-1), /^b6 OK/, 'refusals are not failed logins; another mailbox is free');
  if (imap.url !== null) {
    // Another gateway on the same database counts the sessions this one holds.
    const other = await startTestImap(t, { url: imap.url, limits: { maxConnectionsPerMailbox: 2 } });
    t.match(await run(await open(other), `c1 LOGIN ${address} "${PASSWORD}"`), [/^c1 NO \[LIMIT\]/]);
  }
  await run(first, 'a3 LOGOUT');
  // The place is given back once the session has left the registry.
  const fourth = await open();
  let answer: string[] = [];
  for (let i = 0; i < 20 && !answer.at(-1)?.startsWith('d1 OK'); i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    answer = await run(fourth, `d1 LOGIN ${address} "${PASSWORD}"`);
  }
  t.match(answer.at(-1), /^d1 OK/);
});
