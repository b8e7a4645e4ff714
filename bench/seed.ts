/**
 * Fills a NEW Mailroom database with N mailboxes over M domains holding K messages, in minutes:
 *
 *   npm run bench:seed -- --mailboxes 100000 --domains 1000 --messages 1000000
 *
 * (Postgres server from DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres; the new
 * database's name is printed, and it is left in place for bench:scale or psql: drop it after.)
 *
 * The schema comes from the normal migrations. What the product makes of one mailbox and one
 * message comes from the product itself: a scratch mailbox is created through the core services,
 * and a few thousand distinct messages (bench/seed-messages.ts) are appended to it, so each is
 * stored once as a blob and indexed once exactly as delivery does. Everything else is set-based
 * SQL: the scratch mailbox's rows (folders and whatever else a new mailbox gets) are copied to
 * every mailbox, and generate_series fans the messages out to K rows, every column copied from
 * the template's row but the message's own place, flags and date. The rows go in in arrival
 * order, so a mailbox's messages lie scattered over the table as years of deliveries leave them.
 * The scratch mailbox is then deleted through the core services. Every mailbox shares one
 * argon2id hash (Mailroom's parameters) of the password printed.
 *
 * The shape: domain sizes skewed (domain1.example, the largest, holds about 3% of the
 * mailboxes at M = 1,000); two designated mailboxes in it, big@ (an INBOX of --big-inbox
 * messages, K/10 by default: 100,000 at K = 1M) and pop@ (--pop-inbox, K/20); the other messages
 * over the other mailboxes with a heavy skew (the median mailbox holds a handful of messages,
 * the largest thousands) and over INBOX 62%, Archive 16%, Sent 12%, Trash 5%, Junk 4% and
 * Drafts 1%. About 5% of messages are unseen, 8% answered, 2% flagged, 2% $Forwarded; every
 * Drafts message is a \Draft.
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
import { INBOX } from '../src/core/mailstore/folders.js';
import { openDatabase, servicesFor } from '../src/main.js';
import { SERVER_URL } from './fixtures.js';
import { FIRST_NAMES, LAST_NAMES, makeTemplates } from './seed-messages.js';

export const SEED_PASSWORD = 'a bench passphrase';
/** The designated mailboxes, in the largest domain. */
export const BIG = 'big@domain1.example';
export const POP = 'pop@domain1.example';
/** Made by the real code, copied into every mailbox, its INBOX the distinct messages; deleted at the end. */
const TEMPLATES = 'seed-templates@domain1.example';

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

  // The normal migrations, as `mailroom migrate` runs them; the core services for what the real code makes.
  const config = loadConfig({ DATABASE_URL: url, MAILROOM_LOG_LEVEL: 'silent' });
  const handle = await openDatabase(config);
  const services = servicesFor(handle, config);
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  phase('migrations');
  try {
    // One session, so the temporary tables live through it; a crash loses only this database.
    await db.query(
      "set synchronous_commit = off; set work_mem = '256MB'; set maintenance_work_mem = '512MB'; set max_parallel_workers_per_gather = 0",
    );
    await db.query('select setseed($1)', [((options.seed % 1000) / 1000) * 2 - 1]);

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

    // One mailbox made by the real code: whatever it gets (folders, and any other row keyed by
    // its account) every seeded mailbox gets too, copied.
    const actor = { id: 'cli', name: 'bench seed', domains: null };
    await services.mailboxes.create({ address: TEMPLATES, passwordHash: hash }, actor);
    const scratch = (await services.mailboxes.find(TEMPLATES, actor)).id;
    const perAccount = (
      await db.query(
        `select table_name from information_schema.columns
         where table_schema = 'public' and column_name = 'account_id' and table_name not in ('accounts', 'messages') order by 1`,
      )
    ).rows.map((row) => row.table_name as string);
    for (const table of perAccount) {
      const columns = (await copiedColumns(db, table, ['account_id'])).map((c) => `"${c}"`);
      await db.query(
        `insert into "${table}" (account_id${columns.map((c) => `, ${c}`).join('')})
         select a.id${columns.map((c) => `, t.${c}`).join('')}
         from "${table}" t cross join accounts a where t.account_id = $1 and a.id <> $1 order by a.id`,
        [scratch],
      );
    }
    phase(`${M} domains, ${N} mailboxes, their ${perAccount.join(', ')} rows`);

    // The distinct messages, appended by the real code to the scratch mailbox's INBOX: stored
    // once as blobs and indexed once, every column a message row needs filled as delivery fills it.
    const inbox = await services.mail.folders.get(scratch, INBOX);
    for (const template of makeTemplates(T, options.seed, timeSpan)) await services.mail.append(scratch, INBOX, template.raw);
    phase(`${T} distinct messages made and appended`);

    // Which mailbox and folder each message lands in, and when (t in [0, 1): arrival order).
    await db.query('create temp table plan (t float8 not null, account_id bigint not null, folder text not null, template int not null, r float8 not null)');
    for (const [account, count] of [[1, B], [2, P]] as const) {
      await db.query(
        `insert into plan select (g - random()) / $2::int, $1::int, 'INBOX', floor(random() * $3::int), random() from generate_series(1, $2::int) g`,
        [account, count, T],
      );
    }
    // The rest: mailbox by rank floor((N-2) u³) over a shuffled order, so a few are huge and most small.
    await db.query('create temp table ranks as select row_number() over (order by md5(id::text)) - 1 as rank, id from accounts where id between 3 and $1', [N]);
    await db.query(
      `insert into plan
       select s.t, ranks.id,
              case when s.f < 0.62 then 'INBOX' when s.f < 0.78 then 'Archive' when s.f < 0.90 then 'Sent'
                   when s.f < 0.95 then 'Trash' when s.f < 0.99 then 'Junk' else 'Drafts' end,
              s.template, s.r
       from (select random() as t, floor(($1::int - 2) * power(random(), 3))::bigint as rank, random() as f,
                    floor(random() * $3::int)::int as template, random() as r
             from generate_series(1, $2::int)) s
       join ranks using (rank)`,
      [N, R, T],
    );
    // UIDs 1..n per folder in arrival order.
    await db.query(
      `create temp table placed as
       select p.t, p.account_id, f.id as folder_id, p.folder, p.template, p.r,
              row_number() over (partition by p.account_id, f.id order by p.t) as uid
       from plan p join folders f on f.account_id = p.account_id and f.name = p.folder`,
    );
    await db.query('drop table plan');
    phase('placement planned');

    // Every column but the message's own place, flags and date comes from its template's row.
    // Flags in normalizeFlags' order ($ sorts before \). Unseen: 5%, and the newest 0.2%.
    const copied = (await copiedColumns(db, 'messages', ['account_id', 'folder_id', 'uid', 'modseq', 'flags', 'internal_date'])).map(
      (c) => `"${c}"`,
    );
    await db.query(
      `insert into messages (account_id, folder_id, uid, modseq, flags, internal_date${copied.map((c) => `, ${c}`).join('')})
       select p.account_id, p.folder_id, p.uid, p.uid + 1,
              array_remove(array[
                case when p.r >= 0.15 and p.r < 0.17 then '$Forwarded' end,
                case when p.r >= 0.05 and p.r < 0.13 and p.folder not in ('Sent', 'Drafts') then '\\Answered' end,
                case when p.folder = 'Drafts' then '\\Draft' end,
                case when p.r >= 0.13 and p.r < 0.15 then '\\Flagged' end,
                case when p.folder in ('Sent', 'Drafts', 'Archive', 'Trash') or not (p.r < 0.05 or p.t > 0.998) then '\\Seen' end
              ], null),
              $1::timestamptz + ($2::timestamptz - $1::timestamptz) * p.t${copied.map((c) => `, t.${c}`).join('')}
       from placed p join messages t on t.account_id = $3 and t.folder_id = $4 and t.uid = p.template + 1
       order by p.t`,
      [timeSpan.from.toISOString(), timeSpan.to.toISOString(), scratch, inbox.id],
    );
    await db.query('drop table placed, ranks');
    phase(`${K} messages inserted`);

    // The counters, as K single deliveries would have left them; RECENT claimed by an earlier session.
    await db.query(
      `update folders f set uid_next = s.n + 1, highest_modseq = s.n + 1, recent_uid = s.n + 1, message_count = s.n, storage_bytes = s.bytes
       from (select account_id, folder_id, count(*) as n, sum(size) as bytes from messages group by 1, 2) s
       where f.account_id = s.account_id and f.id = s.folder_id and f.account_id <> $1`,
      [scratch],
    );
    await db.query(
      `update accounts a set used_messages = s.n, used_bytes = s.bytes
       from (select account_id, count(*) as n, sum(size) as bytes from messages group by 1) s where a.id = s.account_id and a.id <> $1`,
      [scratch],
    );
    await db.query(`update blobs b set ref_count = s.n from (select blob_hash, count(*) as n from messages group by 1) s where b.hash = s.blob_hash`);
    // Gone the way the real code removes a mailbox: a template no message drew loses its blob.
    await services.mailboxes.delete(TEMPLATES, actor);
    phase('counters');

    // As autovacuum leaves a database in use: statistics, visibility map, hint bits.
    await db.query('vacuum (analyze)');
    phase('vacuum analyze');

    await check(db, services);
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
    await handle.close();
  }
}

/** What the seed copies of a row the real code made: every column but identity, generated and sequence-fed ones, and `own`. */
async function copiedColumns(db: pg.Client, table: string, own: string[]): Promise<string[]> {
  const { rows } = await db.query(
    `select column_name from information_schema.columns
     where table_schema = 'public' and table_name = $1 and is_identity = 'NO' and is_generated = 'NEVER'
       and coalesce(column_default, '') not like 'nextval(%' and not (column_name = any($2::text[]))
     order by ordinal_position`,
    [table, own],
  );
  return rows.map((row) => row.column_name as string);
}

/**
 * Every counter against the rows it counts, over the whole database; then three mailboxes read
 * through the core services as the API (usage) and IMAP (STATUS per folder, the INBOX listing) do.
 */
async function check(db: pg.Client, services: ReturnType<typeof servicesFor>): Promise<void> {
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
