/**
 * IMAP, Mailroom beside Dovecot's imapd on the same machine, the same messages, in the same run:
 *
 * - command throughput, per command class: BENCH_CLIENTS clients at once, each logged in to a
 *   mailbox of its own whose INBOX holds its share of BENCH_MESSAGES × 20 KB messages, each
 *   repeating one command in lock-step for BENCH_SECONDS: LOGIN (connect, LOGIN, LOGOUT;
 *   argon2id, warm cache), SELECT INBOX, UID FETCH 1:* (FLAGS), FETCH n BODY.PEEK[HEADER], FETCH n
 *   BODY.PEEK[], UID STORE ±FLAGS (\Flagged), UID SEARCH UNSEEN, UID SEARCH SUBJECT, APPEND of
 *   20 KB (LITERAL+), and UID STORE +FLAGS (\Deleted) + EXPUNGE of one appended message;
 *   operations per second;
 * - the mixed workload: the same clients running whole sessions for BENCH_MIXED_SECONDS — LOGIN,
 *   SELECT, UID FETCH 1:* (FLAGS), 5 × FETCH header, 3 × FETCH body, 2 × UID STORE, UID SEARCH,
 *   APPEND, UID STORE \Deleted, EXPUNGE, LOGOUT — in commands per second;
 * - memory per IDLE connection: BENCH_IDLE_CONNECTIONS connections, BENCH_IDLE_PER_MAILBOX to a
 *   mailbox (whose INBOX holds BENCH_IDLE_MESSAGES messages), each logged in, SELECTed and in IDLE;
 *   the server's memory after less before, per connection. Mailroom: VmRSS of its process;
 *   Dovecot: the PSS (and RSS) summed over all its processes. Then BENCH_BIG_IDLE more on the
 *   throughput mailboxes, to show what a larger INBOX adds per connection. The default crowd is
 *   1,000 so that a run stays within a few minutes; issue 5 asks for BENCH_IDLE_CONNECTIONS=5000;
 * - IDLE push latency: BENCH_PUSH_CONNECTIONS connections in IDLE, one per (empty) mailbox, and
 *   4 LMTP senders delivering to them one message at a time each; the time from the LMTP reply
 *   (the delivery committed) to `* n EXISTS` at the client; median and p99, with only those
 *   connections open and again with the IDLE crowd open. BENCH_PUSHES deliveries at most, within
 *   BENCH_PUSH_SECONDS. (Dovecot waits 500 ms after a change before it tells an IDLE client.)
 *
 *   npm run bench:imap       (Postgres from DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres)
 *
 * Mailroom runs as `mailroom serve --only imap,lmtp` on a fresh database loaded through the mail
 * store beforehand and ANALYZEd, with MAILROOM_MAX_CONNECTIONS_PER_IP and _PER_MAILBOX raised.
 * Dovecot (Debian's dovecot-imapd and dovecot-lmtpd) runs as an unprivileged instance under /tmp with maildir
 * storage (files written directly, hard-linked between the IDLE mailboxes, indexed with doveadm before the
 * clock starts), a passwd-file passdb, auth cache on, process and client limits raised for the
 * IDLE crowd, otherwise its defaults: an imap-login and an imap process per connection, no
 * hibernation. Throughput mailboxes carry the same argon2id hash on both sides; the IDLE mailboxes
 * a SHA512-CRYPT one (Mailroom upgrades it to argon2id at the first login), so opening thousands
 * of connections does not take minutes of argon2 on Dovecot's side.
 *
 * Knobs: BENCH_MESSAGES (2000 in all), BENCH_CLIENTS (4), BENCH_SECONDS (3), BENCH_MIXED_SECONDS (8),
 * BENCH_ROUNDS (1; alternating sides, the median run counts), BENCH_IDLE_CONNECTIONS (1000),
 * BENCH_IDLE_PER_MAILBOX (10), BENCH_IDLE_MESSAGES (5), BENCH_BIG_IDLE (200),
 * BENCH_PUSH_CONNECTIONS (20), BENCH_PUSHES (200), BENCH_PUSH_SECONDS (5),
 * BENCH_ONLY=commands|mixed|idle (only those measures), BENCH_PROFILE=1 (a CPU profile of
 * Mailroom, kept in the working directory).
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encrypt as shaCrypt } from 'unixcrypt';
import { freePort, makeMaildir, prepareDovecot, storeInMaildirs } from './dovecot.js';
import { BENCH_ACTOR, createBenchDatabase, hashParameters, MESSAGE_SIZE, median, message, sharedHash, spawnMailroom, withServices } from './fixtures.js';
import { ImapClient } from './imap-client.js';
import { dotStuff, LmtpConnection } from './lmtp.js';
import { type SummaryRow, writeSummary } from './summary.js';

const knob = (name: string, fallback: number) => Number(process.env[`BENCH_${name}`] ?? fallback);
const MESSAGES = knob('MESSAGES', 2000);
const CLIENTS = knob('CLIENTS', 4);
const SECONDS = knob('SECONDS', 3);
const MIXED_SECONDS = knob('MIXED_SECONDS', 8);
const ROUNDS = knob('ROUNDS', 1);
const IDLE_CONNECTIONS = knob('IDLE_CONNECTIONS', 1000);
const IDLE_PER_MAILBOX = knob('IDLE_PER_MAILBOX', 10);
const IDLE_MESSAGES = knob('IDLE_MESSAGES', 5);
const BIG_IDLE = knob('BIG_IDLE', 200);
const PUSH_CONNECTIONS = knob('PUSH_CONNECTIONS', 20);
const PUSHES = knob('PUSHES', 200);
const PUSH_SECONDS = knob('PUSH_SECONDS', 5);
const PUSH_SENDERS = 4;
/** Connections being opened at once while the IDLE crowd gathers. */
const OPENING = 32;
const PROFILE = process.env.BENCH_PROFILE === '1';
const ONLY = process.env.BENCH_ONLY;
const DOMAIN = 'bench.example';
const PASSWORD = 'a bench passphrase';

