import t from 'tap';
import { LineClient, run } from '../helpers/line-client.js';
import { PASSWORD, startTestImap } from '../helpers/imap.js';
import { REFUSED_TLS11, tls11Handshake, toldToStartTls } from '../helpers/tls.js';

const imap = await startTestImap(t);
await imap.mailbox('ann@tls.test');

async function greeted(port: number, options: { tls?: boolean } = {}): Promise<LineClient> {
  const client = await LineClient.connect(port, options);
  t.teardown(() => client.close());
  if (!(await client.readLine())?.startsWith('* OK')) throw new Error('no greeting');
  return client;
}

t.test('commands pipelined after STARTTLS are dropped, never run over TLS', async (t) => {
  const client = await greeted(imap.port);
  client.send(`a STARTTLS\r\nb LOGIN ann@tls.test "${PASSWORD}"\r\nx CAPABILITY\r\n`);
  t.equal(await client.readLine(), 'a OK Begin TLS negotiation now');
  await client.startTls();
  const capability = await run(client, 'c CAPABILITY');
  t.equal(capability.length, 2, 'only the answer to c: b and x were never answered');
  t.match(capability[0], /^\* CAPABILITY .*AUTH=PLAIN/);
  t.notMatch(capability[0], /STARTTLS/, 'STARTTLS is no longer offered');
  t.match((await run(client, 'd SELECT INBOX')).at(-1), /^d BAD SELECT is not allowed before login/, 'the injected LOGIN did not log in');
  t.match((await run(client, `e LOGIN ann@tls.test "${PASSWORD}"`)).at(-1), /^e OK/);
});

t.test('a command sent in plain text after the OK breaks the handshake: the connection ends unanswered', async (t) => {
  const client = await greeted(imap.port);
  t.same(await run(client, 'a STARTTLS'), ['a OK Begin TLS negotiation now']);
  client.send('b CAPABILITY\r\n');
  t.equal(await client.readLine(), null);
});

t.test('STARTTLS twice, on IMAPS, or after login is refused', async (t) => {
  const upgraded = await greeted(imap.port);
  await run(upgraded, 'a STARTTLS');
  await upgraded.startTls();
  t.same(await run(upgraded, 'b STARTTLS'), ['b BAD TLS is already active']);
  t.match((await run(upgraded, 'c NOOP')).at(-1), /^c OK/, 'the session goes on');

  const implicit = await greeted(imap.securePort, { tls: true });
  t.same(await run(implicit, 'a STARTTLS'), ['a BAD TLS is already active']);

  const plain = await imap.login('ann@tls.test');
  t.match((await run(plain, 'a STARTTLS')).at(-1), /^a BAD STARTTLS is not allowed now/);
});

t.test('TLS 1.1 is refused on IMAPS and after STARTTLS; TLS 1.2 is taken', async (t) => {
  t.equal(await tls11Handshake(imap.securePort), REFUSED_TLS11);
  const plain = await toldToStartTls(imap.port, 'a STARTTLS');
  t.teardown(() => plain.destroy());
  t.equal(await tls11Handshake(imap.port, plain), REFUSED_TLS11);
  const modern = await greeted(imap.securePort, { tls: true });
  t.match((await run(modern, 'a NOOP')).at(-1), /^a OK/);
});
