/**
 * How Mailroom's costs grow with the size of the installation. On a database filled by
 * bench/seed.ts, Mailroom runs as `mailroom serve --only api,imap,pop3` and is measured:
 *
 * - API, one keep-alive client, one request at a time, p50 and p99 over --requests requests
 *   (after 20 untimed): GET /v1/mailboxes pages walked through the cursor; the first page of an
 *   address-prefix search (?q=<first name>, 1/20 of the mailboxes match); the first page of a
 *   filter (?status=suspended, 1% match); GET one mailbox (random addresses); the largest
 *   domain's mailboxes (?domain=domain1.example) walked page by page; GET /v1/domains pages (each
 *   domain with its mailbox count) and GET /v1/domains/domain1.example;
 * - IMAP on big@domain1.example (an INBOX of K/10 messages: 100,000 at K = 1M), --rounds fresh
 *   connections: LOGIN, SELECT INBOX, UID FETCH 1:* (FLAGS), FETCH of the last 50 ENVELOPEs;
 * - POP3 on pop@domain1.example (K/20 messages in INBOX): USER+PASS (the login lists the maildrop),
 *   STAT, UIDL, QUIT;
 * - the RSS of the Mailroom process after each (VmRSS, and VmHWM at the end).
 * The first round of each mail command is reported apart (cold: the first read of those rows since
 * Mailroom started, the first login's argon2id verification), the others as their median.
 *
 *   npm run bench:scale                          the three sizes, each seeded, measured and dropped
 *   npm run bench:scale -- --database NAME       one database seeded by bench:seed, kept
 *
 * Knobs: --sizes (mailboxes/domains/messages,… default 1000/10/10000,10000/100/100000,100000/1000/1000000),
 * --requests (300), --rounds (5), --keep (leave the seeded databases). Postgres from DATABASE_URL,
 * else postgres://postgres@127.0.0.1:5432/postgres.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { freePort } from './dovecot.js';
import { median, SERVER_URL, spawnMailroom } from './fixtures.js';
import { ImapClient } from './imap-client.js';
import { Pop3Client } from './pop3-client.js';
import { BIG, databaseUrl, defaultSeedOptions, describeSeed, dropDatabase, POP, seed, SEED_PASSWORD, type SeedReport } from './seed.js';
import { FIRST_NAMES } from './seed-messages.js';

const { values: args } = parseArgs({
  options: {
    database: { type: 'string' },
    sizes: { type: 'string', default: '1000/10/10000,10000/100/100000,100000/1000/1000000' },
    requests: { type: 'string', default: '300' },
    rounds: { type: 'string', default: '5' },
    keep: { type: 'boolean', default: false },
  },
  strict: true,
});
const REQUESTS = Number(args.requests);
const ROUNDS = Number(args.rounds);
const WARMUP = 20;
const TOKEN = 'scale-bench-admin-token-0123456789';
const LARGEST_DOMAIN = 'domain1.example';

const now = () => process.hrtime.bigint();
const millis = (since: bigint) => Number(now() - since) / 1e6;
const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!;

// ---------------------------------------------------------------------------------------------

interface Row {
  label: string;
  /** e.g. "4.1 / 9.8" */
  value: string;
}

async function memory(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)![1]);
  return { rss: kib('VmRSS') / 1024, hwm: kib('VmHWM') / 1024 };
}
const mb = (value: number) => `${value.toFixed(0)} MB`;

