import t from 'tap';
import { freshDatabaseUrl } from './helpers/database.js';
import { LineClient, run } from './helpers/line-client.js';
import { eventually } from './helpers/metrics.js';
import { rememberSecret } from './helpers/secrets.js';
import { mailPorts, type ServerProcess, startServer } from './helpers/server.js';
import { RawLmtp } from './lmtp/clients.js';

/*
 * Two `mailroom serve` processes on one Postgres database behave as one server: what one process
 * knows (sessions, maildrop locks, failed logins, new mail, password changes) the other acts on.
 */

const ADMIN = 'multi-gateway-admin-token';
const PASSWORD = 'correct horse battery staple';
const WRONG = 'certainly not the password';
const NEW_PASSWORD = 'a brand new passphrase';
const DOMAIN = 'multi.test';
for (const secret of [PASSWORD, WRONG, NEW_PASSWORD]) rememberSecret(secret);

// Two server processes and a dozen argon2id logins outlast the default per-file timeout on a busy two-core machine.
t.setTimeout(240_000);

const url = await freshDatabaseUrl(t);
const skip = url === null && 'several processes need one Postgres server; the embedded database (PGlite) belongs to one process';

interface Gateway {
  server: ServerProcess;
  imap: number;
  pop3: number;
  lmtp?: number;
}

// A: API and mail doors; B: the same plus LMTP, as a second gateway beside it.
async function startGateways(): Promise<{ a: Gateway; b: Gateway }> {
  const env = {
    MAILROOM_ADMIN_TOKEN: ADMIN,
    DATABASE_URL: url!,
    // Failed logins lock a mailbox at the third, from wherever they come; addresses are never locked.
    MAILROOM_LOGIN_FAILURES_PER_MAILBOX: '3',
    MAILROOM_LOGIN_FAILURES_PER_IP: '0',
    MAILROOM_LOGIN_MAX_DELAY: '0',
  };
  const [aPorts, bPorts] = [await mailPorts(), await mailPorts()];
  const a = await startServer(t, { ...env, ...aPorts, MAILROOM_LMTP_PORT: 'off' }, { only: ['api', 'imap', 'pop3'] });
  const b = await startServer(t, { ...env, ...bPorts }, { only: ['api', 'imap', 'pop3', 'lmtp'] });
  return {
    a: { server: a, imap: Number(aPorts.MAILROOM_IMAP_PORT), pop3: Number(aPorts.MAILROOM_POP3_PORT) },
    b: {
      server: b,
      imap: Number(bPorts.MAILROOM_IMAP_PORT),
      pop3: Number(bPorts.MAILROOM_POP3_PORT),
      lmtp: Number(bPorts.MAILROOM_LMTP_PORT),
    },
  };
}

let started: ReturnType<typeof startGateways> | undefined;
const gateways = () => (started ??= startGateways());

async function api(gateway: Gateway, method: string, path: string, body?: unknown) {
  const response = await fetch(`${gateway.server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, body: response.status === 204 ? null : await response.json() };
}

let mailboxes = 0;
/** A new mailbox, made through A's API. */
async function mailbox(name: string): Promise<string> {
  const { a } = await gateways();
  if (mailboxes++ === 0) await api(a, 'POST', '/v1/domains', { name: DOMAIN });
  const address = `${name}@${DOMAIN}`;
  const made = await api(a, 'POST', '/v1/mailboxes', { address, password: PASSWORD, protocols: { imap: true, pop3: true } });
  if (made.status !== 201) throw new Error(`mailbox ${address}: ${made.status} ${JSON.stringify(made.body)}`);
  return address;
}

async function connect(t: { teardown(fn: () => unknown): void }, port: number): Promise<LineClient> {
  const client = await LineClient.connect(port);
  t.teardown(() => client.close());
  await client.readLine();
  return client;
}

async function imapLogin(t: { teardown(fn: () => unknown): void }, port: number, address: string, password = PASSWORD) {
  const client = await connect(t, port);
  const answer = (await run(client, `l LOGIN ${address} "${password}"`)).at(-1)!;
  return { client, answer };
}

async function pop3Login(t: { teardown(fn: () => unknown): void }, port: number, address: string, password = PASSWORD) {
  const client = await connect(t, port);
  client.send(`USER ${address}\r\nPASS ${password}\r\n`);
  await client.readLine();
  return { client, answer: (await client.readLine())! };
}

async function deliver(port: number, to: string, subject: string): Promise<string> {
  const lmtp = await RawLmtp.open(port);
  try {
    await lmtp.command('LHLO mta.test');
    await lmtp.command('MAIL FROM:<sender@example.net>');
    await lmtp.command(`RCPT TO:<${to}>`);
    await lmtp.command('DATA');
    return await lmtp.command(`Subject: ${subject}\r\n\r\nhello\r\n.`);
  } finally {
    lmtp.close();
  }
}

t.test('sessions listed through either API include those on both processes', { skip }, async (t) => {
  const { a, b } = await gateways();
  const address = await mailbox('listed');
  t.match((await imapLogin(t, a.imap, address)).answer, /^l OK/);
  t.match((await imapLogin(t, b.imap, address)).answer, /^l OK/);
  t.match((await pop3Login(t, b.pop3, address)).answer, /^\+OK/);
  for (const [name, gateway] of [['A', a], ['B', b]] as const) {
    const listed = await api(gateway, 'GET', `/v1/mailboxes/${address}/sessions`);
    t.equal(listed.status, 200);
    t.same(
      listed.body.items.map((s: { protocol: string }) => s.protocol).sort(),
      ['imap', 'imap', 'pop3'],
      `${name}'s API lists A's IMAP session and B's IMAP and POP3 sessions`,
    );
  }
});

