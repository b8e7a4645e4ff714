/**
 * POP3, Mailroom beside Dovecot's pop3d on the same machine in the same run:
 *
 * - download throughput: RETR of every message of a mailbox of 2,000 × 20 KB messages, in MB/s
 *   (10^6 octets of message per second, as LIST counts them), by one client in lock-step (as
 *   fetchmail and Thunderbird do), by one client pipelining, and by a few clients at once, each
 *   on a mailbox of its own holding a share of the same messages;
 * - login rate: USER/PASS/QUIT per second with several concurrent clients, each on a mailbox of
 *   its own holding 10 messages, all with the same argon2id hash (Mailroom's own parameters:
 *   m=19456, t=2, p=1). "cold": the first login of each mailbox, an argon2id verification on
 *   both sides; "warm": the same mailboxes again and again, where Mailroom answers from its
 *   verified-password cache and Dovecot has its auth cache on (auth_cache_size = 10M,
 *   auth_cache_verify_password_with_worker = yes). Dovecot's cache saves the passdb lookup but
 *   verifies the password against the cached hash again, so its warm rate stays near its cold one.
 *
 *   npm run bench:pop3       (Postgres from DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres)
 *
 * Mailroom runs as `mailroom serve --only pop3` on a fresh database, loaded through the mail
 * store in-process beforehand and ANALYZEd. Dovecot (Debian's dovecot-pop3d) runs as an
 * unprivileged instance under /tmp with maildir storage (files written directly, LF line ends
 * and S=/W= sizes in their names as Dovecot's own delivery writes them, indexed with doveadm
 * before the clock starts), a passwd-file passdb holding the same hash, and otherwise its
 * defaults (one pop3-login and one pop3 process per connection). Every timed download checks
 * that each message arrived with the size LIST gave. Knobs: BENCH_MESSAGES (default 2000), BENCH_ROUNDS (3; the median run counts),
 * BENCH_DOWNLOADERS (4), BENCH_LOGIN_CLIENTS (8), BENCH_LOGIN_SECONDS (5), BENCH_COLD_LOGINS
 * (200 per round), BENCH_PIPELINE (16 commands in flight), BENCH_PROFILE=1 (a CPU profile of Mailroom in
 * the working directory, kept), BENCH_ONLY=download|login (only those measures).
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, makeMaildir, prepareDovecot, storeInMaildirs } from './dovecot.js';
import { BENCH_ACTOR, createBenchDatabase, hashParameters, MESSAGE_SIZE, median, message, sharedHash, spawnMailroom, withServices } from './fixtures.js';
import { Pop3Client } from './pop3-client.js';
import { writeSummary } from './summary.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DOWNLOADERS = Number(process.env.BENCH_DOWNLOADERS ?? 4);
const LOGIN_CLIENTS = Number(process.env.BENCH_LOGIN_CLIENTS ?? 8);
const LOGIN_SECONDS = Number(process.env.BENCH_LOGIN_SECONDS ?? 5);
const COLD_LOGINS = Number(process.env.BENCH_COLD_LOGINS ?? 200);
const PIPELINE = Number(process.env.BENCH_PIPELINE ?? 16);
const PROFILE = process.env.BENCH_PROFILE === '1';
/** `download` or `login`: only those measures (e.g. for a profile). */
const ONLY = process.env.BENCH_ONLY;
const LOGIN_MESSAGES = 10;
const DOMAIN = 'bench.example';
const PASSWORD = 'a bench passphrase';

// The mailboxes, the same on both sides.
const BIG = `big@${DOMAIN}`;
const share = (i: number) => `share${i}@${DOMAIN}`;
const warm = (i: number) => `warm${i}@${DOMAIN}`;
const cold = (i: number) => `cold${i}@${DOMAIN}`;
const SHARES = Array.from({ length: DOWNLOADERS }, (_, i) => share(i));
const WARM = Array.from({ length: LOGIN_CLIENTS }, (_, i) => warm(i));
// A fresh set of never-used mailboxes for each round of cold logins.
const COLD = Array.from({ length: COLD_LOGINS * ROUNDS }, (_, i) => cold(i));

/** Which mailboxes get message n: every one goes to BIG and to one of the shares. */
const bulk = (n: number) => ({ raw: message(n, BIG, 'pop3'), to: [BIG, share(n % DOWNLOADERS)] });
const small = (n: number) => message(100_000 + n, `reader@${DOMAIN}`, 'pop3');

// ---------------------------------------------------------------------------------------------
// The two servers.

interface Target {
  name: string;
  port: number;
  stop(): Promise<void>;
}

