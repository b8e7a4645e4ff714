import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { drip, lastWords, LineClient, run } from '../helpers/line-client.js';
import { startTestImap } from '../helpers/imap.js';
import { handshakeCutOff } from '../helpers/tls.js';

// Short login timeout: nobody there logs in. Short line timeout: everybody there logs in first.
const unauthenticated = await startTestImap(t, { limits: { loginTimeoutMs: 400 } });
const slowLines = await startTestImap(t, { limits: { lineTimeoutMs: 400 } });
await slowLines.mailbox('ann@slow.test');
const patient = await startTestImap(t, { limits: { loginTimeoutMs: 3000 } });
await patient.mailbox('bob@patient.test');

async function greeted(port: number): Promise<LineClient> {
  const client = await LineClient.connect(port);
  t.teardown(() => client.close());
  await client.readLine();
  return client;
}

t.test('a client that does not log in is let go after the login timeout, however busy it keeps the connection', async (t) => {
  const silent = await greeted(unauthenticated.port);
  t.same(await lastWords(silent), ['* BYE Login timeout']);

  const busy = await greeted(unauthenticated.port);
  const stop = drip(busy, 'a NOOP\r\n');
  const words = await lastWords(busy);
  stop();
  t.ok(words.some((line) => line.startsWith('a OK')), 'its commands were answered meanwhile');
  t.equal(words.at(-1), '* BYE Login timeout');
});

t.test('an unfinished TLS handshake ends at the login timeout: on IMAPS and after STARTTLS', async (t) => {
  t.ok(await handshakeCutOff(unauthenticated.securePort), 'IMAPS');
  t.ok(await handshakeCutOff(unauthenticated.port, 'a STARTTLS'), 'STARTTLS');
});

t.test('a logged-in session is past the login timeout', async (t) => {
  const client = await patient.login('bob@patient.test');
  await sleep(3500);
  t.match((await run(client, 'a NOOP')).at(-1), /^a OK/);
});

t.test('a command line dripped byte by byte is cut off at the line timeout', async (t) => {
  const client = await slowLines.login('ann@slow.test');
  client.send('a NOO');
  const stop = drip(client, 'O');
  const words = await lastWords(client);
  stop();
  t.same(words, ['* BYE Command line took too long to arrive']);
});

t.test('a line over the limit is dropped as it comes: answered BAD when it ends, cut off if it never does', async (t) => {
  const client = await patient.login('bob@patient.test');
  // Four times the 256 KiB the connection holds before it stops reading: all of it is read and dropped.
  client.send(`a ${'x'.repeat(1024 * 1024)}`);
  client.send('\r\nb NOOP\r\n');
  t.equal(await client.readLine(), '* BAD Command line too long');
  t.match(await client.readLine(), /^b OK/, 'the session goes on');

  const endless = await slowLines.login('ann@slow.test');
  endless.send(`a ${'x'.repeat(1024 * 1024)}`);
  t.same(await lastWords(endless), ['* BYE Command line took too long to arrive']);
});
