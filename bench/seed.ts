/**
 * Fills a NEW Mailroom database with N mailboxes over M domains holding K messages, in minutes:
 *
 *   npm run bench:seed -- --mailboxes 100000 --domains 1000 --messages 1000000
 *
 * (Postgres server from DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres; the new
 * database's name is printed, and it is left in place for bench:scale or psql: drop it after.)
 *
 * The schema comes from the normal migrations. Then everything is set-based SQL rather than the
 * per-message service path: a few thousand distinct messages (bench/seed-messages.ts) are stored
 * as blobs and indexed ONCE by the project's own MIME indexer, and generate_series fans them out
 * to K message rows in arrival order, so a mailbox's messages lie scattered over the table as
 * years of deliveries leave them. Every mailbox shares one argon2id hash (Mailroom's parameters)
 * of the password printed.
 *
 * The shape: domain sizes skewed (domain1.example, the largest, holds about 3% of the
 * mailboxes at M = 1,000); two designated mailboxes in it, big@ (an INBOX of --big-inbox
 * messages, K/10 by default: 100,000 at K = 1M) and pop@ (--pop-inbox, K/20); the other messages
 * over the other mailboxes with a heavy skew (the median mailbox holds a handful of messages,
 * the largest thousands) and over INBOX 62%, Archive 14%, Sent 12%, Trash 5%, Junk 4%, Drafts 1%
 * and, for one mailbox in ten that has them, the custom folders Lists and Receipts 2%. About 5% of
 * messages are unseen, 8% answered, 2% flagged, 2% $Forwarded; every Drafts message is a \Draft.
 *
 * What the real code would leave is kept exactly: UIDs 1..n per folder in arrival order, each
 * message's MODSEQ one above the previous (as one delivery or APPEND at a time leaves them), the
 * folders' uidnext, highest modseq and message/byte counts, the mailboxes' usage counters and the
 * blobs' reference counts. RECENT was claimed by an earlier IMAP session (recent_uid = uidnext).
 * A check at the end compares every counter with the rows it counts, and reads three mailboxes
 * through the core services (API usage = sum of the per-folder usage IMAP STATUS reports =
 * INBOX listing).
 *
 * Knobs: --big-inbox, --pop-inbox, --templates (3000 distinct messages), --seed (1),
 * --database NAME (default mailroom_scale_<time>).
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import { hashPassword } from '../src/core/auth/passwords.js';
import { blobHash } from '../src/core/mailstore/blobs.js';
import { DEFAULT_FOLDERS, INBOX } from '../src/core/mailstore/folders.js';
import { crlfSize } from '../src/core/mailstore/store.js';
import { indexMessage } from '../src/core/mime/index.js';
import { openDatabase, servicesFor } from '../src/main.js';
import { SERVER_URL } from './fixtures.js';
import { FIRST_NAMES, LAST_NAMES, makeTemplates } from './seed-messages.js';

export const SEED_PASSWORD = 'a bench passphrase';
/** The designated mailboxes, in the largest domain. */
export const BIG = 'big@domain1.example';
export const POP = 'pop@domain1.example';

export interface SeedOptions {
  mailboxes: number;
  domains: number;
  messages: number;
  bigInbox: number;
  popInbox: number;
  templates: number;
  seed: number;
  /** The database to create; it must not exist. */
  database: string;
}

export interface SeedReport {
  url: string;
  database: string;
  /** Seconds per phase, in order. */
  phases: [string, number][];
  seconds: number;
  databaseBytes: number;
  messagesTableBytes: number;
  blobsTableBytes: number;
  /** Message sizes in octets: median, p90, p99, mean. */
  sizes: { median: number; p90: number; p99: number; mean: number };
  /** Messages per mailbox: median, p99, max (the designated two left out). */
  perMailbox: { median: number; p99: number; max: number };
}

const timeSpan = { from: new Date(Date.now() - 3 * 365 * 86_400_000), to: new Date(Date.now() - 3_600_000) };

export function defaultSeedOptions(values: Partial<SeedOptions> & Pick<SeedOptions, 'mailboxes' | 'domains' | 'messages'>): SeedOptions {
  return {
    bigInbox: Math.floor(values.messages / 10),
    popInbox: Math.floor(values.messages / 20),
    templates: 3000,
    seed: 1,
    database: `mailroom_scale_${Date.now()}_${randomBytes(2).toString('hex')}`,
    ...values,
  };
}

