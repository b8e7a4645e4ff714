/**
 * IMAP on one large folder, Mailroom beside Dovecot's imapd on the same machine, the same
 * messages, in the same run: an INBOX of BENCH_LARGE_MESSAGES (100,000) small messages (subjects
 * with Re:/Fwd:/[list] prefixes, 5-message reply threads with References, distinct Date headers).
 *
 * - SORT (REVERSE DATE) UTF-8 ALL, SORT (SUBJECT) UTF-8 ALL and THREAD REFERENCES UTF-8 ALL: the
 *   time to the tagged OK, the first run (Dovecot then reads every message for its cache; Mailroom
 *   sorts columns filled at delivery) and the median of BENCH_ROUNDS more; the two servers'
 *   answers are compared (the messages leave no room for a tie or a choice, so they should agree);
 * - resynchronisation: SELECT INBOX, and SELECT INBOX (QRESYNC (uidvalidity modseq)) with the
 *   HIGHESTMODSEQ of before BENCH_LARGE_CHANGED (1,000) messages were flagged and
 *   BENCH_LARGE_EXPUNGED (100) others expunged: VANISHED (EARLIER) and a FETCH per changed
 *   message; median of BENCH_ROUNDS.
 *
 * Times, so Mailroom/Dovecot below 1 means Mailroom is faster. Each measure alternates between
 * the sides, one client each, nothing else running on either server.
 *
 *   npm run bench:imap-large    (Postgres from DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres)
 *
 * Mailroom runs as `mailroom serve --only imap` on a fresh database loaded through the mail store
 * (MULTIAPPEND's path: every message indexed as delivery indexes it), then VACUUM ANALYZEd, as
 * autovacuum leaves a table that has stopped growing. Dovecot (Debian's dovecot-imapd) runs as
 * an unprivileged instance with maildir storage: the files are written directly, then indexed with
 * doveadm before the clock starts (uidlist, index; not the header cache, which its first SORT fills).
 *
 * Knobs: BENCH_LARGE_MESSAGES (100000), BENCH_LARGE_CHANGED (1000), BENCH_LARGE_EXPUNGED (100),
 * BENCH_ROUNDS (5).
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort, makeMaildir, prepareDovecot, storeInMaildirs } from './dovecot.js';
import { BENCH_ACTOR, createBenchDatabase, hashParameters, median, sharedHash, spawnMailroom, withServices } from './fixtures.js';
import { writeSummary } from './summary.js';
import { ImapClient } from './imap-client.js';

const knob = (name: string, fallback: number) => Number(process.env[`BENCH_${name}`] ?? fallback);
const MESSAGES = knob('LARGE_MESSAGES', 100_000);
const CHANGED = knob('LARGE_CHANGED', 1000);
const EXPUNGED = knob('LARGE_EXPUNGED', 100);
const ROUNDS = knob('ROUNDS', 5);
const ADDRESS = 'large@bench.example';
const PASSWORD = 'a bench passphrase';
/** Messages per MULTIAPPEND transaction while loading Mailroom. */
const LOAD_BATCH = 1000;

const now = () => process.hrtime.bigint();
const ms = (since: bigint) => Number(now() - since) / 1e6;

/**
 * Message n (0-based): threads of five (an original, then replies naming their ancestors), 2,000
 * topics, a few list tags and forwards, and a Date no other message has (a permutation of n), so
 * both servers must give exactly the same SORT answers.
 */
function largeMessage(n: number): Buffer {
  const thread = Math.floor(n / 5);
  const position = n % 5;
  const topic = `Topic ${thread % 2000}`;
  const subject =
    position === 0 ? (thread % 7 === 0 ? `[list] ${topic}` : topic) : position === 4 ? `Fwd: Re: ${topic}` : `Re: ${topic}`;
  const ancestors = Array.from({ length: position }, (_, i) => `<${thread * 5 + i}.large@bench.example>`).join(' ');
  const date = new Date(Date.UTC(2025, 0, 1) + ((n * 7919) % MESSAGES) * 60_000);
  const head = [
    `From: Sender ${n % 997} <sender${(n * 31) % 1000}@example.org>`,
    `To: team${n % 50}@bench.example`,
    `Subject: ${subject}`,
    `Date: ${date.toUTCString()}`,
    `Message-ID: <${n}.large@bench.example>`,
    ...(position > 0 ? [`References: ${ancestors}`, `In-Reply-To: <${n - 1}.large@bench.example>`] : []),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
  ];
  const body = `Message ${n} of the large folder. ${'The quick brown fox jumps over the lazy dog. '.repeat(8)}\r\n`;
  return Buffer.from(`${head.join('\r\n')}\r\n\r\n${body}`);
}

/** UIDs spread over the folder: `count` of them, every `step`-th from `first` (1-based, as loaded). */
const spread = (count: number, first: number) => {
  const step = Math.max(1, Math.floor(MESSAGES / count));
  return Array.from({ length: count }, (_, i) => first + i * step).filter((uid) => uid <= MESSAGES);
};
const FLAGGED = spread(CHANGED, 1);
const GONE = spread(EXPUNGED, 3);

