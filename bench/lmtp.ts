/**
 * LMTP delivery rate, Mailroom beside Dovecot on the same machine in the same run: 20 KB messages,
 * 4 concurrent senders, each on one connection sending MAIL/RCPT/DATA pipelined as Postfix does.
 *
 *   npm run bench            (Postgres from DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres)
 *
 * Mailroom runs as `mailroom serve --only lmtp` on a fresh database; Dovecot (Debian's
 * dovecot-lmtpd) runs as an unprivileged instance with its own config under /tmp, maildir storage
 * and a static userdb. Both log at their defaults to a file. Knobs: BENCH_MESSAGES (per run,
 * default 1000), BENCH_ROUNDS (default 3; the median run counts), BENCH_MAILBOXES (default 20),
 * BENCH_PROFILE=1 (a CPU profile of Mailroom in the working directory, kept).
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { count } from 'drizzle-orm';
import { loadConfig } from '../src/config.js';
import { messages } from '../src/db/schema/index.js';
import { openDatabase, servicesFor } from '../src/main.js';
import { freePort, startDovecot as startDovecotInstance } from './dovecot.js';
import { createBenchDatabase, MESSAGE_SIZE, median, message, spawnMailroom } from './fixtures.js';
import { writeSummary } from './summary.js';

const SENDERS = 4;
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MAILBOXES = Number(process.env.BENCH_MAILBOXES ?? 20);
const WARMUP = 100;
const PROFILE = process.env.BENCH_PROFILE === '1';
const DOMAIN = 'bench.example';

const recipient = (n: number) => `user${n % MAILBOXES}@${DOMAIN}`;

/** Replies are read line by line; a reply ends at a line with a space after the code. */
export class LmtpConnection {
  private buffer = '';
  private waiting: (() => void) | null = null;
  private failed: Error | null = null;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.wake();
    });
    socket.on('error', (error) => {
      this.failed = error;
      this.wake();
    });
    socket.on('close', () => {
      this.failed ??= new Error('connection closed');
      this.wake();
    });
  }

  static async open(port: number): Promise<LmtpConnection> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const connection = new LmtpConnection(socket);
    await connection.expect(1, 220);
    connection.socket.write('LHLO bench.client\r\n');
    await connection.expect(1, 250);
    return connection;
  }

  private wake() {
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.();
  }

  /** Reads `count` replies and throws unless each has the given code. */
  async expect(count: number, code: number): Promise<void> {
    for (let seen = 0; seen < count; ) {
      const end = this.buffer.indexOf('\r\n');
      if (end < 0) {
        if (this.failed) throw this.failed;
        await new Promise<void>((resolve) => (this.waiting = resolve));
        continue;
      }
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      if (line[3] === '-') continue;
      if (!line.startsWith(String(code))) throw new Error(`expected ${code}, got: ${line}`);
      seen++;
    }
  }

  async deliver(to: string, dotStuffed: Buffer): Promise<void> {
    this.socket.write(`MAIL FROM:<news@sender.example>\r\nRCPT TO:<${to}>\r\nDATA\r\n`);
    await this.expect(2, 250);
    await this.expect(1, 354);
    this.socket.write(dotStuffed);
    this.socket.write('.\r\n');
    await this.expect(1, 250);
  }

  close() {
    this.socket.end('QUIT\r\n');
  }
}

export function dotStuff(raw: Buffer): Buffer {
  return Buffer.from(raw.toString('latin1').replace(/(^|\r\n)\./g, '$1..'), 'latin1');
}

