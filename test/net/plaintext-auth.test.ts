import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { serve } from '../../src/imap/server.js';
import { type ImapContext, ImapSession } from '../../src/imap/session.js';
import { Connection } from '../../src/net/connection.js';
import { MAX_LINE, type Pop3Context, Pop3Session } from '../../src/pop3/session.js';
import { gatewayFixture } from '../helpers/gateway.js';
import { startTestImap } from '../helpers/imap.js';
import { LineClient, run } from '../helpers/line-client.js';
import { PASSWORD, startTestPop3 } from '../helpers/pop3.js';

// The doors' sessions on a Unix socket: a client the server cannot place on loopback, as one
// from another host would be (test servers listen on 127.0.0.1 only).
const fixture = await gatewayFixture(t);
const imap = await startTestImap(t, { fixture });
const pop3 = await startTestPop3(t, { fixture });
await fixture.mailbox('ann@plaintext.test');
await fixture.mailbox('bob@plaintext.test');
const dir = await mkdtemp(join(tmpdir(), 'mailroom-plaintext-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));

async function remoteDoor(name: string, onSocket: (socket: Socket) => void): Promise<string> {
  const path = join(dir, name);
  const server = createServer(onSocket);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return path;
}

const imapDoor = (context: ImapContext) => (socket: Socket) =>
  void serve(new ImapSession(new Connection(socket, context.limits.maxLineLength), context));
const pop3Door = (context: Pop3Context) => (socket: Socket) => void new Pop3Session(new Connection(socket, MAX_LINE), context).run();

async function greeted(path: string): Promise<LineClient> {
  const client = await LineClient.connect(path);
  t.teardown(() => client.close());
  await client.readLine();
  return client;
}

t.test('IMAP from another host without TLS: LOGINDISABLED, no password taken until STARTTLS', async (t) => {
  const client = await greeted(await remoteDoor('imap', imapDoor(imap.context)));
  const [capabilities] = await run(client, 'a CAPABILITY');
  t.match(capabilities, /LOGINDISABLED/);
  t.notMatch(capabilities, /AUTH=PLAIN/);
  t.match((await run(client, `b LOGIN ann@plaintext.test "${PASSWORD}"`)).at(-1), /^b NO \[PRIVACYREQUIRED\]/);
  t.match((await run(client, 'c AUTHENTICATE PLAIN')).at(-1), /^c NO \[PRIVACYREQUIRED\]/);
  t.match((await run(client, 'd STARTTLS')).at(-1), /^d OK/);
  await client.startTls();
  t.match((await run(client, 'e CAPABILITY'))[0], /AUTH=PLAIN/);
  t.match((await run(client, `f LOGIN ann@plaintext.test "${PASSWORD}"`)).at(-1), /^f OK/);
});

t.test('IMAP with MAILROOM_ALLOW_PLAINTEXT_AUTH: a password is taken in the clear', async (t) => {
  const context = { ...imap.context, limits: { ...imap.context.limits, allowPlaintextAuth: true } };
  const client = await greeted(await remoteDoor('imap-allowed', imapDoor(context)));
  t.match((await run(client, `a LOGIN ann@plaintext.test "${PASSWORD}"`)).at(-1), /^a OK/);
});

t.test('POP3 from another host without TLS: no USER or SASL offered, credentials refused until STLS', async (t) => {
  const client = await greeted(await remoteDoor('pop3', pop3Door(pop3.context)));
  client.send('CAPA\r\n');
  const capabilities = await client.readMultiline();
  t.notOk(capabilities.includes('USER'));
  t.notOk(capabilities.some((line) => line.startsWith('SASL')));
  t.ok(capabilities.includes('STLS'));
  const refused = '-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections';
  t.equal(await client.command('USER ann@plaintext.test'), refused);
  t.equal(await client.command(`PASS ${PASSWORD}`), refused);
  t.equal(await client.command('AUTH PLAIN'), refused, 'no SASL exchange starts either');
  t.match(await client.command('STLS'), /^\+OK/);
  await client.startTls();
  t.match(await client.command('USER ann@plaintext.test'), /^\+OK/);
  t.match(await client.command(`PASS ${PASSWORD}`), /^\+OK Logged in/);
});

t.test('POP3 with MAILROOM_ALLOW_PLAINTEXT_AUTH: USER and PASS work in the clear', async (t) => {
  const client = await greeted(await remoteDoor('pop3-allowed', pop3Door({ ...pop3.context, allowPlaintextAuth: true })));
  // Not ann: her maildrop is still held by the session above.
  t.match(await client.command('USER bob@plaintext.test'), /^\+OK/);
  t.match(await client.command(`PASS ${PASSWORD}`), /^\+OK Logged in/);
});