// The mailboxes, the same on both sides.
const user = (i: number) => `user${i}@${DOMAIN}`;
const idler = (i: number) => `idle${i}@${DOMAIN}`;
const pusher = (i: number) => `push${i}@${DOMAIN}`;
const USERS = Array.from({ length: CLIENTS }, (_, i) => user(i));
/** Messages in each throughput mailbox's INBOX. */
const PER_USER = Math.ceil(MESSAGES / CLIENTS);
const IDLERS = Array.from({ length: Math.ceil(IDLE_CONNECTIONS / IDLE_PER_MAILBOX) }, (_, i) => idler(i));
const PUSHERS = Array.from({ length: PUSH_CONNECTIONS }, (_, i) => pusher(i));
/** Message n goes to one throughput mailbox, the first IDLE_MESSAGES to every IDLE mailbox too. */
const bulk = (n: number) => message(n, user(n % CLIENTS), 'imap');

const now = () => process.hrtime.bigint();
const seconds = (since: bigint) => Number(now() - since) / 1e9;

// ---------------------------------------------------------------------------------------------
// The command classes and the mixed workload.

/** A throughput client: its connection, and what it knows of its own INBOX. */
interface Worker {
  client: ImapClient;
  address: string;
  /** Messages loaded before the bench: FETCH n picks among 1..count, STORE among their UIDs. */
  count: number;
  uids: number[];
  flagged: Set<number>;
  /** UIDs APPENDed and not yet expunged. */
  appended: number[];
}

const pick = <T>(values: readonly T[]) => values[Math.floor(Math.random() * values.length)]!;
const number = (worker: Worker) => 1 + Math.floor(Math.random() * worker.count);
const appendedMessage = message(900_000, user(0), 'imap-append');

async function fetchFlags(worker: Worker): Promise<void> {
  const reply = await worker.client.command('UID FETCH 1:* (FLAGS)');
  const uids = reply.untagged.map((line) => Number(/UID (\d+)/.exec(line)?.[1]));
  if (uids.length < worker.count || uids.some((uid) => !uid)) throw new Error(`UID FETCH 1:* answered ${uids.length} messages`);
  worker.uids = uids.slice(0, worker.count);
}

async function fetchHeader(worker: Worker): Promise<void> {
  const reply = await worker.client.command(`FETCH ${number(worker)} BODY.PEEK[HEADER]`);
  if (reply.literals.length !== 1 || reply.literals[0]! < 200) throw new Error(`FETCH of a header answered ${reply.literals}`);
}

async function fetchBody(worker: Worker): Promise<void> {
  const reply = await worker.client.command(`FETCH ${number(worker)} BODY.PEEK[]`);
  if (reply.literals[0] !== MESSAGE_SIZE) throw new Error(`FETCH of a body answered ${reply.literals} octets`);
}

