import { createServer } from 'node:net';
import t from 'tap';
import { ConflictError } from '../../src/core/errors.js';
import type { DeliveryResult } from '../../src/core/mailstore/service.js';
import { createMetrics } from '../../src/core/metrics.js';
import type { Services } from '../../src/core/services.js';
import { type LmtpLogger, startLmtpServer } from '../../src/lmtp/server.js';
import { dotStuff, pythonLmtp, RawLmtp } from './clients.js';
import { lmtpFixture, message } from './setup.js';

interface LogLine {
  level: string;
  details: Record<string, unknown>;
  message?: string;
  args: unknown[];
}

/** A logger that keeps every line, to check what is (and is not) logged. */
function recordingLogger(level = 'info', bindings: Record<string, unknown> = {}, lines: LogLine[] = []): LmtpLogger & { lines: LogLine[] } {
  const at = (name: string) => (details: object, message?: string, ...args: unknown[]) =>
    void lines.push({ level: name, details: { ...bindings, ...details }, message, args });
  return {
    level,
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more, options) => recordingLogger(options?.level ?? level, { ...bindings, ...more }, lines),
  };
}

type Deliver = Services['mail']['deliver'];

/** A listener in front of a stand-in core, for outcomes the real core gives only by accident. */
async function fakeCore(
  t: { teardown(fn: () => unknown): void },
  deliver: Deliver,
  options: { logger?: LmtpLogger; maxClients?: number; closeTimeout?: number; socketTimeout?: number } = {},
) {
  const lmtp = await startLmtpServer(
    { services: { mail: { deliver }, metrics: createMetrics() } as unknown as Pick<Services, 'mail' | 'metrics'>, maxMessageSize: 64 * 1024, ...options },
    '127.0.0.1',
    0,
  );
  t.teardown(() => lmtp.close());
  return lmtp;
}

const delivered = (recipients: readonly string[]): DeliveryResult[] =>
  recipients.map((recipient, i) => ({ recipient, delivered: true, uid: i + 1, size: 1 }));

/** LHLO, MAIL, RCPT for each recipient and DATA, all answered. */
async function openTransaction(client: RawLmtp, recipients: string[]) {
  await client.command('LHLO client.test');
  await client.command('MAIL FROM:<s@example.net>');
  for (const recipient of recipients) await client.command(`RCPT TO:<${recipient}>`);
  const reply = await client.command('DATA');
  if (!reply.startsWith('354')) throw new Error(`DATA answered ${reply}`);
}

t.test('a database that is gone answers 451 4.3.0 for every recipient, so the MTA retries', async (t) => {
  const logger = recordingLogger();
  const f = await lmtpFixture(t, { logger });
  await f.mailbox('ann@gone.example');
  await f.mailbox('bob@gone.example');
  const before = await pythonLmtp(f.port, [{ from: 's@example.net', to: ['ann@gone.example'], message: message('before') }]);
  t.equal(before.transactions[0]!.data[0]![0], 250, 'delivers while the database is there');

  await f.database.close();
  const secret = 'BODY-MUST-NOT-BE-LOGGED';
  const after = await pythonLmtp(f.port, [
    { from: 's@example.net', to: ['ann@gone.example', 'nobody@gone.example', 'bob@gone.example'], message: message(secret) },
  ]);
  const transient = [451, '4.3.0 Temporary failure, please try again later'];
  t.same(after.transactions[0]!.data, [transient, transient, transient]);
  const errors = logger.lines.filter((line) => line.level === 'error');
  t.equal(errors.length, 1, 'the fault is logged once');
  t.equal(errors[0]!.message, 'delivery failed; answered 451');
  t.ok(errors[0]!.details.err instanceof Error, 'with the error');
  t.notMatch(JSON.stringify(logger.lines, (_k, v) => (v instanceof Error ? v.message : v)), secret, 'no message body in any log line');
  const transactions = logger.lines.filter((line) => line.message === 'lmtp transaction');
  t.same(
    transactions.map((line) => line.details.recipients),
    [[{ to: 'ann@gone.example', reply: 250, uid: 1 }]],
    'each transaction that reached the core is logged with its outcome per recipient',
  );
});

t.test('a refusal the door does not know is answered 451 and logged, not passed on as permanent', async (t) => {
  const logger = recordingLogger();
  const lmtp = await fakeCore(
    t,
    async (_raw, recipients) => [
      { recipient: recipients[0]!, delivered: false, error: new ConflictError('surprise', 'Something new') },
      ...delivered(recipients.slice(1)),
    ],
    { logger },
  );
  const result = await pythonLmtp(lmtp.port, [{ from: 's@example.net', to: ['a@x.example', 'b@x.example'], message: message('x') }]);
  t.same(result.transactions[0]!.data, [
    [451, '4.3.0 Temporary failure, please try again later'],
    [250, '2.0.0 <b@x.example> delivered, UID 1'],
  ]);
  t.same(
    logger.lines.filter((line) => line.level === 'error').map((line) => line.message),
    ['unexpected refusal; answered 451'],
  );
});