/** The URL of `database` on the server of DATABASE_URL. */
export function databaseUrl(database: string): string {
  const url = new URL(SERVER_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

export async function dropDatabase(database: string): Promise<void> {
  const admin = new pg.Client({ connectionString: SERVER_URL });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${database} with (force)`);
  } finally {
    await admin.end();
  }
}

export async function seed(options: SeedOptions, log: (line: string) => void = console.log): Promise<SeedReport> {
  const { mailboxes: N, domains: M, messages: K, bigInbox: B, popInbox: P, templates: T } = options;
  const R = K - B - P;
  if (!/^[a-z_][a-z0-9_]*$/.test(options.database)) throw new Error(`'${options.database}' is not a plain database name`);
  if (N < 3 || M < 1 || R < 0 || T < 1) throw new Error('need 3+ mailboxes, 1+ domains, 1+ templates and --messages >= --big-inbox + --pop-inbox');
  const phases: [string, number][] = [];
  const started = performance.now();
  let mark = started;
  const phase = (name: string) => {
    const now = performance.now();
    phases.push([name, (now - mark) / 1000]);
    log(`  ${name}: ${((now - mark) / 1000).toFixed(1)} s`);
    mark = now;
  };

  const admin = new pg.Client({ connectionString: SERVER_URL });
  await admin.connect();
  await admin.query(`create database ${options.database}`);
  await admin.end();
  const url = databaseUrl(options.database);
  log(`database ${options.database}: ${N} mailboxes, ${M} domains, ${K} messages (${BIG}: ${B} in INBOX, ${POP}: ${P})`);

  // The normal migrations, as `mailroom migrate` runs them.
  const config = loadConfig({ DATABASE_URL: url, MAILROOM_LOG_LEVEL: 'silent' });
  await (await openDatabase(config)).close();
  phase('migrations');

  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    // One session, so the temporary tables live through it; a crash loses only this database.
    await db.query(
      "set synchronous_commit = off; set work_mem = '256MB'; set maintenance_work_mem = '512MB'; set max_parallel_workers_per_gather = 0",
    );
    await db.query('select setseed($1)', [((options.seed % 1000) / 1000) * 2 - 1]);

    // Distinct messages: stored once as blobs, indexed once in Node.
    const templates = makeTemplates(T, options.seed, timeSpan);
    await db.query(`create temp table templates (
      template int primary key, hash text not null, size bigint not null, crlf_size bigint not null,
      envelope jsonb, body_structure jsonb, header_fields jsonb, subject text, from_address text, to_address text, sent_date timestamptz)`);
    const BATCH_BYTES = 8 * 1024 * 1024;
    for (let i = 0; i < templates.length; ) {
      const blobRows: unknown[] = [];
      const indexRows: unknown[] = [];
      let bytes = 0;
      for (; i < templates.length && (bytes === 0 || bytes + templates[i]!.raw.length < BATCH_BYTES) && blobRows.length < 400; i++) {
        const raw = templates[i]!.raw;
        const index = indexMessage(raw);
        const hash = blobHash(raw);
        bytes += raw.length;
        blobRows.push(hash, raw.length, raw);
        indexRows.push(
          i, hash, raw.length, crlfSize(raw), JSON.stringify(index.envelope), JSON.stringify(index.structure),
          JSON.stringify(index.headers), index.subject, index.from, index.to, index.sentDate?.toISOString() ?? null,
        );
      }
      const placeholders = (rows: unknown[], width: number) =>
        Array.from({ length: rows.length / width }, (_, r) => `(${Array.from({ length: width }, (_, c) => `$${r * width + c + 1}`).join(', ')})`).join(', ');
      await db.query(`insert into blobs (hash, size, data) values ${placeholders(blobRows, 3)} on conflict (hash) do nothing`, blobRows);
      await db.query(`insert into templates values ${placeholders(indexRows, 11)}`, indexRows);
    }
    phase(`${T} distinct messages made, indexed and stored`);

    await db.query(
      `insert into domains (id, name, created_at, updated_at) overriding system value
       select d, 'domain' || d || '.example', t, t
       from (select d, now() - interval '2000 days' + interval '1500 days' * d / $1::int as t from generate_series(1, $1::int) d) s`,
      [M],
    );
    await db.query(`select setval(pg_get_serial_sequence('domains', 'id'), $1)`, [M]);

    // Mailbox a > 2 lands in domain 1 + floor(M u²): the first domains are the large ones.
    const hash = await hashPassword(SEED_PASSWORD);
    await db.query(
      `insert into accounts (id, domain_id, address, display_name, password_hash, status, imap_enabled, pop3_enabled,
                             pop3_delete_mode, quota_bytes, last_login_at, last_login_protocol, last_login_ip, created_at, updated_at)
       overriding system value
       select a, domain_id,
              case a when 1 then 'big' when 2 then 'pop' else first || '.' || last || a end || '@domain' || domain_id || '.example',
              initcap(first) || ' ' || initcap(last), $3, case when a > 2 and r1 < 0.01 then 'suspended' else 'active' end,
              a <= 2 or r2 < 0.97, a <= 2 or r3 < 0.35, 'remove', case when a <= 2 then null else 5368709120 end,
              case when r2 < 0.7 then now() - interval '30 days' * r3 end, case when r2 < 0.7 then case when r3 < 0.2 then 'pop3' else 'imap' end end,
              case when r2 < 0.7 then '203.0.113.' || (a % 250) end, created, created
       from (select a, case when a <= 2 then 1 else 1 + floor($2::int * power(random(), 2))::int end as domain_id,
                    ($4::text[])[1 + a % cardinality($4::text[])] as first, ($5::text[])[1 + (a / 20) % cardinality($5::text[])] as last,
                    random() as r1, random() as r2, random() as r3, now() - interval '1400 days' * random() as created
             from generate_series(1, $1::int) a) s`,
      [N, M, hash, FIRST_NAMES, LAST_NAMES],
    );
    await db.query(`select setval(pg_get_serial_sequence('accounts', 'id'), $1)`, [N]);
    // The default folders as createDefaultFolders makes them, then Lists and Receipts for one mailbox in ten.
    await db.query(
      `insert into folders (account_id, id, name, special_use, created_at) overriding system value
       select a.id, (a.id - 1) * $3::int + f.k, f.name, f.special_use, a.created_at
       from accounts a cross join unnest($1::text[], $2::text[]) with ordinality as f(name, special_use, k)
       order by 2`,
      [DEFAULT_FOLDERS.map((f) => f.name), DEFAULT_FOLDERS.map((f) => f.specialUse), DEFAULT_FOLDERS.length],
    );
    await db.query(`select setval(pg_get_serial_sequence('folders', 'id'), $1)`, [N * DEFAULT_FOLDERS.length]);
    await db.query(
      `insert into folders (account_id, name, created_at)
       select a.id, f.name, a.created_at + interval '1 day' from accounts a cross join (values ('Lists'), ('Receipts')) f(name)
       where a.id % 10 = 3 order by a.id, f.name`,
    );
    phase(`${M} domains, ${N} mailboxes and their folders`);

    // Which mailbox and folder each message lands in, and when (t in [0, 1): arrival order).
    await db.query('create temp table plan (t float8 not null, account_id bigint not null, folder text not null, template int not null, r float8 not null)');
    for (const [account, count] of [[1, B], [2, P]] as const) {
      await db.query(
        `insert into plan select (g - random()) / $2::int, $1::int, 'INBOX', floor(random() * $3::int), random() from generate_series(1, $2::int) g`,
        [account, count, T],
      );
    }
    // The rest: mailbox by rank floor((N-2) u³) over a shuffled order, so a few are huge and most small.
    await db.query('create temp table ranks as select row_number() over (order by md5(id::text)) - 1 as rank, id from accounts where id > 2');
    await db.query(
      `insert into plan
       select s.t, ranks.id,
              case when s.f < 0.62 then 'INBOX' when s.f < 0.76 then 'Archive' when s.f < 0.88 then 'Sent'
                   when s.f < 0.93 then 'Trash' when s.f < 0.97 then 'Junk' when s.f < 0.98 then 'Drafts'
                   when s.f < 0.99 then 'Lists' else 'Receipts' end,
              s.template, s.r
       from (select random() as t, floor(($1::int - 2) * power(random(), 3))::bigint as rank, random() as f,
                    floor(random() * $3::int)::int as template, random() as r
             from generate_series(1, $2::int)) s
       join ranks using (rank)`,
      [N, R, T],
    );
    // A folder the mailbox lacks (Lists, Receipts) means INBOX; UIDs 1..n per folder in arrival order.
    await db.query(
      `create temp table placed as
       select p.t, p.account_id, coalesce(f.id, inbox.id) as folder_id, coalesce(f.name, 'INBOX') as folder, p.template, p.r,
              row_number() over (partition by p.account_id, coalesce(f.id, inbox.id) order by p.t) as uid
       from plan p
       join folders inbox on inbox.account_id = p.account_id and inbox.name = 'INBOX'
       left join folders f on f.account_id = p.account_id and f.name = p.folder`,
    );
    await db.query('drop table plan');
    phase('placement planned');

    // Flags in normalizeFlags' order ($ sorts before \). Unseen: 5%, and the newest 0.2%.
    await db.query(
      `insert into messages (account_id, folder_id, uid, modseq, flags, internal_date, size, crlf_size, blob_hash,
                             envelope, body_structure, header_fields, subject, from_address, to_address, sent_date)
       select p.account_id, p.folder_id, p.uid, p.uid + 1,
              array_remove(array[
                case when p.r >= 0.15 and p.r < 0.17 then '$Forwarded' end,
                case when p.r >= 0.05 and p.r < 0.13 and p.folder not in ('Sent', 'Drafts') then '\\Answered' end,
                case when p.folder = 'Drafts' then '\\Draft' end,
                case when p.r >= 0.13 and p.r < 0.15 then '\\Flagged' end,
                case when p.folder in ('Sent', 'Drafts', 'Archive', 'Trash') or not (p.r < 0.05 or p.t > 0.998) then '\\Seen' end
              ], null),
              $1::timestamptz + ($2::timestamptz - $1::timestamptz) * p.t, tp.size, tp.crlf_size, tp.hash,
              tp.envelope, tp.body_structure, tp.header_fields, tp.subject, tp.from_address, tp.to_address, tp.sent_date
       from placed p join templates tp using (template)
       order by p.t`,
      [timeSpan.from.toISOString(), timeSpan.to.toISOString()],
    );
    phase(`${K} messages inserted`);

    // The counters, as K single deliveries would have left them.
    await db.query(
      `update folders f set uid_next = s.n + 1, highest_modseq = s.n + 1, recent_uid = s.n + 1, message_count = s.n, storage_bytes = s.bytes
       from (select account_id, folder_id, count(*) as n, sum(size) as bytes from messages group by 1, 2) s
       where f.account_id = s.account_id and f.id = s.folder_id`,
    );
    await db.query(
      `update accounts a set used_messages = s.n, used_bytes = s.bytes
       from (select account_id, count(*) as n, sum(size) as bytes from messages group by 1) s where a.id = s.account_id`,
    );
    await db.query(
      `update blobs b set ref_count = s.n from (select blob_hash, count(*) as n from messages group by 1) s where b.hash = s.blob_hash`,
    );
    // A distinct message no row drew would be an orphan the real code never leaves.
    await db.query('delete from blobs where ref_count = 0');
    await db.query('drop table placed, ranks, templates');
    phase('counters');

    // As autovacuum leaves a database in use: statistics, visibility map, hint bits.
    await db.query('vacuum (analyze) ');
    phase('vacuum analyze');

    await check(db, url);
    phase('checked');

    const sizes = (
      await db.query(
        `select percentile_disc(0.5) within group (order by size) as median, percentile_disc(0.9) within group (order by size) as p90,
                percentile_disc(0.99) within group (order by size) as p99, avg(size)::bigint as mean from messages`,
      )
    ).rows[0] as Record<string, string>;
    const perMailbox = (
      await db.query(
        `select percentile_disc(0.5) within group (order by used_messages) as median,
                percentile_disc(0.99) within group (order by used_messages) as p99, max(used_messages) as max
         from accounts where id > 2`,
      )
    ).rows[0] as Record<string, string>;
    const bytes = (
      await db.query(
        `select pg_database_size(current_database()) as db, pg_total_relation_size('messages') as messages, pg_total_relation_size('blobs') as blobs`,
      )
    ).rows[0] as Record<string, string>;
    const seconds = (performance.now() - started) / 1000;
    return {
      url,
      database: options.database,
      phases,
      seconds,
      databaseBytes: Number(bytes.db),
      messagesTableBytes: Number(bytes.messages),
      blobsTableBytes: Number(bytes.blobs),
      sizes: { median: Number(sizes.median), p90: Number(sizes.p90), p99: Number(sizes.p99), mean: Number(sizes.mean) },
      perMailbox: { median: Number(perMailbox.median), p99: Number(perMailbox.p99), max: Number(perMailbox.max) },
    };
  } finally {
    await db.end();
  }
}

/**
 * Every counter against the rows it counts, over the whole database; then three mailboxes read
 * through the core services as the API (usage) and IMAP (STATUS per folder, the INBOX listing) do.
 */
async function check(db: pg.Client, url: string): Promise<void> {
  const bad = (
    await db.query(`
      select
        (select count(*) from folders f
           left join (select account_id, folder_id, count(*) as n, sum(size) as bytes, max(uid) as top, max(modseq) as modseq
                      from messages group by 1, 2) s on s.account_id = f.account_id and s.folder_id = f.id
         where f.message_count <> coalesce(s.n, 0) or f.storage_bytes <> coalesce(s.bytes, 0)
            or f.uid_next <= coalesce(s.top, 0) or f.highest_modseq < coalesce(s.modseq, 1)
            or s.n <> s.top) as folders,
        (select count(*) from accounts a
           left join (select account_id, count(*) as n, sum(size) as bytes from messages group by 1) s on s.account_id = a.id
         where a.used_messages <> coalesce(s.n, 0) or a.used_bytes <> coalesce(s.bytes, 0)) as accounts,
        (select count(*) from blobs b left join (select blob_hash, count(*) as n from messages group by 1) s on s.blob_hash = b.hash
         where s.n is null or b.ref_count <> s.n) as blobs`)
  ).rows[0] as Record<string, string>;
  if (Object.values(bad).some((n) => Number(n) !== 0)) throw new Error(`inconsistent counters: ${JSON.stringify(bad)}`);

  const config = loadConfig({ DATABASE_URL: url, MAILROOM_LOG_LEVEL: 'silent' });
  const handle = await openDatabase(config);
  try {
    const services = servicesFor(handle, config);
    const actor = { id: 'cli', name: 'bench seed', domains: null };
    const middle = (await db.query('select address from accounts where id > 2 order by used_messages desc limit 1 offset 50')).rows[0]!.address as string;
    for (const address of [BIG, POP, middle]) {
      const { value } = await services.mailboxes.get(address, actor);
      const { id } = await services.mailboxes.find(address, actor);
      const folders = await services.mail.folders.usage(id);
      const inbox = await services.mail.folders.get(id, INBOX);
      const listed = await services.mail.list(id, inbox.id);
      const sum = (key: 'messages' | 'storageBytes') => folders.reduce((total, f) => total + f[key], 0);
      const consecutive = listed.every((m, i) => m.uid === i + 1);
      if (
        sum('messages') !== value.usage.messages ||
        sum('storageBytes') !== value.usage.storageBytes ||
        listed.length !== inbox.messageCount ||
        !consecutive ||
        inbox.uidNext !== listed.length + 1
      ) {
        throw new Error(`${address}: API usage ${JSON.stringify(value.usage)}, folders ${JSON.stringify(folders)}, INBOX lists ${listed.length}`);
      }
    }
  } finally {
    await handle.close();
  }
}

const megabytes = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

export function describeSeed(report: SeedReport): string {
  return (
    `seeded ${report.database} in ${report.seconds.toFixed(0)} s; database ${megabytes(report.databaseBytes)} ` +
    `(messages ${megabytes(report.messagesTableBytes)}, blobs ${megabytes(report.blobsTableBytes)}); ` +
    `message size median ${report.sizes.median} B, p90 ${report.sizes.p90} B, p99 ${report.sizes.p99} B, mean ${report.sizes.mean} B; ` +
    `messages per mailbox median ${report.perMailbox.median}, p99 ${report.perMailbox.p99}, max ${report.perMailbox.max}`
  );
}

async function main() {
  const { values } = parseArgs({
    options: {
      mailboxes: { type: 'string', default: '100000' },
      domains: { type: 'string', default: '1000' },
      messages: { type: 'string', default: '1000000' },
      'big-inbox': { type: 'string' },
      'pop-inbox': { type: 'string' },
      templates: { type: 'string' },
      seed: { type: 'string' },
      database: { type: 'string' },
    },
    strict: true,
  });
  const number = (value: string | undefined) => (value === undefined ? undefined : Number(value));
  const given = {
    mailboxes: number(values.mailboxes)!,
    domains: number(values.domains)!,
    messages: number(values.messages)!,
    bigInbox: number(values['big-inbox']),
    popInbox: number(values['pop-inbox']),
    templates: number(values.templates),
    seed: number(values.seed),
    database: values.database,
  };
  const options = defaultSeedOptions(Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as typeof given);
  for (const [name, value] of Object.entries(options)) {
    if (typeof value === 'number' && !(Number.isSafeInteger(value) && value >= 0)) throw new Error(`--${name}: '${value}' is not a count`);
  }
  const report = await seed(options);
  console.log(describeSeed(report));
  console.log(`password of every mailbox: '${SEED_PASSWORD}'; drop it with: psql ${SERVER_URL} -c 'drop database ${report.database}'`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