t.test('IDLE on A is pushed a message delivered through LMTP on B', { skip }, async (t) => {
  const { a, b } = await gateways();
  const address = await mailbox('idler');
  const { client } = await imapLogin(t, a.imap, address);
  t.match((await run(client, 's SELECT INBOX')).at(-1), /^s OK/);
  client.send('i IDLE\r\n');
  t.match(await client.readLine(), /^\+ /);
  t.match(await deliver(b.lmtp!, address, 'through B'), /^250 /);
  t.equal(await client.readLine(5000), '* 1 EXISTS', 'pushed while idling, with no command from the client');
  client.send('DONE\r\n');
  t.match((await run(client, 'n NOOP')).at(-1), /^n OK/, 'and the session goes on');
});

t.test('POP3: while A holds the maildrop, B answers -ERR [IN-USE]; after QUIT on A, B gets it', { skip }, async (t) => {
  const { a, b } = await gateways();
  const address = await mailbox('popper');
  const holder = await pop3Login(t, a.pop3, address);
  t.match(holder.answer, /^\+OK/);
  t.match((await pop3Login(t, b.pop3, address)).answer, /^-ERR \[IN-USE\]/);
  holder.client.send('QUIT\r\n');
  t.match(await holder.client.readLine(), /^\+OK/);
  t.match((await pop3Login(t, b.pop3, address)).answer, /^\+OK/);
});

t.test('failed logins are counted across both processes and both protocols', { skip }, async (t) => {
  const { a, b } = await gateways();
  const address = await mailbox('guessed');
  const lockout = async (gateway: Gateway) => (await api(gateway, 'GET', `/v1/mailboxes/${address}/login-lockout`)).body;
  t.match((await imapLogin(t, a.imap, address, WRONG)).answer, /^l NO \[AUTHENTICATIONFAILED\]/);
  t.match((await pop3Login(t, b.pop3, address, WRONG)).answer, /^-ERR \[AUTH\]/);
  t.match(await lockout(a), { locked: false, recentFailures: 2 }, "A's API counts B's failure too");
  t.match((await imapLogin(t, b.imap, address, WRONG)).answer, /^l NO \[AUTHENTICATIONFAILED\]/);
  t.match(await lockout(b), { locked: true, recentFailures: 3 }, 'the third failure, on B, locks the mailbox');
  t.match((await imapLogin(t, a.imap, address)).answer, /^l NO \[UNAVAILABLE\]/, 'A refuses even the right password');
  t.match((await pop3Login(t, a.pop3, address)).answer, /^-ERR \[SYS\/TEMP\]/);
  t.equal((await api(b, 'DELETE', `/v1/mailboxes/${address}/login-lockout`)).status, 204);
  t.match((await imapLogin(t, a.imap, address)).answer, /^l OK/, "lifted through B's API, A lets it in");
});

t.test('a password change through the API ends the sessions on both processes', { skip }, async (t) => {
  const { a, b } = await gateways();
  const address = await mailbox('changed');
  const onA = (await imapLogin(t, a.imap, address)).client;
  const onB = (await imapLogin(t, b.imap, address)).client;
  const popOnB = (await pop3Login(t, b.pop3, address)).client;
  t.equal((await api(a, 'PUT', `/v1/mailboxes/${address}/password`, { password: NEW_PASSWORD })).status, 204);
  t.equal(await onA.readLine(5000), '* BYE The password was changed; log in again', 'A ends its IMAP session');
  t.equal(await onB.readLine(5000), '* BYE The password was changed; log in again', 'B ends its IMAP session');
  t.equal(await popOnB.readLine(5000), null, 'B closes its POP3 session');
  t.ok(
    await eventually(async () => (await api(b, 'GET', `/v1/mailboxes/${address}/sessions`)).body.items.length === 0),
    'none is listed any more',
  );
  t.match((await imapLogin(t, b.imap, address)).answer, /^l NO/, 'the old password no longer works');
});
