import { connect } from 'node:net';
import { eq } from 'drizzle-orm';
import t, { type Test } from 'tap';
import { accounts, blobs, messages } from '../src/db/schema/index.js';
import { openStoppedServerDatabase } from './helpers/database.js';
import { LineClient, run } from './helpers/line-client.js';
import { mailPorts, type ServerProcess, startServer } from './helpers/server.js';
import { dotStuff, RawLmtp } from './lmtp/clients.js';

const ADMIN = 'shutdown-test-admin-token';
const PASSWORD = 'correct horse battery staple';
const ADDRESS = 'ann@shutdown.test';

async function serverWithMailbox(t: Test, env: Record<string, string> = {}) {
  const ports = await mailPorts();
  const server = await startServer(t, { MAILROOM_ADMIN_TOKEN: ADMIN, ...ports, ...env });
  for (const [path, body] of [
    ['/v1/domains', { name: 'shutdown.test' }],
    ['/v1/mailboxes', { address: ADDRESS, password: PASSWORD }],
  ] as const) {
    const response = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (response.status !== 201) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  }
  return { server, ports: Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, Number(v)])) };
}

/** An LMTP transaction past DATA, its message half sent: a delivery in flight. */
async function deliveryInFlight(port: number, subject: string) {
  const lmtp = await RawLmtp.open(port);
  await lmtp.command('LHLO mta.test');
  await lmtp.command('MAIL FROM:<mta@example.net>');
  await lmtp.command(`RCPT TO:<${ADDRESS}>`);
  const data = await lmtp.command('DATA');
  if (!data.startsWith('354')) throw new Error(`DATA answered ${data}`);
  lmtp.write(`Subject: ${subject}\r\n`);
  return lmtp;
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

async function exitCode(server: ServerProcess): Promise<number | null> {
  await server.exited;
  return server.child.exitCode;
}

t.test('SIGTERM: listeners stop, IMAP says BYE, POP3 -ERR, the delivery in flight is stored, exit 0', async (t) => {
  const { server, ports } = await serverWithMailbox(t, { MAILROOM_SHUTDOWN_TIMEOUT: '60' });
  const imap = await LineClient.connect(ports.MAILROOM_IMAP_PORT!);
  t.teardown(() => imap.close());
  await imap.readLine();
  t.match((await run(imap, `a LOGIN ${ADDRESS} "${PASSWORD}"`)).at(-1), /^a OK/);
  t.match((await run(imap, 'b SELECT INBOX')).at(-1), /^b OK/);
  t.equal(await imap.command('c IDLE'), '+ idling');
  const pop3 = await LineClient.connect(ports.MAILROOM_POP3_PORT!);
  t.teardown(() => pop3.close());
  await pop3.readLine();
  await pop3.command(`USER ${ADDRESS}`);
  t.match(await pop3.command(`PASS ${PASSWORD}`), /^\+OK/);
  const lmtp = await deliveryInFlight(ports.MAILROOM_LMTP_PORT!, 'in flight at SIGTERM');
  t.teardown(() => lmtp.close());

  server.child.kill('SIGTERM');
  t.equal(await imap.readLine(), '* BYE Server shutting down', 'the idling IMAP session is told BYE');
  t.equal(await imap.readLine(), null, 'and the connection closes');
  t.equal(await pop3.readLine(), '-ERR [SYS/TEMP] Server shutting down', 'the POP3 session is told');
  t.equal(await pop3.readLine(), null, 'and closed');
  for (const name of ['MAILROOM_IMAP_PORT', 'MAILROOM_IMAPS_PORT', 'MAILROOM_POP3_PORT', 'MAILROOM_POP3S_PORT', 'MAILROOM_LMTP_PORT']) {
    t.ok(await refused(ports[name]!), `${name}: new connections are refused`);
  }
  t.equal(server.child.exitCode, null, 'the process waits for the delivery in flight');

  lmtp.write(`${dotStuff(Buffer.from('\r\nSent before SIGTERM, finished after.\r\n'))}.\r\n`);
  t.match((await lmtp.replies(1))[0], /^250 2\.0\.0 /, 'the delivery in flight is acknowledged');
  t.equal(await exitCode(server), 0, 'the process exits 0, within its deadline (past it, it exits 1)');
  t.notMatch(server.output(), /not stopped within/);

  const store = await openStoppedServerDatabase(t, server);
  const stored = await store.db
    .select({ data: blobs.data })
    .from(messages)
    .innerJoin(accounts, eq(accounts.id, messages.accountId))
    .innerJoin(blobs, eq(blobs.hash, messages.blobHash))
    .where(eq(accounts.address, ADDRESS));
  t.equal(stored.length, 1, 'the message is stored');
  t.match(Buffer.from(stored[0]!.data).toString(), /Subject: in flight at SIGTERM\r\n\r\nSent before SIGTERM, finished after\./);
});

t.test('a stop that hangs: a second SIGTERM exits at once, and so does the deadline', async (t) => {
  t.test('second signal', async (t) => {
    const { server, ports } = await serverWithMailbox(t, { MAILROOM_SHUTDOWN_TIMEOUT: '3600' });
    // Never finished: the first SIGTERM waits for it.
    const lmtp = await deliveryInFlight(ports.MAILROOM_LMTP_PORT!, 'never finished');
    t.teardown(() => lmtp.close());
    server.child.kill('SIGTERM');
    while (!(await refused(ports.MAILROOM_LMTP_PORT!))) await new Promise((resolve) => setTimeout(resolve, 50));
    t.equal(server.child.exitCode, null, 'stopping has begun, waiting for the delivery');
    server.child.kill('SIGTERM');
    t.equal(await exitCode(server), 1, 'the second SIGTERM ends it, with status 1');
    t.match(server.output(), /SIGTERM again; exiting now/);
  });

  t.test('deadline', async (t) => {
    const { server, ports } = await serverWithMailbox(t, { MAILROOM_SHUTDOWN_TIMEOUT: '1' });
    const lmtp = await deliveryInFlight(ports.MAILROOM_LMTP_PORT!, 'never finished');
    t.teardown(() => lmtp.close());
    server.child.kill('SIGTERM');
    t.equal(await exitCode(server), 1, 'the deadline ends it, with status 1');
    t.match(server.output(), /not stopped within 1 s; exiting now/);
  });
});