/** Flags or unflags a message, so every STORE changes something on both sides. */
async function storeFlag(worker: Worker): Promise<void> {
  const uid = pick(worker.uids);
  const flagged = worker.flagged.has(uid);
  await worker.client.command(`UID STORE ${uid} ${flagged ? '-' : '+'}FLAGS (\\Flagged)`);
  if (flagged) worker.flagged.delete(uid);
  else worker.flagged.add(uid);
}

async function searchUnseen(worker: Worker): Promise<void> {
  const reply = await worker.client.command('UID SEARCH UNSEEN');
  const found = reply.untagged.find((line) => line.startsWith('* SEARCH'))?.split(' ').length ?? 0;
  if (found - 2 < worker.count) throw new Error(`UID SEARCH UNSEEN found ${found - 2}`);
}

async function searchSubject(worker: Worker): Promise<void> {
  // Mailbox k holds messages k, k + CLIENTS, k + 2 × CLIENTS…
  const n = USERS.indexOf(worker.address) + CLIENTS * (number(worker) - 1);
  const reply = await worker.client.command(`UID SEARCH SUBJECT "Bench #${n}"`);
  if (!reply.untagged.some((line) => line.startsWith('* SEARCH '))) throw new Error(`UID SEARCH SUBJECT found nothing for #${n}`);
}

async function append(worker: Worker): Promise<void> {
  const reply = await worker.client.command('APPEND INBOX (\\Seen)', appendedMessage);
  const uid = /\[APPENDUID \d+ (\d+)\]/.exec(reply.text);
  if (!uid) throw new Error(`APPEND answered: ${reply.text}`);
  worker.appended.push(Number(uid[1]));
}

/** Removes the oldest appended message; false when none is left. */
async function expunge(worker: Worker): Promise<boolean> {
  const uid = worker.appended.shift();
  if (uid === undefined) return false;
  await worker.client.command(`UID STORE ${uid} +FLAGS.SILENT (\\Deleted)`);
  const reply = await worker.client.command('EXPUNGE');
  if (!reply.untagged.some((line) => / EXPUNGE$/.test(line))) throw new Error('EXPUNGE expunged nothing');
  return true;
}

async function login(worker: Worker, port: number): Promise<void> {
  const client = await ImapClient.open(port);
  await client.command(`LOGIN ${worker.address} "${PASSWORD}"`);
  await client.logout();
}

interface CommandClass {
  label: string;
  /** One operation; false when there is nothing left to do. */
  run(worker: Worker, port: number): Promise<unknown>;
}

const CLASSES: CommandClass[] = [
  { label: 'LOGIN (connect, LOGIN, LOGOUT)', run: login },
  { label: 'SELECT INBOX', run: (w) => w.client.select() },
  { label: 'UID FETCH 1:* (FLAGS)', run: fetchFlags },
  { label: 'FETCH n BODY.PEEK[HEADER]', run: fetchHeader },
  { label: 'FETCH n BODY.PEEK[]', run: fetchBody },
  { label: 'UID STORE ±FLAGS (\\Flagged)', run: storeFlag },
  { label: 'UID SEARCH UNSEEN', run: searchUnseen },
  { label: 'UID SEARCH SUBJECT', run: searchSubject },
  { label: 'APPEND 20 KB', run: append },
  // After APPEND, which leaves the messages this removes.
  { label: 'UID STORE \\Deleted + EXPUNGE', run: expunge },
];

/** Every worker repeats `run` until the time is up; answers operations per second. */
async function repeat(workers: Worker[], duration: number, run: (worker: Worker) => Promise<number>): Promise<number> {
  const started = now();
  const deadline = started + BigInt(Math.round(duration * 1e9));
  let operations = 0;
  await Promise.all(
    workers.map(async (worker) => {
      while (now() < deadline) {
        const done = await run(worker);
        if (done === 0) break;
        operations += done;
      }
    }),
  );
  return operations / seconds(started);
}