interface Target {
  name: string;
  imap: number;
  stop(): Promise<void>;
}

async function startMailroom(work: string, hash: string): Promise<Target & { settings: string }> {
  const database = await createBenchDatabase();
  await database.load(async (url) => {
    await withServices(url, async (services) => {
      await services.domains.create({ name: 'bench.example' }, BENCH_ACTOR);
      await services.mailboxes.create({ address: ADDRESS, passwordHash: `{ARGON2ID}${hash}` }, BENCH_ACTOR);
      const { id } = await services.mailboxes.find(ADDRESS, BENCH_ACTOR);
      for (let first = 0; first < MESSAGES; first += LOAD_BATCH) {
        const batch = Array.from({ length: Math.min(LOAD_BATCH, MESSAGES - first) }, (_, i) => ({ raw: largeMessage(first + i) }));
        await services.mail.appendMany(id, 'INBOX', batch);
      }
    });
  });
  // Index-only scans need the visibility map that autovacuum would have written by now.
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  await client.query('vacuum analyze messages');
  await client.end();
  const imap = await freePort();
  const mailroom = await spawnMailroom({
    work,
    databaseUrl: database.url,
    parts: ['imap'],
    env: { MAILROOM_IMAP_PORT: String(imap), MAILROOM_IMAPS_PORT: 'off' },
    port: imap,
  });
  return {
    name: 'Mailroom',
    imap,
    settings: database.settings,
    async stop() {
      await mailroom.stop();
      await database.drop();
    },
  };
}

