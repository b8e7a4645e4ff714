import t, { type Test } from 'tap';
import { buildApp } from '../../src/api/app.js';
import { createLogger } from '../../src/log.js';
import { buildTestApi } from '../helpers/api.js';
import { gatewayFixture } from '../helpers/gateway.js';
import { startTestImap } from '../helpers/imap.js';
import { LineClient, run } from '../helpers/line-client.js';
import { eventually } from '../helpers/metrics.js';
import { PASSWORD, startTestPop3 } from '../helpers/pop3.js';
import { recordOutput, rememberSecret } from '../helpers/secrets.js';
import { lmtpFixture } from '../lmtp/setup.js';
import { RawLmtp } from '../lmtp/clients.js';

type Line = Record<string, unknown> & { msg: string; level: number };

/** A real pino logger at trace whose lines are kept here, parsed, and go to the leak check too. */
function capturingLogger(source: string) {
  const raw: string[] = [];
  const logger = createLogger('trace', {
    write(line: string) {
      raw.push(line);
      recordOutput(source, line);
    },
  });
  return { logger, raw, lines: () => raw.map((line) => JSON.parse(line) as Line) };
}

const WRONG_PASSWORD = 'not the password at all';
rememberSecret(WRONG_PASSWORD);

/** Every line was written by one session: one session id, the protocol and the client's address. */
function oneSession(t: Test, lines: Line[], proto: string): string {
  const ids = new Set(lines.map((line) => line.session));
  t.equal(ids.size, 1, `every line carries the same session id (${[...ids].join(', ')})`);
  const [id] = ids;
  t.match(id, /^[0-9a-f]{10}$/, 'a short id');
  t.ok(
    lines.every((line) => line.proto === proto && line.ip === '127.0.0.1'),
    'and the protocol and client address',
  );
  const text = lines.map((line) => JSON.stringify(line)).join('\n');
  for (const secret of [PASSWORD, WRONG_PASSWORD]) t.notOk(text.includes(secret), 'no password in any line');
  return id as string;
}

const fixture = await gatewayFixture(t);
await fixture.mailbox('ann@logs.test');

t.test('IMAP: every line of a session carries its id; open, failed and good logins, close', async (t) => {
  const { logger, lines } = capturingLogger('IMAP log');
  const imap = await startTestImap(t, { fixture, log: logger });
  const client = await LineClient.connect(imap.port);
  t.teardown(() => client.close());
  await client.readLine();
  t.match((await run(client, `a LOGIN ann@logs.test "${WRONG_PASSWORD}"`)).at(-1), /^a NO/);
  t.match((await run(client, `b LOGIN ann@logs.test "${PASSWORD}"`)).at(-1), /^b OK/);
  t.match((await run(client, 'c SELECT INBOX')).at(-1), /^c OK/);
  t.match((await run(client, 'd LOGOUT')).at(-1), /^d OK/);
  t.ok(await eventually(async () => lines().some((line) => line.msg === 'connection closed')), 'the close is logged');

  const all = lines();
  const id = oneSession(t, all, 'imap');
  t.match(all, [
    { msg: 'connection opened', level: 20, tls: false },
    { msg: 'login failed', level: 30, user: 'ann@logs.test', reason: 'invalid_credentials' },
    { msg: 'logged in', level: 30, user: 'ann@logs.test', tls: false },
    { msg: 'connection closed', level: 30, user: 'ann@logs.test', reason: 'logout', seconds: Number },
  ]);
  t.equal(all.length, 4, 'nothing else at trace');

  const other = await LineClient.connect(imap.port);
  await other.readLine();
  other.close();
  t.ok(await eventually(async () => lines().length === 6), 'a second connection logs its open and close');
  const second = lines().slice(4);
  t.not(second[0]!.session, id, 'under an id of its own');
  t.match(second[1], { msg: 'connection closed', level: 20, reason: 'closed by the client' }, 'at debug: it never logged in');
});

t.test('IMAP: a session the server ends says why; a command that fails is logged under the session', async (t) => {
  const { logger, lines } = capturingLogger('IMAP log');
  const imap = await startTestImap(t, { fixture, log: logger });
  const client = await imap.login('ann@logs.test');
  const fetch = fixture.services.mail.list;
  fixture.services.mail.list = async () => {
    throw new Error('a fault nobody expected');
  };
  t.teardown(() => void (fixture.services.mail.list = fetch));
  t.match((await run(client, 's SELECT INBOX')).at(-1), /^s NO \[SERVERBUG\]/);
  fixture.services.mail.list = fetch;
  await fixture.services.mailboxes.setPassword('ann@logs.test', { password: PASSWORD }, { id: 'test', name: 'test', domains: null });
  t.ok(await eventually(async () => lines().some((line) => line.msg === 'connection closed')));
  const all = lines();
  oneSession(t, all, 'imap');
  t.match(
    all.find((line) => line.msg === 'imap command failed'),
    { level: 50, command: 'SELECT', err: { message: 'a fault nobody expected' } },
  );
  t.match(all.at(-1), { msg: 'connection closed', reason: 'The password was changed; log in again' });
});