async function startMailroom(work: string, hash: string): Promise<Target & { settings: string }> {
  const database = await createBenchDatabase();
  await withServices(database.url, async (services) => {
    await services.domains.create({ name: DOMAIN }, BENCH_ACTOR);
    for (const address of [BIG, ...SHARES, ...WARM, ...COLD]) {
      await services.mailboxes.create({ address, passwordHash: `{ARGON2ID}${hash}` }, BENCH_ACTOR);
    }
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < MESSAGES) {
          const { raw, to } = bulk(next++);
          await services.mail.deliver(raw, to);
        }
      }),
    );
    // One stored copy each, delivered to every login mailbox at once.
    for (let n = 0; n < LOGIN_MESSAGES; n++) await services.mail.deliver(small(n), [...WARM, ...COLD]);
  });
  // Without statistics, right after the bulk load, Postgres reads a message through the
  // (account, folder, modseq) index and filters every row of the folder: each RETR costs
  // O(messages in the INBOX).
  await database.analyze();

  const port = await freePort();
  const mailroom = await spawnMailroom({
    work,
    databaseUrl: database.url,
    parts: ['pop3'],
    env: { MAILROOM_POP3_PORT: String(port), MAILROOM_POP3S_PORT: 'off' },
    port,
    ...(PROFILE ? { profileDir: join(work, 'profile') } : {}),
  });
  return {
    name: 'Mailroom',
    port,
    settings: database.settings,
    async stop() {
      await mailroom.stop();
      await database.drop();
    },
  };
}