/** One whole client session of the mixed workload on a fresh connection; answers the commands sent. */
async function mixedSession(worker: Worker, port: number): Promise<number> {
  const client = await ImapClient.open(port);
  const session: Worker = { ...worker, client };
  await client.command(`LOGIN ${worker.address} "${PASSWORD}"`);
  await client.select();
  await fetchFlags(session);
  for (let i = 0; i < 5; i++) await fetchHeader(session);
  for (let i = 0; i < 3; i++) await fetchBody(session);
  for (let i = 0; i < 2; i++) await storeFlag(session);
  await searchUnseen(session);
  await append(session);
  await expunge(session);
  await client.logout();
  return 17;
}

// ---------------------------------------------------------------------------------------------
// The two servers.

interface Target {
  name: string;
  imap: number;
  lmtp: number;
  log: string;
  /** What the server's processes take, in KiB: Mailroom's VmRSS; Dovecot's PSS and RSS summed. */
  memory(): Promise<{ kib: number; rss: number; processes: number }>;
  stop(): Promise<void>;
}

async function statusKiB(file: string, field: string): Promise<number> {
  const text = await readFile(file, 'latin1');
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
}

/** The process and every process below it, from each /proc/<pid>/stat's parent. */
async function processTree(root: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'latin1').catch(() => null);
    if (stat === null) continue;
    // The command name in parentheses may hold spaces: the parent pid follows its ')'.
    const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

const SHA512_HASH = shaCrypt(PASSWORD, '$6$benchsalt');

async function startMailroom(work: string, hash: string): Promise<Target & { settings: string }> {
  const database = await createBenchDatabase();
  await database.load(async (url) => {
    await withServices(url, async (services) => {
      await services.domains.create({ name: DOMAIN }, BENCH_ACTOR);
      for (const address of USERS) await services.mailboxes.create({ address, passwordHash: `{ARGON2ID}${hash}` }, BENCH_ACTOR);
      for (const address of [...IDLERS, ...PUSHERS]) {
        await services.mailboxes.create({ address, passwordHash: `{SHA512-CRYPT}${SHA512_HASH}` }, BENCH_ACTOR);
      }
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < MESSAGES) {
            const n = next++;
            await services.mail.deliver(bulk(n), [user(n % CLIENTS)]);
          }
        }),
      );
      for (let n = 0; n < IDLE_MESSAGES; n++) await services.mail.deliver(bulk(n), IDLERS);
    });
  });
  const [imap, lmtp] = [await freePort(), await freePort()];
  const mailroom = await spawnMailroom({
    work,
    databaseUrl: database.url,
    parts: ['imap', 'lmtp'],
    env: {
      MAILROOM_IMAP_PORT: String(imap),
      MAILROOM_IMAPS_PORT: 'off',
      MAILROOM_LMTP_PORT: String(lmtp),
      // The whole IDLE crowd comes from 127.0.0.1.
      MAILROOM_MAX_CONNECTIONS_PER_IP: String(Math.min(100_000, IDLE_CONNECTIONS + BIG_IDLE + PUSH_CONNECTIONS + 100)),
      // The larger-INBOX crowd shares the few throughput mailboxes.
      MAILROOM_MAX_CONNECTIONS_PER_MAILBOX: String(Math.min(10_000, Math.max(IDLE_PER_MAILBOX, Math.ceil(BIG_IDLE / CLIENTS)) + 10)),
    },
    port: imap,
    ...(PROFILE ? { profileDir: join(work, 'profile') } : {}),
  });
  return {
    name: 'Mailroom',
    imap,
    lmtp,
    log: mailroom.log,
    settings: database.settings,
    async memory() {
      const rss = await statusKiB(`/proc/${mailroom.pid}/status`, 'VmRSS');
      return { kib: rss, rss, processes: 1 };
    },
    async stop() {
      await mailroom.stop();
      await database.drop();
    },
  };
}

