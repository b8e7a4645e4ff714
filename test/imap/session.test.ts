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