async function measure(url: string): Promise<Row[]> {
  const rows: Row[] = [];
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const facts = (
    await db.query(
      `select (select count(*) from accounts) as mailboxes, (select count(*) from messages) as messages,
              (select message_count from folders f join accounts a on a.id = f.account_id where a.address = $1 and f.name = 'INBOX') as big,
              (select message_count from folders f join accounts a on a.id = f.account_id where a.address = $2 and f.name = 'INBOX') as pop,
              (select count(*) from accounts a join domains d on d.id = a.domain_id where d.name = $3) as largest`,
      [BIG, POP, LARGEST_DOMAIN],
    )
  ).rows[0] as Record<string, string>;
  const addresses = (await db.query('select address from accounts order by random() limit $1', [REQUESTS + WARMUP])).rows.map(
    (row) => row.address as string,
  );
  await db.end();
  const [bigCount, popCount] = [Number(facts.big), Number(facts.pop)];

  const work = await mkdtemp(join(tmpdir(), 'mailroom-bench-scale-'));
  const [http, imapPort, pop3Port] = [await freePort(), await freePort(), await freePort()];
  const mailroom = await spawnMailroom({
    work,
    databaseUrl: url,
    parts: ['api', 'imap', 'pop3'],
    env: {
      MAILROOM_HTTP_PORT: String(http),
      MAILROOM_IMAP_PORT: String(imapPort),
      MAILROOM_IMAPS_PORT: 'off',
      MAILROOM_POP3_PORT: String(pop3Port),
      MAILROOM_POP3S_PORT: 'off',
      MAILROOM_LMTP_PORT: 'off',
      MAILROOM_ADMIN_TOKEN: TOKEN,
      MAILROOM_LOG_LEVEL: 'warn',
    },
    port: http,
  });
  try {
    rows.push({ label: `mailboxes in ${LARGEST_DOMAIN}; INBOX of ${BIG}; of ${POP}`, value: `${facts.largest}; ${bigCount}; ${popCount}` });
    rows.push({ label: 'RSS at start', value: mb((await memory(mailroom.pid)).rss) });

    // API ------------------------------------------------------------------------------------
    const api = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${http}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const body = (await response.json()) as { nextCursor?: string | null; items?: unknown[] };
      if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${JSON.stringify(body).slice(0, 300)}`);
      return body;
    };
    /** Times `next()`'s requests; `next` gives the path of request i. */
    const timed = async (label: string, next: (i: number) => string, walk = false) => {
      const times: number[] = [];
      let cursor: string | null = null;
      for (let i = 0; i < WARMUP + REQUESTS; i++) {
        const base = next(i);
        const path: string = walk && cursor ? `${base}&cursor=${encodeURIComponent(cursor)}` : base;
        const start = now();
        const body = await api(path);
        if (i >= WARMUP) times.push(millis(start));
        if (walk) cursor = body.nextCursor ?? null;
      }
      rows.push({ label, value: `${percentile(times, 0.5).toFixed(1)} / ${percentile(times, 0.99).toFixed(1)} ms` });
      console.log(`  ${label}: p50 ${percentile(times, 0.5).toFixed(1)} ms, p99 ${percentile(times, 0.99).toFixed(1)} ms`);
    };
    await timed('API GET /v1/mailboxes?limit=50, pages walked (p50 / p99)', () => '/v1/mailboxes?limit=50', true);
    await timed('API GET /v1/mailboxes?q=<first name>&limit=50', (i) => `/v1/mailboxes?limit=50&q=${FIRST_NAMES[i % FIRST_NAMES.length]}`);
    await timed('API GET /v1/mailboxes?status=suspended&limit=50', () => '/v1/mailboxes?limit=50&status=suspended');
    await timed('API GET /v1/mailboxes/{address}', (i) => `/v1/mailboxes/${encodeURIComponent(addresses[i]!).replace('%40', '@')}`);
    await timed(`API GET /v1/mailboxes?domain=${LARGEST_DOMAIN} (the largest), pages walked`, () => `/v1/mailboxes?limit=50&domain=${LARGEST_DOMAIN}`, true);
    await timed('API GET /v1/domains?limit=50 (with mailbox counts), pages walked', () => '/v1/domains?limit=50', true);
    await timed(`API GET /v1/domains/${LARGEST_DOMAIN} (counts its mailboxes)`, () => `/v1/domains/${LARGEST_DOMAIN}`);
    rows.push({ label: 'RSS after the API requests', value: mb((await memory(mailroom.pid)).rss) });

    // IMAP -----------------------------------------------------------------------------------
    const steps = new Map<string, number[]>();
    const rss = new Map<string, number>();
    const step = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
      const start = now();
      const result = await work();
      const list = steps.get(name) ?? [];
      list.push(millis(start));
      steps.set(name, list);
      rss.set(name, (await memory(mailroom.pid)).rss);
      return result;
    };
    const report = (name: string, label: string) => {
      const [first, ...rest] = steps.get(name)!;
      const value = `${first!.toFixed(0)} / ${rest.length > 0 ? median(rest).toFixed(0) : '-'} ms, RSS after ${mb(rss.get(name)!)}`;
      rows.push({ label, value });
      console.log(`  ${label}: ${value}`);
    };
    for (let round = 0; round < ROUNDS; round++) {
      const client = await ImapClient.open(imapPort);
      await step('login', () => client.command(`LOGIN ${BIG} "${SEED_PASSWORD}"`));
      const selected = await step('select', () => client.command('SELECT INBOX'));
      const exists = Number(selected.untagged.map((l) => /^\* (\d+) EXISTS/.exec(l)).find((m) => m)![1]);
      if (exists !== bigCount) throw new Error(`SELECT: ${exists} EXISTS, the folder counts ${bigCount}`);
      const flags = await step('flags', () => client.command('UID FETCH 1:* (FLAGS)'));
      if (flags.untagged.length !== exists) throw new Error(`UID FETCH 1:* (FLAGS) answered ${flags.untagged.length} lines for ${exists} messages`);
      const envelopes = await step('envelopes', () => client.command(`FETCH ${Math.max(1, exists - 49)}:* (ENVELOPE)`));
      if (envelopes.untagged.length !== Math.min(50, exists)) throw new Error(`FETCH ENVELOPE answered ${envelopes.untagged.length} lines`);
      await client.logout();
    }
    report('login', 'IMAP LOGIN (first / median of the rest)');
    report('select', `IMAP SELECT INBOX (${BIG})`);
    report('flags', 'IMAP UID FETCH 1:* (FLAGS)');
    report('envelopes', 'IMAP FETCH of the last 50 ENVELOPEs');

    // POP3 -----------------------------------------------------------------------------------
    for (let round = 0; round < ROUNDS; round++) {
      const client = await Pop3Client.open(pop3Port);
      await step('pop3 login', async () => {
        await client.command(`USER ${POP}`);
        await client.command(`PASS ${SEED_PASSWORD}`);
      });
      const stat = await step('stat', () => client.command('STAT'));
      if (Number(stat.split(' ')[1]) !== popCount) throw new Error(`STAT: ${stat}, the folder counts ${popCount}`);
      const uidl = await step('uidl', () => client.multiline('UIDL'));
      const listed = uidl.toString('latin1').split('\r\n').filter((line) => line !== '').length;
      if (listed !== popCount) throw new Error(`UIDL listed ${listed} messages`);
      await client.quit();
    }
    report('pop3 login', `POP3 USER+PASS (${POP}; the login lists the INBOX)`);
    report('stat', 'POP3 STAT');
    report('uidl', 'POP3 UIDL');
    rows.push({ label: 'RSS peak (VmHWM)', value: mb((await memory(mailroom.pid)).hwm) });
  } finally {
    await mailroom.stop();
    await rm(work, { recursive: true, force: true });
  }
  return rows;
}

function table(columns: { title: string; rows: Row[] }[]): string {
  const labels = columns[0]!.rows.map((row) => row.label);
  const lines = [`| | ${columns.map((c) => c.title).join(' | ')} |`, `| --- |${columns.map(() => ' --- |').join('')}`];
  for (const [i, label] of labels.entries()) lines.push(`| ${label} | ${columns.map((c) => c.rows[i]?.value ?? '').join(' | ')} |`);
  return lines.join('\n');
}

const count = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n));

const seedRows = (report: SeedReport): Row[] => [
  { label: 'seed time', value: `${report.seconds.toFixed(0)} s` },
  { label: 'database size (messages table, blobs)', value: `${mb(report.databaseBytes / 2 ** 20)} (${mb(report.messagesTableBytes / 2 ** 20)}, ${mb(report.blobsTableBytes / 2 ** 20)})` },
];

async function main() {
  const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');
  const machine = `${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, load average ${load()} at the start`;
  const server = await (async () => {
    const client = new pg.Client({ connectionString: SERVER_URL });
    await client.connect();
    const row = (await client.query("select version() as v, current_setting('shared_buffers') as sb")).rows[0] as Record<string, string>;
    await client.end();
    return `${row.v!.split(' on ')[0]}, shared_buffers=${row.sb}`;
  })();
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim();
  console.log(`Scale: ${machine}; ${server}; commit ${commit}`);
  console.log(`Command: npm run bench:scale${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`);
  const columns: { title: string; rows: Row[] }[] = [];
  if (args.database) {
    const rows = await measure(databaseUrl(args.database));
    columns.push({ title: args.database, rows });
  } else {
    for (const size of args.sizes!.split(',')) {
      const [mailboxes, domains, messages] = size.split('/').map(Number) as [number, number, number];
      const options = defaultSeedOptions({ mailboxes, domains, messages });
      console.log(`\n${mailboxes} mailboxes, ${domains} domains, ${messages} messages:`);
      try {
        const report = await seed(options, (line) => console.log(`  ${line}`));
        console.log(`  ${describeSeed(report)}`);
        const rows = await measure(report.url);
        columns.push({ title: `${count(mailboxes)} mailboxes, ${count(messages)} messages`, rows: [...seedRows(report), ...rows] });
      } finally {
        if (!args.keep) await dropDatabase(options.database);
      }
    }
  }
  console.log(`\nLoad average ${load()} at the end.\n`);
  console.log(table(columns));
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