async function startDovecot(work: string, hash: string): Promise<Target & { version: string }> {
  const prepared = await prepareDovecot(work, {
    protocols: ['imap'],
    passdb: `passdb {\n  driver = passwd-file\n  args = ${join(work, 'dovecot-imap', 'passwd')}\n}`,
  });
  await writeFile(join(prepared.dir, 'passwd'), `${ADDRESS}:{ARGON2ID}${hash}::::::\n`);
  const box = await makeMaildir(prepared.mailDir, ADDRESS);
  for (let n = 0; n < MESSAGES; n++) await storeInMaildirs([box], largeMessage(n), n);
  const dovecot = await prepared.start();
  // The uidlist and index, as for a mailbox Dovecot has seen before (Mailroom's rows exist too).
  execFileSync('doveadm', ['-c', join(prepared.dir, 'dovecot.conf'), 'mailbox', 'status', '-u', ADDRESS, 'messages vsize', 'INBOX'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { name: 'Dovecot', imap: dovecot.ports.imap!, version: dovecot.version, stop: () => dovecot.stop() };
}

/** A logged-in connection with QRESYNC enabled (nothing selected). */
async function connectTo(target: Target): Promise<ImapClient> {
  const client = await ImapClient.open(target.imap);
  await client.command(`LOGIN ${ADDRESS} "${PASSWORD}"`);
  await client.command('ENABLE QRESYNC');
  return client;
}

/** The command's time in ms and its untagged answer. */
async function timed(client: ImapClient, command: string): Promise<{ ms: number; untagged: string[] }> {
  const started = now();
  const reply = await client.command(command);
  return { ms: ms(started), untagged: reply.untagged };
}

interface Row {
  label: string;
  first?: [number, number];
  median: [number, number];
  runs: [number[], number[]];
  /** Whether both servers answered the same, and how the answers differ when they did not. */
  agreement: string;
}

const ratio = (pair: [number, number]) => (pair[0] / pair[1]).toFixed(2);

/** Whether two answers are the same; where they are not, both, cut short. */
function agreement(answers: string[]): string {
  if (answers[0] === answers[1]) return 'same answers';
  return `ANSWERS DIFFER: Mailroom ${answers[0]!.slice(0, 120)}… Dovecot ${answers[1]!.slice(0, 120)}…`;
}

/** First run (both sides), then ROUNDS alternating; `commands[i]` for side i. */
async function measure(label: string, sides: [ImapClient, ImapClient], commands: [string, string], answer: (untagged: string[]) => string): Promise<Row> {
  const firsts = [await timed(sides[0], commands[0]), await timed(sides[1], commands[1])];
  const runs: [number[], number[]] = [[], []];
  for (let round = 0; round < ROUNDS; round++) {
    for (const side of round % 2 === 0 ? [0, 1] : [1, 0]) runs[side]!.push((await timed(sides[side]!, commands[side]!)).ms);
  }
  return {
    label,
    first: [firsts[0]!.ms, firsts[1]!.ms],
    median: [median(runs[0]), median(runs[1])],
    runs,
    agreement: agreement(firsts.map((run) => answer(run.untagged))),
  };
}

/** The same change on both sides, made by a session of its own: flags set on some, others expunged. */
async function change(target: Target): Promise<{ uidValidity: number; modseq: number }> {
  const client = await connectTo(target);
  const selected = await client.command('SELECT INBOX');
  const uidValidity = Number(/\[UIDVALIDITY (\d+)\]/.exec(selected.untagged.join('\n'))?.[1]);
  const modseq = Number(/\[HIGHESTMODSEQ (\d+)\]/.exec(selected.untagged.join('\n'))?.[1]);
  if (!uidValidity || !modseq) throw new Error(`${target.name}: SELECT told no UIDVALIDITY or HIGHESTMODSEQ`);
  await client.command(`UID STORE ${FLAGGED.join(',')} +FLAGS.SILENT (\\Flagged)`);
  await client.command(`UID STORE ${GONE.join(',')} +FLAGS.SILENT (\\Deleted)`);
  await client.command(`UID EXPUNGE ${GONE.join(',')}`);
  await client.logout();
  return { uidValidity, modseq };
}

/** What a resync told: how many FETCHes and VANISHED UIDs (each side must tell the same). */
function resyncAnswer(untagged: string[]): string {
  const fetches = untagged.filter((line) => / FETCH \(/.test(line)).length;
  const vanished = untagged.find((line) => line.startsWith('* VANISHED (EARLIER) '))?.slice(21) ?? 'none';
  const exists = untagged.find((line) => / EXISTS$/.test(line));
  return `${exists}, ${fetches} FETCH, VANISHED (EARLIER) ${vanished}`;
}

async function main() {
  const work = await mkdtemp(join(tmpdir(), 'mailroom-bench-imap-large-'));
  const targets: Target[] = [];
  const clients: ImapClient[] = [];
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
      `IMAP, one folder of ${MESSAGES.toLocaleString('en')} messages (loaded in ${mailroomLoad.toFixed(0)} s and ${dovecotLoad.toFixed(0)} s); ` +
        `first run, then the median of ${ROUNDS} (alternating); times in ms, Mailroom/Dovecot < 1: Mailroom faster`,
    );
    console.log(`  Mailroom: mailroom serve --only imap on ${mailroom.settings}`);
    console.log(`  Dovecot:  ${dovecot.version}, maildir, passwd-file passdb, otherwise defaults; both: ${hashParameters(hash)}`);
    console.log(`  Machine: ${availableParallelism()} CPUs, load average ${load()} at the start`);

    const sides = [await connectTo(mailroom), await connectTo(dovecot)] as [ImapClient, ImapClient];
    clients.push(...sides);
    for (const side of sides) await side.command('SELECT INBOX');
    const rows: Row[] = [];
    const line = (untagged: string[], name: string) => untagged.find((l) => l.startsWith(`* ${name}`)) ?? `(no ${name})`;
    const both = (command: string): [string, string] => [command, command];
    rows.push(await measure('SORT (REVERSE DATE) UTF-8 ALL', sides, both('SORT (REVERSE DATE) UTF-8 ALL'), (u) => line(u, 'SORT')));
    rows.push(await measure('SORT (SUBJECT) UTF-8 ALL', sides, both('SORT (SUBJECT) UTF-8 ALL'), (u) => line(u, 'SORT')));
    rows.push(await measure('THREAD REFERENCES UTF-8 ALL', sides, both('THREAD REFERENCES UTF-8 ALL'), (u) => line(u, 'THREAD')));
    for (const side of sides) await side.command('UNSELECT');

    const before = await Promise.all(targets.map((target) => change(target)));
    const select = await measure('SELECT INBOX', sides, both('SELECT INBOX'), (u) => `${u.find((l) => / EXISTS$/.test(l))}`);
    delete select.first;
    rows.push(select);
    // Each side's own UIDVALIDITY and MODSEQ from before the change.
    const resync = (i: number) => `SELECT INBOX (QRESYNC (${before[i]!.uidValidity} ${before[i]!.modseq}))`;
    const label = `SELECT … QRESYNC, ${FLAGGED.length} flagged, ${GONE.length} expunged`;
    const resynced = await measure(label, sides, [resync(0), resync(1)], resyncAnswer);
    delete resynced.first;
    rows.push(resynced);

    for (const row of rows) {
      const first = row.first ? `first ${row.first[0].toFixed(0)} / ${row.first[1].toFixed(0)}, ` : '';
      console.log(
        `${row.label.padEnd(46)} ${first}median Mailroom ${row.median[0].toFixed(0).padStart(5)}  Dovecot ${row.median[1].toFixed(0).padStart(5)} ms` +
          `  Mailroom/Dovecot = ${ratio(row.median)}` +
          `  (runs: ${row.runs.map((r) => r.map((x) => x.toFixed(0)).join('/')).join(' vs ')}; ${row.agreement})`,
      );
    }
    console.log(`\nLoad average ${load()} at the end.`);
    console.log('Summary (Mailroom/Dovecot, time of the median run; below 1: Mailroom faster):');
    for (const row of rows) console.log(`  ${row.label.padEnd(46)} ${ratio(row.median)}${row.first ? `  (first run: ${ratio(row.first)})` : ''}`);
    await writeSummary(rows.map((row) => ({ name: `IMAP 100k ${row.label}`, mailroom: row.median[0], dovecot: row.median[1], unit: 'ms' })));
  } finally {
    for (const client of clients) client.destroy();
    for (const target of targets.reverse()) await target.stop().catch((error) => console.error(`stopping ${target.name}:`, error));
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