t.test('a domain error thrown for the whole call is mapped once for every recipient', async (t) => {
  const lmtp = await fakeCore(t, async () => {
    throw new ConflictError('surprise', 'Something new');
  });
  const result = await pythonLmtp(lmtp.port, [{ from: 's@example.net', to: ['a@x.example', 'b@x.example'], message: message('x') }]);
  const transient = [451, '4.3.0 Temporary failure, please try again later'];
  t.same(result.transactions[0]!.data, [transient, transient]);
});

t.test('a client that drops the connection in the middle of DATA delivers nothing; the listener carries on', async (t) => {
  const calls: string[][] = [];
  const logger = recordingLogger();
  const lmtp = await fakeCore(
    t,
    async (_raw, recipients) => {
      calls.push([...recipients]);
      return delivered(recipients);
    },
    { logger },
  );
  const dropped = await RawLmtp.open(lmtp.port);
  await openTransaction(dropped, ['a@x.example']);
  dropped.write('Subject: half\r\n\r\nthe first half of a message');
  await new Promise((resolve) => setTimeout(resolve, 100));
  dropped.close();

  const next = await RawLmtp.open(lmtp.port);
  t.teardown(() => next.close());
  await openTransaction(next, ['b@x.example']);
  next.write(`${dotStuff(message('whole'))}.\r\n`);
  t.same(await next.replies(1), ['250 2.0.0 <b@x.example> delivered, UID 1']);
  t.same(calls, [['b@x.example']], 'only the complete message reached the core');
  t.ok(logger.lines.some((line) => line.message === 'lmtp transaction abandoned'), 'the abandoned transaction is logged');
});

t.test('close: transactions past DATA finish and are answered, idle connections get 421, new ones are refused', async (t) => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let started!: () => void;
  const inCore = new Promise<void>((resolve) => (started = resolve));
  const lmtp = await fakeCore(t, async (_raw, recipients) => {
    started();
    await held;
    return delivered(recipients);
  });
  const idle = await RawLmtp.open(lmtp.port);
  await idle.command('LHLO client.test');
  const busy = await RawLmtp.open(lmtp.port);
  await openTransaction(busy, ['a@x.example', 'b@x.example']);
  busy.write(`${dotStuff(message('in flight'))}.\r\n`);
  await inCore;

  let closed = false;
  const closing = lmtp.close().then(() => (closed = true));
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.notOk(closed, 'close waits for the transaction in the core');
  await t.rejects(RawLmtp.open(lmtp.port), { code: 'ECONNREFUSED' }, 'no new connections');

  release();
  t.same(
    await busy.replies(2),
    ['250 2.0.0 <a@x.example> delivered, UID 1', '250 2.0.0 <b@x.example> delivered, UID 2'],
    'the transaction in flight is answered',
  );
  t.same(await idle.replies(1), ['421 4.3.2 Service shutting down']);
  await idle.closed();
  await busy.closed();
  await closing;
  t.ok(closed);
  await lmtp.close();
  t.pass('closing twice is harmless');
});

t.test('more clients than maxClients are turned away with 421', async (t) => {
  const lmtp = await fakeCore(t, async (_raw, recipients) => delivered(recipients), { maxClients: 1 });
  const first = await RawLmtp.open(lmtp.port);
  t.teardown(() => first.close());
  t.match(await first.command('LHLO client.test'), /^250/);
  const second = await RawLmtp.open(lmtp.port);
  t.match(second.greeting, /^421 .*Too many connected clients/);
  await second.closed();
});

t.test('a client silent in the middle of a command line is told 421 and dropped at the socket timeout', async (t) => {
  const lmtp = await fakeCore(t, async (_raw, recipients) => delivered(recipients), { socketTimeout: 300 });
  const client = await RawLmtp.open(lmtp.port);
  t.teardown(() => client.close());
  t.match(await client.command('LHLO client.test'), /^250/);
  client.write('MAIL FROM:<s@exa');
  t.match((await client.replies(1))[0], /^421 .*Timeout/);
  await client.closed();
});

t.test('a command line over the limit is not buffered: the connection ends', async (t) => {
  const lmtp = await fakeCore(t, async (_raw, recipients) => delivered(recipients));
  const client = await RawLmtp.open(lmtp.port);
  t.teardown(() => client.close());
  client.write(`LHLO ${'x'.repeat(1024 * 1024)}`);
  await client.closed();
  t.pass('closed before the line ended');
});

t.test('a port in use is an error at start', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => blocker.close(resolve)));
  const { port } = blocker.address() as { port: number };
  await t.rejects(
    startLmtpServer({ services: {} as Pick<Services, 'mail' | 'metrics'>, maxMessageSize: 64 * 1024 }, '127.0.0.1', port),
    { code: 'EADDRINUSE' },
  );
});

t.test('at debug level smtp-server’s own session log comes through, still without message bodies', async (t) => {
  const logger = recordingLogger('debug');
  const lmtp = await fakeCore(t, async (_raw, recipients) => delivered(recipients), { logger });
  const secret = 'ANOTHER-BODY-NOT-FOR-LOGS';
  await pythonLmtp(lmtp.port, [{ from: 's@example.net', to: ['a@x.example'], message: message(secret) }]);
  const library = logger.lines.filter((line) => line.details.component === 'smtp-server');
  // smtplib sends its commands in lower case.
  t.ok(library.some((line) => line.args.includes('rcpt TO:<a@x.example>')), 'commands are logged at debug');
  t.notMatch(JSON.stringify(logger.lines), secret);
});