t.test('POP3: every line of a session carries its id; failed USER/PASS, AUTH PLAIN, IN-USE, QUIT', async (t) => {
  const { logger, lines } = capturingLogger('POP3 log');
  const pop3 = await startTestPop3(t, { fixture, log: logger });
  const plain = Buffer.from(`\0ann@logs.test\0${PASSWORD}`).toString('base64');
  rememberSecret(plain);
  const client = await LineClient.connect(pop3.port);
  t.teardown(() => client.close());
  const say = async (line: string) => {
    client.send(`${line}\r\n`);
    return client.readLine();
  };
  await client.readLine();
  await say('USER ann@logs.test');
  t.match(await say(`PASS ${WRONG_PASSWORD}`), /^-ERR \[AUTH\]/);
  t.match(await say(`AUTH PLAIN ${plain}`), /^\+OK/);

  const { logger: otherLogger, lines: otherLines } = capturingLogger('POP3 log');
  const second = await startTestPop3(t, { fixture, log: otherLogger });
  const other = await LineClient.connect(second.port);
  t.teardown(() => other.close());
  await other.readLine();
  other.send(`AUTH PLAIN ${plain}\r\n`);
  t.match(await other.readLine(), /^-ERR \[IN-USE\]/);
  t.match(otherLines().at(-1), { msg: 'login failed', user: 'ann@logs.test', reason: 'in_use' });

  t.match(await say('QUIT'), /^\+OK/);
  t.ok(await eventually(async () => lines().some((line) => line.msg === 'connection closed')), 'the close is logged');
  const all = lines();
  oneSession(t, all, 'pop3');
  t.match(all, [
    { msg: 'connection opened', level: 20, tls: false },
    { msg: 'login failed', level: 30, user: 'ann@logs.test', reason: 'invalid_credentials' },
    { msg: 'logged in', level: 30, user: 'ann@logs.test', tls: false },
    { msg: 'connection closed', level: 30, user: 'ann@logs.test', reason: 'QUIT', seconds: Number },
  ]);
  t.equal(all.length, 4, 'nothing else at trace');
  t.not(otherLines()[0]!.session, all[0]!.session, 'the other connection has an id of its own');
});

t.test('LMTP: the lines of a connection and its transaction carry smtp-server’s session id', async (t) => {
  const { logger, lines } = capturingLogger('LMTP log');
  const lmtp = await lmtpFixture(t, { logger: logger.child({ part: 'lmtp' }, { level: 'info' }) });
  await lmtp.mailbox('bob@lmtp-logs.test');
  const before = lines().length;
  const client = await RawLmtp.open(lmtp.port);
  t.teardown(() => client.close());
  await client.command('LHLO mta.test');
  await client.command('MAIL FROM:<sender@example.net>');
  await client.command('RCPT TO:<bob@lmtp-logs.test>');
  await client.command('DATA');
  t.match(await client.command('Subject: hi\r\n\r\nhello\r\n.'), /^250/);
  const transaction = lines().slice(before);
  t.match(transaction, [{ msg: 'lmtp transaction', proto: 'lmtp', ip: '127.0.0.1', session: String, from: 'sender@example.net' }]);
  t.equal(transaction.length, 1);
});

t.test('LMTP at debug: connection lines and smtp-server’s own (as cid) name the same session', async (t) => {
  const { logger, lines } = capturingLogger('LMTP log');
  const lmtp = await lmtpFixture(t, { logger: logger.child({ part: 'lmtp' }, { level: 'debug' }) });
  const before = lines().length;
  const client = await RawLmtp.open(lmtp.port);
  await client.command('LHLO mta.test');
  t.match(await client.command('QUIT'), /^221/);
  await client.closed();
  t.ok(await eventually(async () => lines().some((line) => line.msg === 'connection closed')));
  const session = lines().slice(before);
  const ids = new Set(session.map((line) => line.session ?? line.cid));
  t.equal(ids.size, 1, `one id on every line (${[...ids].join(', ')})`);
  t.ok(ids.has(undefined) === false, 'no line without it');
  t.match(session.find((line) => line.msg === 'connection opened'), { proto: 'lmtp', ip: '127.0.0.1' });
});

t.test('API: the request id in every log line is the X-Request-Id answered', async (t) => {
  const api = await buildTestApi(t);
  const { logger, lines } = capturingLogger('API log');
  const app = await buildApp({ services: api.services, logger, bodyLimit: 1024 });
  t.teardown(() => app.close());

  const given = await app.inject({ method: 'GET', url: '/v1/domains', headers: { ...api.admin, 'x-request-id': 'support-ticket-42' } });
  t.equal(given.headers['x-request-id'], 'support-ticket-42', "a caller's id is kept");
  const made = await app.inject({ method: 'GET', url: '/v1/domains', headers: { authorization: 'Bearer wrong-token-0123456789' } });
  t.equal(made.statusCode, 401);
  const id = made.headers['x-request-id'] as string;
  t.match(id, /^[0-9a-f-]{36}$/, 'one is made otherwise');

  const all = lines();
  for (const [reqId, count] of [
    ['support-ticket-42', 2],
    [id, 2],
  ] as const) {
    const own = all.filter((line) => line.reqId === reqId);
    t.ok(own.length >= count, `${reqId}: its request and response lines carry it`);
    t.ok(own.some((line) => line.msg === 'request completed'), 'the response line among them');
  }
  t.ok(
    all.every((line) => line.reqId === 'support-ticket-42' || line.reqId === id),
    'no line of a request without its id',
  );
  t.notOk(all.some((line) => JSON.stringify(line).includes('wrong-token-0123456789')), 'no token');
});