async function startDovecot(work: string, hash: string): Promise<Target & { version: string }> {
  const limit = IDLE_CONNECTIONS + BIG_IDLE + PUSH_CONNECTIONS + 500;
  const prepared = await prepareDovecot(work, {
    protocols: ['imap', 'lmtp'],
    passdb: `passdb {\n  driver = passwd-file\n  args = ${join(work, 'dovecot-imap-lmtp', 'passwd')}\n}`,
    extra: `# Dovecot's counterpart of Mailroom's verified-password cache.
auth_cache_size = 10M
auth_cache_ttl = 15 min
auth_cache_verify_password_with_worker = yes
# Room for the IDLE crowd: an imap process each, and every one a client of anvil, auth and stats.
default_process_limit = ${limit}
default_client_limit = ${2 * limit}
protocol imap {
  mail_max_userip_connections = ${limit}
}
# Its own default (1024) is not the default_process_limit.
service imap {
  process_limit = ${limit}
}
`,
  });
  await writeFile(
    join(prepared.dir, 'passwd'),
    USERS.map((address) => `${address}:{ARGON2ID}${hash}::::::\n`).join('') +
      [...IDLERS, ...PUSHERS].map((address) => `${address}:{SHA512-CRYPT}${SHA512_HASH}::::::\n`).join(''),
  );
  const users: string[] = [];
  const idlers: string[] = [];
  for (const address of USERS) users.push(await makeMaildir(prepared.mailDir, address));
  for (const address of IDLERS) idlers.push(await makeMaildir(prepared.mailDir, address));
  for (const address of PUSHERS) await makeMaildir(prepared.mailDir, address);
  for (let n = 0; n < MESSAGES; n++) await storeInMaildirs([users[n % CLIENTS]!], bulk(n), n);
  for (let n = 0; n < IDLE_MESSAGES; n++) await storeInMaildirs(idlers, bulk(n), n);
  const dovecot = await prepared.start();

  // Index every maildir (uidlist, index, cached sizes) without logging in: mailboxes Dovecot
  // has seen before, as Mailroom's are.
  const list = join(work, 'users');
  await writeFile(list, [...USERS, ...IDLERS, ...PUSHERS].join('\n') + '\n');
  execFileSync('doveadm', ['-c', join(prepared.dir, 'dovecot.conf'), 'mailbox', 'status', '-F', list, 'messages vsize', 'INBOX'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return {
    name: 'Dovecot',
    imap: dovecot.ports.imap!,
    lmtp: dovecot.ports.lmtp!,
    log: dovecot.log,
    version: dovecot.version,
    async memory() {
      let pss = 0;
      let rss = 0;
      const tree = await processTree(dovecot.pid);
      for (const pid of tree) {
        pss += await statusKiB(`/proc/${pid}/smaps_rollup`, 'Pss').catch(() => 0);
        rss += await statusKiB(`/proc/${pid}/smaps_rollup`, 'Rss').catch(() => 0);
      }
      return { kib: pss, rss, processes: tree.length };
    },
    stop: () => dovecot.stop(),
  };
}

// ---------------------------------------------------------------------------------------------
// IDLE: memory per connection and push latency.

interface Gathered {
  /** Connection i is on mailbox i % length; fewer than asked when one failed. */
  clients: ImapClient[];
  /** Why no more could be opened; null when all were. */
  failure: string | null;
}

/** `count` connections to `mailboxes`, each logged in, SELECTed and in IDLE; stops at the first failure. */
async function gather(port: number, mailboxes: readonly string[], count: number): Promise<Gathered> {
  const clients: ImapClient[] = [];
  let failure: string | null = null;
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(OPENING, count) }, async () => {
      while (next < count && failure === null) {
        const i = next++;
        try {
          const { client } = await ImapClient.session(port, mailboxes[i % mailboxes.length]!, PASSWORD);
          await client.idle();
          clients[i] = client;
        } catch (error) {
          failure ??= `connection ${i + 1}: ${(error as Error).message}`;
        }
      }
    }),
  );
  return { clients: clients.filter((client) => client !== undefined), failure };
}

/** Server memory after `open` less before, per connection opened, in KiB. */
async function memoryPerConnection(target: Target, open: () => Promise<Gathered>) {
  const before = await target.memory();
  const started = now();
  const { clients, failure } = await open();
  const took = seconds(started);
  // Let the server settle (login processes exit, buffers drain) before reading its memory.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const after = await target.memory();
  return {
    clients,
    failure,
    took,
    perConnection: (after.kib - before.kib) / clients.length,
    rssPerConnection: (after.rss - before.rss) / clients.length,
    processes: after.processes - before.processes,
  };
}

interface Latencies {
  samples: number[];
  /** Deliveries whose EXISTS came before the LMTP reply (counted as 0 ms). */
  early: number;
  /** Deliveries whose EXISTS did not come within 5 s. */
  missed: number;
}

/**
 * PUSH_SENDERS LMTP senders, each delivering to its share of the push mailboxes one message at a
 * time and waiting for the EXISTS at that mailbox's IDLE connection before the next.
 */