async function startDovecot(work: string, hash: string): Promise<Target & { version: string }> {
  const all = [BIG, ...SHARES, ...WARM, ...COLD];
  const prepared = await prepareDovecot(work, {
    protocols: ['pop3'],
    passdb: `passdb {\n  driver = passwd-file\n  args = ${join(work, 'dovecot-pop3', 'passwd')}\n}`,
    // Dovecot's counterpart of Mailroom's verified-password cache; Mailroom's lives 15 minutes.
    extra: 'auth_cache_size = 10M\nauth_cache_ttl = 15 min\nauth_cache_verify_password_with_worker = yes\n',
  });
  await writeFile(join(prepared.dir, 'passwd'), all.map((address) => `${address}:{ARGON2ID}${hash}::::::\n`).join(''));

  const boxes = new Map<string, string>();
  for (const address of all) boxes.set(address, await makeMaildir(prepared.mailDir, address));
  const store = (address: string, raw: Buffer, n: number) => storeInMaildirs([boxes.get(address)!], raw, n);
  for (let n = 0; n < MESSAGES; n++) {
    const { raw, to } = bulk(n);
    for (const address of to) await store(address, raw, n);
  }
  for (let n = 0; n < LOGIN_MESSAGES; n++) {
    for (const address of [...WARM, ...COLD]) await store(address, small(n), n);
  }
  const dovecot = await prepared.start();

  // Index every maildir (uidlist, index, cached sizes) without logging in: a mailbox Dovecot
  // has seen before, as Mailroom's are, and the auth cache still empty.
  const users = join(work, 'users');
  await writeFile(users, all.join('\n') + '\n');
  execFileSync('doveadm', ['-c', join(prepared.dir, 'dovecot.conf'), 'mailbox', 'status', '-F', users, 'messages vsize', 'INBOX'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { name: 'Dovecot', port: dovecot.port, version: dovecot.version, stop: () => dovecot.stop() };
}

// ---------------------------------------------------------------------------------------------
// The measurements.

/** Whole sessions, in parallel: log in, LIST, RETR everything, QUIT. Answers MB/s. */
async function download(port: number, mailboxes: string[], window: number): Promise<number> {
  const started = process.hrtime.bigint();
  const octets = await Promise.all(
    mailboxes.map(async (mailbox) => {
      const client = await Pop3Client.login(port, mailbox, PASSWORD);
      const sizes = await client.list();
      if (sizes.length === 0) throw new Error(`${mailbox} is empty`);
      const got = await client.retrieveAll(sizes, window);
      await client.quit();
      return got;
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return octets.reduce((a, b) => a + b, 0) / 1e6 / seconds;
}

async function loginOnce(port: number, mailbox: string): Promise<void> {
  const client = await Pop3Client.login(port, mailbox, PASSWORD);
  await client.quit();
}

/** Each mailbox of `queue` logged into once, by LOGIN_CLIENTS clients at a time. Answers logins/s. */
async function coldLogins(port: number, queue: string[]): Promise<number> {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: LOGIN_CLIENTS }, async () => {
      while (next < queue.length) await loginOnce(port, queue[next++]!);
    }),
  );
  return queue.length / (Number(process.hrtime.bigint() - started) / 1e9);
}

/** LOGIN_CLIENTS clients, each logging into its own mailbox again and again for LOGIN_SECONDS. */
async function warmLogins(port: number): Promise<number> {
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(LOGIN_SECONDS * 1e9);
  let logins = 0;
  await Promise.all(
    WARM.map(async (mailbox) => {
      while (process.hrtime.bigint() < deadline) {
        await loginOnce(port, mailbox);
        logins++;
      }
    }),
  );
  return logins / (Number(process.hrtime.bigint() - started) / 1e9);
}

interface Measure {
  label: string;
  unit: string;
  run(target: Target, round: number): Promise<number>;
}

async function main() {
  const work = await mkdtemp(join(tmpdir(), 'mailroom-bench-pop3-'));
  const targets: Target[] = [];
  try {
    const hash = await sharedHash(PASSWORD);
    const loading = Date.now();
    const mailroom = await startMailroom(work, hash);
    targets.push(mailroom);
    const dovecot = await startDovecot(work, hash);
    targets.push(dovecot);
    const perShare = Math.ceil(MESSAGES / DOWNLOADERS);

    console.log(
      `POP3: ${MESSAGES} × ${MESSAGE_SIZE / 1024} KB messages (loaded in ${((Date.now() - loading) / 1000).toFixed(0)} s), ` +
        `${ROUNDS} runs each (alternating), median run counts`,
    );
    console.log(`  Mailroom: mailroom serve --only pop3 on ${mailroom.settings}`);
    console.log(
      `  Dovecot:  ${dovecot.version}, maildir, passwd-file passdb, auth_cache_size=10M (verified by workers), ` +
        'otherwise defaults (pop3-login and pop3 service_count=1: a process each per connection)',
    );
    console.log(`  Both verify the same hash: ${hashParameters(hash)}`);
    const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
    console.log(`  Machine: ${availableParallelism()} CPUs, load average ${load()} at the start`);

    const measures: Measure[] = [
      { label: 'download, 1 client, lock-step', unit: 'MB/s', run: (t) => download(t.port, [BIG], 1) },
      { label: `download, 1 client, ${PIPELINE} pipelined`, unit: 'MB/s', run: (t) => download(t.port, [BIG], PIPELINE) },
      {
        label: `download, ${DOWNLOADERS} clients × ${perShare} messages, lock-step`,
        unit: 'MB/s',
        run: (t) => download(t.port, SHARES, 1),
      },
      {
        label: `login cold (argon2id), ${LOGIN_CLIENTS} clients × ${COLD_LOGINS} mailboxes`,
        unit: 'logins/s',
        run: (t, round) => coldLogins(t.port, COLD.slice((round - 1) * COLD_LOGINS, round * COLD_LOGINS)),
      },
      { label: `login warm (cached), ${LOGIN_CLIENTS} clients`, unit: 'logins/s', run: (t) => warmLogins(t.port) },
    ];

    // Untimed: a full download on each side (page cache, Postgres buffers, Dovecot's index
    // cache), and one login into each warm mailbox (the caches hold them from then on).
    for (const target of targets) {
      await download(target.port, [BIG], 1);
      await download(target.port, SHARES, 1);
      await Promise.all(WARM.map((mailbox) => loginOnce(target.port, mailbox)));
    }

    const results: { measure: Measure; mailroom: number; dovecot: number }[] = [];
    for (const measure of measures) {
      if (ONLY !== undefined && !measure.label.startsWith(ONLY)) continue;
      console.log(`${measure.label}:`);
      const rates = new Map<Target, number[]>(targets.map((t) => [t, []]));
      for (let round = 1; round <= ROUNDS; round++) {
        // Alternating, so a busy moment on the machine does not fall on one side only.
        for (const target of round % 2 === 1 ? targets : [...targets].reverse()) {
          const rate = await measure.run(target, round);
          rates.get(target)!.push(rate);
          console.log(`  run ${round} ${target.name.padEnd(8)} ${rate.toFixed(1).padStart(8)} ${measure.unit}`);
        }
      }
      results.push({ measure, mailroom: median(rates.get(mailroom)!), dovecot: median(rates.get(dovecot)!) });
    }

    console.log('\nMedians:');
    for (const { measure, mailroom: m, dovecot: d } of results) {
      console.log(`${measure.label}:`);
      console.log(`  Mailroom: ${m.toFixed(1)} ${measure.unit}`);
      console.log(`  Dovecot:  ${d.toFixed(1)} ${measure.unit}`);
      console.log(`  Mailroom/Dovecot = ${(m / d).toFixed(2)}`);
    }
    const ratio = (index: number) => {
      const result = results.find((r) => r.measure === measures[index]);
      return result ? (result.mailroom / result.dovecot).toFixed(2) : 'not measured';
    };
    console.log(`\nLoad average ${load()} at the end.`);
    console.log(`throughput (1 client, lock-step): Mailroom/Dovecot = ${ratio(0)}`);
    console.log(`login rate (cold, argon2id):     Mailroom/Dovecot = ${ratio(3)}`);
    console.log(`login rate (warm, cached):       Mailroom/Dovecot = ${ratio(4)}`);
    // Issue 4: download MB/s and login rate at least Dovecot's.
    await writeSummary(
      results.map(({ measure, mailroom: m, dovecot: d }) => ({
        name: `POP3 ${measure.label}`,
        mailroom: m,
        dovecot: d,
        unit: measure.unit,
        target: { text: 'ratio ≥ 1.00', met: m / d >= 1 },
      })),
    );
  } finally {
    for (const target of targets.reverse()) await target.stop().catch((error) => console.error(`stopping ${target.name}:`, error));
    if (PROFILE) console.log(`CPU profile of Mailroom in ${join(work, 'profile')}`);
    else await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
