import t from 'tap';
import { LineClient } from '../helpers/line-client.js';
import { PASSWORD, startTestPop3 } from '../helpers/pop3.js';
import { REFUSED_TLS11, tls11Handshake, toldToStartTls } from '../helpers/tls.js';

const pop3 = await startTestPop3(t);
await pop3.mailbox('ann@stls.test');
await pop3.mailbox('bob@stls.test');

async function greeted(port: number, options: { tls?: boolean } = {}): Promise<LineClient> {
  const client = await LineClient.connect(port, options);
  t.teardown(() => client.close());
  if (!(await client.readLine())?.startsWith('+OK')) throw new Error('no greeting');
  return client;
}

t.test('commands pipelined after STLS are dropped, never run over TLS', async (t) => {
  const client = await greeted(pop3.port);
  client.send(`STLS\r\nUSER ann@stls.test\r\nPASS ${PASSWORD}\r\nSTAT\r\n`);
  t.equal(await client.readLine(), '+OK Begin TLS negotiation');
  await client.startTls();
  t.equal(await client.command(`PASS ${PASSWORD}`), '-ERR Send USER first', 'the injected USER was not kept');
  t.equal(await client.command('STAT'), '-ERR STAT is not allowed now', 'nor did the injected PASS log in');
  t.match(await client.command('USER ann@stls.test'), /^\+OK/);
  t.match(await client.command(`PASS ${PASSWORD}`), /^\+OK Logged in/);
});

t.test('a USER given before STLS is forgotten', async (t) => {
  const client = await greeted(pop3.port);
  t.match(await client.command('USER ann@stls.test'), /^\+OK/);
  t.match(await client.command('STLS'), /^\+OK/);
  await client.startTls();
  t.equal(await client.command(`PASS ${PASSWORD}`), '-ERR Send USER first');
});

t.test('a command sent in plain text after the +OK breaks the handshake: the connection ends unanswered', async (t) => {
  const client = await greeted(pop3.port);
  t.match(await client.command('STLS'), /^\+OK/);
  client.send('CAPA\r\n');
  t.equal(await client.readLine(), null);
});

t.test('STLS twice, on POP3S, or after login is refused', async (t) => {
  const upgraded = await greeted(pop3.port);
  await upgraded.command('STLS');
  await upgraded.startTls();
  t.equal(await upgraded.command('STLS'), '-ERR TLS is already active');
  t.match(await upgraded.command('USER ann@stls.test'), /^\+OK/, 'the session goes on');

  const implicit = await greeted(pop3.securePort, { tls: true });
  t.equal(await implicit.command('STLS'), '-ERR TLS is already active');

  const plain = await greeted(pop3.port);
  await plain.command('USER bob@stls.test');
  t.match(await plain.command(`PASS ${PASSWORD}`), /^\+OK/);
  t.equal(await plain.command('STLS'), '-ERR STLS is not allowed now');
});

t.test('TLS 1.1 is refused on POP3S and after STLS; TLS 1.2 is taken', async (t) => {
  t.equal(await tls11Handshake(pop3.securePort), REFUSED_TLS11);
  const plain = await toldToStartTls(pop3.port, 'STLS');
  t.teardown(() => plain.destroy());
  t.equal(await tls11Handshake(pop3.port, plain), REFUSED_TLS11);
  const modern = await greeted(pop3.securePort, { tls: true });
  t.match(await modern.command('CAPA'), /^\+OK/);
});