async function pushLatency(target: Target, watchers: ImapClient[], label: string): Promise<Latencies> {
  const result: Latencies = { samples: [], early: 0, missed: 0 };
  const senders = await Promise.all(Array.from({ length: PUSH_SENDERS }, () => LmtpConnection.open(target.lmtp)));
  const started = now();
  const deadline = started + BigInt(PUSH_SECONDS * 1e9);
  let sent = 0;
  await Promise.all(
    senders.map(async (sender, s) => {
      for (let round = 0; sent < PUSHES && now() < deadline; round++) {
        const i = (s + round * PUSH_SENDERS) % watchers.length;
        const watcher = watchers[i]!;
        let existsAt = 0n;
        const exists = new Promise<void>((resolve) => {
          watcher.onUntagged = (line) => {
            if (!/^\* \d+ EXISTS/.test(line)) return;
            existsAt = now();
            watcher.onUntagged = null;
            resolve();
          };
        });
        sent++;
        await sender.deliver(pusher(i), dotStuff(message(sent, pusher(i), `push-${label}`)));
        const repliedAt = now();
        let timer: NodeJS.Timeout | undefined;
        const arrived = await Promise.race([
          exists.then(() => true),
          new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 5000))),
        ]);
        clearTimeout(timer);
        if (!arrived) {
          watcher.onUntagged = null;
          result.missed++;
          continue;
        }
        if (existsAt < repliedAt) result.early++;
        result.samples.push(Math.max(0, Number(existsAt - repliedAt) / 1e6));
      }
    }),
  );
  for (const sender of senders) sender.close();
  return result;
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
};

function describe(latencies: Latencies): string {
  const { samples, early, missed } = latencies;
  return (
    `median ${percentile(samples, 50).toFixed(1)} ms, p99 ${percentile(samples, 99).toFixed(1)} ms ` +
    `(${samples.length} pushes${early ? `, ${early} before the LMTP reply` : ''}${missed ? `, ${missed} MISSED (none within 5 s)` : ''})`
  );
}

/** Why the crowd stopped short: the client's error and the server log's last complaints. */
async function explain(target: Target, asked: number, failure: string): Promise<void> {
  console.log(`  ${target.name}: ONLY PART OF THE ${asked} CONNECTIONS ASKED FOR: ${failure}`);
  const log = await readFile(target.log, 'utf8').catch(() => '');
  const complaints = log.split('\n').filter((line) => /error|fatal|warning|limit/i.test(line));
  for (const line of complaints.slice(-5)) console.log(`    ${target.name} log: ${line.slice(0, 300)}`);
}

interface IdleResult {
  perConnection: number;
  rssPerConnection: number;
  connections: number;
  bigPerConnection: number;
  quiet: Latencies;
  crowded: Latencies;
}

async function idleMeasures(target: Target): Promise<IdleResult> {
  const opened: ImapClient[] = [];
  try {
    const { clients: watchers, failure } = await gather(target.imap, PUSHERS, PUSH_CONNECTIONS);
    opened.push(...watchers);
    if (failure !== null) throw new Error(`${target.name}: ${failure}`);
    const quiet = await pushLatency(target, watchers, 'quiet');
    console.log(`  ${target.name}: push latency with ${PUSH_CONNECTIONS} connections in IDLE: ${describe(quiet)}`);

    const crowd = await memoryPerConnection(target, () => gather(target.imap, IDLERS, IDLE_CONNECTIONS));
    opened.push(...crowd.clients);
    console.log(
      `  ${target.name}: ${crowd.clients.length} connections in IDLE (opened in ${crowd.took.toFixed(1)} s, ` +
        `${crowd.processes} more processes): ${crowd.perConnection.toFixed(1)} KiB each` +
        (target.name === 'Dovecot' ? ` (PSS; RSS ${crowd.rssPerConnection.toFixed(1)} KiB)` : ' (RSS)'),
    );
    if (crowd.failure !== null) await explain(target, IDLE_CONNECTIONS, crowd.failure);
    const crowded = await pushLatency(target, watchers, 'crowded');
    console.log(`  ${target.name}: push latency with ${IDLE_CONNECTIONS + PUSH_CONNECTIONS} connections in IDLE: ${describe(crowded)}`);

    const big = await memoryPerConnection(target, () => gather(target.imap, USERS, BIG_IDLE));
    opened.push(...big.clients);
    if (big.failure !== null) await explain(target, BIG_IDLE, big.failure);
    console.log(
      `  ${target.name}: ${big.clients.length} more in IDLE on INBOXes of ${PER_USER} messages: ${big.perConnection.toFixed(1)} KiB each`,
    );
    return {
      perConnection: crowd.perConnection,
      rssPerConnection: crowd.rssPerConnection,
      connections: crowd.clients.length,
      bigPerConnection: big.perConnection,
      quiet,
      crowded,
    };
  } finally {
    for (const client of opened) client.destroy();
  }
}

