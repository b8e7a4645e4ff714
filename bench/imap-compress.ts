/**
 * What COMPRESS=DEFLATE costs an idle IMAP connection: BENCH_IDLE_CONNECTIONS connections to
 * `mailroom serve --only imap`, 10 to a mailbox of 5 messages, each logged in, SELECTed and in
 * IDLE; then each leaves IDLE, turns compression on, SELECTs again (through both compressors)
 * and goes back to IDLE. The server's VmRSS after each step less before, per connection: with
 * every compressor still held, and once the connections have been quiet long enough to give
 * them back (freed memory the allocator keeps for reuse still counts).
 *
 *   node --import tsx bench/imap-compress.ts   (Postgres from DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres)
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants as zlib, createDeflateRaw, createInflateRaw, type DeflateRaw } from 'node:zlib';
import { DEFLATE_QUIET_MS } from '../src/net/connection.js';
import { freePort } from './dovecot.js';
import { BENCH_ACTOR, createBenchDatabase, message, spawnMailroom, withServices } from './fixtures.js';

const CONNECTIONS = Number(process.env.BENCH_IDLE_CONNECTIONS ?? 1000);
const PER_MAILBOX = 10;
const OPENING = 16;
const PASSWORD = 'bench password 1';
const mailboxes = Array.from({ length: Math.ceil(CONNECTIONS / PER_MAILBOX) }, (_, i) => `idle${i}@compress.bench`);

/** One connection driven line by line, compressed once told so. */
class Client {
  private text = '';
  private waiting: (() => void) | null = null;
  private deflate: DeflateRaw | null = null;
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
    socket.on('error', () => {});
  }

  static async open(port: number): Promise<Client> {
    const client = new Client(connect(port, '127.0.0.1'));
    await client.until((line) => line.startsWith('* OK'));
    return client;
  }

  private receive(chunk: Buffer): void {
    this.text += chunk.toString('latin1');
    this.waiting?.();
  }

  send(line: string): void {
    if (!this.deflate) return void this.socket.write(`${line}\r\n`);
    this.deflate.write(`${line}\r\n`);
    this.deflate.flush(zlib.Z_SYNC_FLUSH);
  }

  /** Reads lines until one satisfies `done`. */
  async until(done: (line: string) => boolean): Promise<void> {
    for (;;) {
      const end = this.text.indexOf('\r\n');
      if (end !== -1) {
        const line = this.text.slice(0, end);
        this.text = this.text.slice(end + 2);
        if (done(line)) return;
        continue;
      }
      if (this.closed) throw new Error('connection closed');
      await new Promise<void>((resolve) => (this.waiting = resolve));
      this.waiting = null;
    }
  }

  async command(tag: string, line: string): Promise<void> {
    this.send(`${tag} ${line}`);
    await this.until((answer) => {
      if (answer.startsWith(`${tag} `) && !answer.startsWith(`${tag} OK`)) throw new Error(answer);
      return answer.startsWith(`${tag} OK`);
    });
  }

  compress(): void {
    const inflate = createInflateRaw();
    this.socket.removeAllListeners('data');
    this.socket.on('data', (chunk: Buffer) => inflate.write(chunk));
    inflate.on('data', (chunk: Buffer) => this.receive(chunk));
    this.deflate = createDeflateRaw();
    this.deflate.on('data', (chunk: Buffer) => this.socket.write(chunk));
  }

  close(): void {
    this.socket.destroy();
  }
}

async function vmRssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'latin1');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
}

/** `count` connections, each logged in, SELECTed and in IDLE (tags a to d). */
async function crowd(port: number, count: number): Promise<Client[]> {
  const clients: Client[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: OPENING }, async () => {
      while (next < count) {
        const i = next++;
        const client = await Client.open(port);
        await client.command('a', `LOGIN ${mailboxes[i % mailboxes.length]} "${PASSWORD}"`);
        await client.command('b', 'SELECT INBOX');
        client.send('c IDLE');
        await client.until((line) => line.startsWith('+ '));
        clients.push(client);
      }
    }),
  );
  return clients;
}

/** Out of IDLE, COMPRESS, SELECT again (through both compressors) and back into IDLE. */
async function compressAll(clients: Client[]): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: OPENING }, async () => {
      while (next < clients.length) {
        const client = clients[next++]!;
        client.send('DONE');
        await client.until((line) => line.startsWith('c OK'));
        await client.command('d', 'COMPRESS DEFLATE');
        client.compress();
        await client.command('e', 'SELECT INBOX');
        client.send('f IDLE');
        await client.until((line) => line.startsWith('+ '));
      }
    }),
  );
}

/** The server's VmRSS once it has settled (two readings 2 s apart within 64 KiB), in KiB. */
async function settled(pid: number): Promise<number> {
  let last = await vmRssKiB(pid);
  for (let i = 0; i < 10; i++) {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const now = await vmRssKiB(pid);
    if (Math.abs(now - last) < 64) return now;
    last = now;
  }
  return last;
}

const database = await createBenchDatabase();
try {
  await database.load(async (url) => {
    await withServices(url, async (services) => {
      await services.domains.create({ name: 'compress.bench' }, BENCH_ACTOR);
      for (const address of mailboxes) await services.mailboxes.create({ address, password: PASSWORD }, BENCH_ACTOR);
      for (let n = 0; n < 5; n++) await services.mail.deliver(message(n, mailboxes[0]!, 'idle'), mailboxes);
    });
  });
  const work = await mkdtemp(join(tmpdir(), 'mailroom-compress-bench-'));
  const port = await freePort();
  const mailroom = await spawnMailroom({
    work,
    databaseUrl: database.url,
    parts: ['imap'],
    env: {
      MAILROOM_IMAP_PORT: String(port),
      MAILROOM_IMAPS_PORT: 'off',
      MAILROOM_MAX_CONNECTIONS_PER_IP: String(CONNECTIONS + 100),
      MAILROOM_MAX_CONNECTIONS_PER_MAILBOX: String(PER_MAILBOX),
    },
    port,
  });
  try {
    const before = await settled(mailroom.pid);
    const clients = await crowd(port, CONNECTIONS);
    const plain = await settled(mailroom.pid);
    console.log(`${clients.length} connections in IDLE: ${((plain - before) / clients.length).toFixed(1)} KiB each (VmRSS)`);
    await compressAll(clients);
    const busy = await vmRssKiB(mailroom.pid);
    console.log(`the same, compressed, every compressor still held: ${((busy - plain) / clients.length).toFixed(1)} KiB more each`);
    await new Promise((resolve) => setTimeout(resolve, DEFLATE_QUIET_MS));
    const quiet = await settled(mailroom.pid);
    console.log(`the same, compressed, once quiet (compressors given back): ${((quiet - plain) / clients.length).toFixed(1)} KiB more each`);
    for (const client of clients) client.close();
  } finally {
    await mailroom.stop();
    await rm(work, { recursive: true, force: true });
  }
} finally {
  await database.drop();
}