/** Delivers `count` messages with SENDERS connections in parallel; answers messages per second. */
export async function run(port: number, label: string, count: number): Promise<number> {
  const messages = Array.from({ length: count }, (_, n) => ({ to: recipient(n), raw: dotStuff(message(n, recipient(n), label)) }));
  const connections = await Promise.all(Array.from({ length: SENDERS }, () => LmtpConnection.open(port)));
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    connections.map(async (connection) => {
      while (next < messages.length) {
        const { to, raw } = messages[next++]!;
        await connection.deliver(to, raw);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  for (const connection of connections) connection.close();
  return count / seconds;
}

interface Target {
  name: string;
  port: number;
  /** Messages stored so far, counted from the storage itself. */
  stored(): Promise<number>;
  stop(): Promise<void>;
}

export async function startMailroom(work: string, profileDir?: string): Promise<Target & { settings: string; pid: number }> {
  const bench = await createBenchDatabase();
  const config = loadConfig({ DATABASE_URL: bench.url, MAILROOM_LOG_LEVEL: 'silent' });
  const database = await openDatabase(config);
  const services = servicesFor(database, config);
  const actor = { id: 'bench', name: 'bench', domains: null };
  await services.domains.create({ name: DOMAIN }, actor);
  for (let i = 0; i < MAILBOXES; i++) {
    // An imported hash: no argon2 work for setting up the bench.
    await services.mailboxes.create(
      {
        address: recipient(i),
        passwordHash:
          '{SHA512-CRYPT}$6$saltsalt$owpKrqjGlRYC25WjisgzBriSuXX2LO8nZAMUnLV0I9skFOA0ieFk1ZcoYuYz7sgch3uLtoYJXjYXS4g7azxSa/',
      },
      actor,
    );
  }
  const port = await freePort();
  const server = await spawnMailroom({
    work,
    databaseUrl: bench.url,
    parts: ['lmtp'],
    env: { MAILROOM_LMTP_PORT: String(port) },
    port,
    profileDir,
  });
  return {
    name: 'Mailroom',
    port,
    pid: server.pid,
    settings: bench.settings,
    async stored() {
      const [row] = await database.db.select({ n: count() }).from(messages);
      return row!.n;
    },
    async stop() {
      await server.stop();
      await database.close();
      await bench.drop();
    },
  };
}

/** Debian's Dovecot LMTP (see bench/dovecot.ts), counting what it stored in its maildirs. */
export async function startDovecot(work: string): Promise<Target & { version: string; pid: number }> {
  const dovecot = await startDovecotInstance(work, { protocols: ['lmtp'] });
  return {
    name: 'Dovecot',
    port: dovecot.port,
    pid: dovecot.pid,
    version: dovecot.version,
    async stored() {
      let count = 0;
      for (const domain of await readdir(dovecot.mailDir)) {
        for (const mailbox of await readdir(join(dovecot.mailDir, domain))) {
          count += (await readdir(join(dovecot.mailDir, domain, mailbox, 'new')).catch(() => [])).length;
        }
      }
      return count;
    },
    stop: () => dovecot.stop(),
  };
}


async function main() {
  const work = await mkdtemp(join(tmpdir(), 'mailroom-bench-'));
  const targets: Target[] = [];
  try {
    const mailroom = await startMailroom(work, PROFILE ? join(work, 'profile') : undefined);
    targets.push(mailroom);
    const dovecot = await startDovecot(work);
    targets.push(dovecot);

    console.log(
      `LMTP delivery: ${MESSAGE_SIZE / 1024} KB messages, ${SENDERS} concurrent senders, ${MESSAGES} messages per run ` +
        `to ${MAILBOXES} mailboxes, ${ROUNDS} runs each (alternating), median run counts`,
    );
    console.log(`  Mailroom: mailroom serve --only lmtp on ${mailroom.settings}`);
    console.log(`  Dovecot:  ${dovecot.version}, maildir, mail_fsync=optimized (default), static userdb`);
    const rates = new Map<Target, number[]>(targets.map((t) => [t, []]));
    for (const target of targets) await run(target.port, `warmup-${target.name}`, WARMUP);
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternating, so a busy moment on the machine does not fall on one side only.
      for (const target of round % 2 === 1 ? targets : [...targets].reverse()) {
        const rate = await run(target.port, `run${round}`, MESSAGES);
        rates.get(target)!.push(rate);
        console.log(`  run ${round} ${target.name.padEnd(8)} ${rate.toFixed(0).padStart(6)} msg/s`);
      }
    }
    const expected = WARMUP + ROUNDS * MESSAGES;
    for (const target of targets) {
      const stored = await target.stored();
      if (stored !== expected) throw new Error(`${target.name} stored ${stored} messages, expected ${expected}`);
    }
    const mailroomRate = median(rates.get(mailroom)!);
    const dovecotRate = median(rates.get(dovecot)!);
    console.log(`Mailroom: ${mailroomRate.toFixed(0)} msg/s`);
    console.log(`Dovecot:  ${dovecotRate.toFixed(0)} msg/s`);
    console.log(`Mailroom/Dovecot = ${(mailroomRate / dovecotRate).toFixed(2)}`);
    const ratio = mailroomRate / dovecotRate;
    await writeSummary([
      {
        name: `LMTP delivery, ${SENDERS} senders`,
        mailroom: mailroomRate,
        dovecot: dovecotRate,
        unit: 'msg/s',
        target: { text: 'ratio ≥ 1.00', met: ratio >= 1 },
      },
    ]);
  } finally {
    for (const target of targets.reverse()) await target.stop().catch((error) => console.error(`stopping ${target.name}:`, error));
    if (PROFILE) console.log(`CPU profile of Mailroom in ${join(work, 'profile')}`);
    else await rm(work, { recursive: true, force: true });
  }
}

// Run as a script; imported (e.g. by a profiling script), it only lends its parts.
if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