// ---------------------------------------------------------------------------------------------

async function workersFor(target: Target): Promise<Worker[]> {
  return Promise.all(
    USERS.map(async (address) => {
      const { client, exists } = await ImapClient.session(target.imap, address, PASSWORD);
      const worker: Worker = { client, address, count: exists, uids: [], flagged: new Set(), appended: [] };
      await fetchFlags(worker);
      return worker;
    }),
  );
}

async function main() {
  const work = await mkdtemp(join(tmpdir(), 'mailroom-bench-imap-'));
  const targets: Target[] = [];
  try {
    const hash = await sharedHash(PASSWORD);
    let loading = Date.now();
    const mailroom = await startMailroom(work, hash);
    targets.push(mailroom);
    const mailroomLoad = (Date.now() - loading) / 1000;
    loading = Date.now();
    const dovecot = await startDovecot(work, hash);
    targets.push(dovecot);
    const dovecotLoad = (Date.now() - loading) / 1000;
    const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
    console.log(
      `IMAP: ${CLIENTS} mailboxes × ${PER_USER} × ${MESSAGE_SIZE / 1024} KB messages, ${IDLERS.length} IDLE mailboxes × ` +
        `${IDLE_MESSAGES} (loaded in ${mailroomLoad.toFixed(0)} s and ${dovecotLoad.toFixed(0)} s); ${ROUNDS} run(s) each (alternating)`,
    );
    console.log(`  Mailroom: mailroom serve --only imap,lmtp on ${mailroom.settings}`);
    console.log(
      `  Dovecot:  ${dovecot.version}, maildir, passwd-file passdb, auth_cache_size=10M, limits raised, ` +
        'otherwise defaults (an imap-login and an imap process per connection, no hibernation)',
    );
    console.log(`  Throughput mailboxes on both sides: ${hashParameters(hash)}; IDLE mailboxes: SHA512-CRYPT`);
    console.log(`  Machine: ${availableParallelism()} CPUs, load average ${load()} at the start`);

    const only = (part: string) => ONLY === undefined || ONLY === part;
    const idle = new Map<Target, IdleResult>();
    // First, on servers with little garbage yet: the throughput runs leave Mailroom's heap full
    // of it, and a collection between the two readings made RSS after less than before.
    if (only('idle')) {
      console.log(`IDLE (${IDLE_CONNECTIONS} connections, ${IDLE_PER_MAILBOX} per mailbox; push: ${PUSH_SENDERS} LMTP senders):`);
      // One side at a time: the client holds a socket per connection.
      for (const target of targets) idle.set(target, await idleMeasures(target));
    }

    const rows: { label: string; unit: string; mailroom: number; dovecot: number }[] = [];
    if (only('commands') || only('mixed')) {
      const workers = new Map<Target, Worker[]>();
      for (const target of targets) {
        const ours = await workersFor(target);
        workers.set(target, ours);
        // Untimed: every header and one mailbox's bodies once (page cache, Postgres buffers,
        // Dovecot's cache file; the bodies are shared by the mailboxes on both sides).
        await Promise.all(ours.map((w) => w.client.command('FETCH 1:* (BODY.PEEK[HEADER])')));
        await ours[0]!.client.command('FETCH 1:* (BODY.PEEK[])');
      }
      const measures: { label: string; unit: string; part: string; run(target: Target): Promise<number> }[] = [
        ...CLASSES.map((c) => ({
          label: c.label,
          unit: 'ops/s',
          part: 'commands',
          run: (t: Target) =>
            repeat(workers.get(t)!, SECONDS, async (w) => ((await c.run(w, t.imap)) === false ? 0 : 1)),
        })),
        {
          label: `mixed sessions (17 commands each)`,
          unit: 'commands/s',
          part: 'mixed',
          run: (t: Target) => repeat(workers.get(t)!, MIXED_SECONDS, (w) => mixedSession(w, t.imap)),
        },
      ];
      for (const measure of measures) {
        if (!only(measure.part)) continue;
        const rates = new Map<Target, number[]>(targets.map((t) => [t, []]));
        for (let round = 1; round <= ROUNDS; round++) {
          // Alternating, so a busy moment on the machine does not fall on one side only.
          for (const target of round % 2 === 1 ? targets : [...targets].reverse()) rates.get(target)!.push(await measure.run(target));
        }
        const row = { label: measure.label, unit: measure.unit, mailroom: median(rates.get(mailroom)!), dovecot: median(rates.get(dovecot)!) };
        rows.push(row);
        console.log(
          `${row.label.padEnd(34)} Mailroom ${row.mailroom.toFixed(0).padStart(6)}  Dovecot ${row.dovecot.toFixed(0).padStart(6)} ${row.unit}` +
            `  Mailroom/Dovecot = ${(row.mailroom / row.dovecot).toFixed(2)}` +
            (ROUNDS > 1 ? `  (runs: ${[...rates.values()].map((r) => r.map((x) => x.toFixed(0)).join('/')).join(' vs ')})` : ''),
        );
      }
      for (const ours of workers.values()) await Promise.all(ours.map((w) => w.client.logout()));
    }

    console.log(`\nLoad average ${load()} at the end.`);
    console.log('Summary (Mailroom/Dovecot; targets from issue 5):');
    for (const row of rows) console.log(`  ${row.label.padEnd(34)} ${(row.mailroom / row.dovecot).toFixed(2)}`);
    const summary: SummaryRow[] = rows.map(({ label, ...row }) => ({ name: `IMAP ${label}`, ...row }));
    const mixed = rows.find((row) => row.unit === 'commands/s');
    if (mixed) {
      const ratio = mixed.mailroom / mixed.dovecot;
      console.log(`  mixed workload throughput          ${ratio.toFixed(2)}  (target ≥ 0.70: ${ratio >= 0.7 ? 'met' : 'NOT met'})`);
      summary.find((row) => row.unit === 'commands/s')!.target = { text: 'ratio ≥ 0.70', met: ratio >= 0.7 };
    }
    const ours = idle.get(mailroom);
    const theirs = idle.get(dovecot);
    if (ours && theirs) {
      console.log(
        `  KiB per IDLE connection (${ours.connections}): Mailroom ${ours.perConnection.toFixed(1)}, Dovecot ${theirs.perConnection.toFixed(1)} PSS ` +
          `(${theirs.rssPerConnection.toFixed(1)} RSS); ratio ${(ours.perConnection / theirs.perConnection).toFixed(2)} ` +
          `(target ≤ 50 KiB: ${ours.perConnection <= 0 ? 'not measured: RSS fell between the readings' : ours.perConnection <= 50 ? 'met' : 'NOT met'})`,
      );
      console.log(
        `  KiB per IDLE connection on ${PER_USER}-message INBOXes: Mailroom ${ours.bigPerConnection.toFixed(1)}, Dovecot ${theirs.bigPerConnection.toFixed(1)}`,
      );
      const p99 = percentile(ours.crowded.samples, 99);
      console.log(`  IDLE push, Mailroom, crowd open: ${describe(ours.crowded)} (target p99 < 100 ms: ${p99 < 100 ? 'met' : 'NOT met'})`);
      console.log(`  IDLE push, Dovecot,  crowd open: ${describe(theirs.crowded)}`);
      summary.push(
        {
          name: `IMAP memory per IDLE connection (${ours.connections}; Dovecot: PSS)`,
          mailroom: ours.perConnection,
          dovecot: theirs.perConnection,
          unit: 'KiB',
          target: { text: 'Mailroom ≤ 50 KiB', met: ours.perConnection > 0 && ours.perConnection <= 50 },
        },
        {
          name: `IMAP IDLE push p99, ${IDLE_CONNECTIONS + PUSH_CONNECTIONS} connections`,
          mailroom: p99,
          dovecot: percentile(theirs.crowded.samples, 99),
          unit: 'ms',
          target: { text: 'Mailroom < 100 ms', met: p99 < 100 },
        },
      );
    }
    await writeSummary(summary);
  } finally {
    for (const target of targets.reverse()) await target.stop().catch((error) => console.error(`stopping ${target.name}:`, error));
    if (PROFILE) console.log(`CPU profile of Mailroom in ${join(work, 'profile')}`);
    else await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
