import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { drip, lastWords, LineClient } from '../helpers/line-client.js';
import { PASSWORD, startTestPop3 } from '../helpers/pop3.js';
import { handshakeCutOff } from '../helpers/tls.js';

// Short login timeout: nobody there logs in. Short line timeout: everybody there logs in first.
const unauthenticated = await startTestPop3(t, { loginTimeoutMs: 400 });
const slowLines = await startTestPop3(t, { lineTimeoutMs: 400 });
const patient = await startTestPop3(t, { loginTimeoutMs: 3000 });
for (const address of ['ann@slow.test', 'bob@slow.test']) await slowLines.mailbox(address);
await patient.mailbox('cy@patient.test');

async function greeted(port: number): Promise<LineClient> {
  const client = await LineClient.connect(port);
  t.teardown(() => client.close());
  await client.readLine();
  return client;
}

async function loggedIn(port: number, address: string): Promise<LineClient> {
  const client = await greeted(port);
  await client.command(`USER ${address}`);
  const answer = await client.command(`PASS ${PASSWORD}`);
  if (!answer?.startsWith('+OK')) throw new Error(`login: ${answer}`);
  return client;
}

t.test('a client that does not log in is let go after the login timeout, however busy it keeps the connection', async (t) => {
  const silent = await greeted(unauthenticated.port);
  t.same(await lastWords(silent), ['-ERR Login timeout, closing']);

  const busy = await greeted(unauthenticated.port);
  const stop = drip(busy, 'USER someone@else.test\r\n');
  const words = await lastWords(busy);
  stop();
  t.ok(words.some((line) => line.startsWith('+OK')), 'its commands were answered meanwhile');
  t.equal(words.at(-1), '-ERR Login timeout, closing');
});

t.test('an unfinished TLS handshake ends at the login timeout: on POP3S and after STLS', async (t) => {
  t.ok(await handshakeCutOff(unauthenticated.securePort), 'POP3S');
  t.ok(await handshakeCutOff(unauthenticated.port, 'STLS'), 'STLS');
});

t.test('a logged-in session is past the login timeout', async (t) => {
  const client = await loggedIn(patient.port, 'cy@patient.test');
  await sleep(3500);
  t.match(await client.command('STAT'), /^\+OK/);
  await client.command('QUIT');
});

t.test('a command line dripped byte by byte is cut off at the line timeout', async (t) => {
  const client = await loggedIn(slowLines.port, 'ann@slow.test');
  client.send('STA');
  const stop = drip(client, 'T');
  const words = await lastWords(client);
  stop();
  t.same(words, ['-ERR Command line took too long to arrive, closing']);
});

t.test('a line over the limit is dropped as it comes: -ERR when it ends, cut off if it never does', async (t) => {
  const client = await loggedIn(patient.port, 'cy@patient.test');
  // Far more than the connection holds before it stops reading: all of it is read and dropped.
  client.send(`STAT ${'x'.repeat(1024 * 1024)}`);
  client.send('\r\nNOOP\r\n');
  t.equal(await client.readLine(), '-ERR Command line too long');
  t.match(await client.readLine(), /^\+OK/, 'the session goes on');

  const endless = await loggedIn(slowLines.port, 'bob@slow.test');
  endless.send(`STAT ${'x'.repeat(1024 * 1024)}`);
  t.same(await lastWords(endless), ['-ERR Command line took too long to arrive, closing']);
});
