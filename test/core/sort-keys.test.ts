import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import type { PgliteDatabase } from 'drizzle-orm/pglite';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import t from 'tap';
import { indexMessage } from '../../src/core/mime/index.js';
import { baseSubject, casemap, messageIds } from '../../src/core/mime/sort-keys.js';
import { connect } from '../../src/db/client.js';
import { freshDatabaseUrl } from '../helpers/database.js';

const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));

t.test('base subject (RFC 5256 §2.1) and whether it was a reply or forward', async (t) => {
  const cases: [string | null, string, boolean][] = [
    [null, '', false],
    ['', '', false],
    ['hello', 'HELLO', false],
    ['hello\t  world ', 'HELLO WORLD', false],
    ['Re: hello', 'HELLO', true],
    ['RE: Re: re:hello', 'HELLO', true],
    ['Re : hello', 'HELLO', true],
    ['Fwd: hello', 'HELLO', true],
    ['FW: hello', 'HELLO', true],
    ['fwd:hello', 'HELLO', true],
    ['hello (fwd)', 'HELLO', true],
    ['hello (FWD) (fwd)  ', 'HELLO', true],
    ['[list] Re: hello', 'HELLO', true],
    ['Re[2]: hello', 'HELLO', true],
    ['Re [list]: [other] Re: hello', 'HELLO', true],
    ['[list] hello', 'HELLO', false],
    ['[a] [b] hello', 'HELLO', false],
    ['[a] [b]', '[B]', false],
    ['[fwd: hello]', 'HELLO', true],
    ['[Fwd: Re: [list] hello (fwd)]', 'HELLO', true],
    ['[fwd: [fwd: hello]]', 'HELLO', true],
    ['Re:', '', true],
    ['Rex: hello', 'REX: HELLO', false],
    ['Re hello', 'RE HELLO', false],
    ['hello [fwd]', 'HELLO [FWD]', false],
    ['élan', 'E\u0301LAN', false],
    ['Straße', 'STRAßE', false],
  ];
  for (const [subject, base, reply] of cases) {
    t.same(baseSubject(subject), { subject: base, replyOrForward: reply }, JSON.stringify(subject));
  }
});

t.test('hostile subjects cost linear time', async (t) => {
  const hostile = ['Re: '.repeat(20_000), `${'[x]'.repeat(20_000)}y`, `${'[fwd: '.repeat(5_000)}x${']'.repeat(5_000)}`, `x${' (fwd)'.repeat(10_000)}`];
  const started = performance.now();
  t.same(hostile.map((subject) => baseSubject(subject).subject), ['', 'Y', 'X', 'X']);
  t.ok(performance.now() - started < 1000, 'well under a second for all four');
});

t.test('casemap: simple titlecase (uppercase of one character) and NFKD', async (t) => {
  t.equal(casemap('abc_XYZ'), 'ABC_XYZ');
  t.equal(casemap('été'), 'E\u0301TE\u0301');
  t.equal(casemap('ﬁne'), 'fiNE', 'a ligature has no one-character titlecase: kept, then decomposed (as RFC 5051 has it)');
});

t.test('message IDs: bracketed, with an @, comments skipped', async (t) => {
  t.same(messageIds('<a@b.example> <c.d@e> (a comment <x@y>) <no-at> <>'), ['a@b.example', 'c.d@e']);
  t.same(messageIds(null), []);
});

t.test('the keys indexMessage gives SORT and THREAD', async (t) => {
  const index = (...header: string[]) => indexMessage(Buffer.from(`${header.join('\r\n')}\r\n\r\nbody\r\n`)).sort;
  t.same(
    index('Subject: =?UTF-8?Q?Re:_caf=C3=A9?=', 'From: team: Ann <ann@x.test>, bob@y.test;, carl@z.test', 'To: "Dan" <dan@x.test>', 'Message-ID: <m1@x.test>',
      'In-Reply-To: <m0@x.test>', 'References: <r1@x.test>\r\n <r2@x.test>'),
    { subject: 'CAFE\u0301', from: 'ANN', to: 'DAN', cc: '', replyOrForward: true, messageId: 'm1@x.test', references: ['r1@x.test', 'r2@x.test'] },
    'a group is skipped to its first member; References over In-Reply-To',
  );
  t.same(index('In-Reply-To: <a@x> <b@x>', 'References: garbage').references, ['a@x'], 'no valid References: the first In-Reply-To');
  const many = Array.from({ length: 150 }, (_, i) => `<r${i}@x>`).join(' ');
  const kept = index(`References: ${many}`).references;
  t.equal(kept.length, 100, 'at most 100 kept');
  t.equal(kept[0], 'r50@x', 'the nearest ones');
  t.equal(kept.at(-1), 'r149@x');
  t.same(index('Subject: x'), { subject: 'X', from: '', to: '', cc: '', replyOrForward: false, messageId: null, references: [] });
});

/** Messages whose keys the migration's backfill (SQL) must compute as indexMessage (TypeScript) does. */
const CORPUS = [
  'Subject: Re: hello',
  'Subject: RE: Re: re:hello\r\nFrom: Zed <zed@x.test>',
  'Subject: Fwd: [list] Re[2]: hello (fwd) (FWD)\r\nTo: team: a@x.test, b@x.test;',
  'Subject: [a] [b]\r\nCc: Carl <carl@x.test>, dan@x.test',
  'Subject: [Fwd: Re: [list] hello (fwd)]\r\nMessage-ID: <one@x.test>',
  'Subject: [fwd: [fwd: hello]]',
  'Subject: Re:',
  'Subject: Rex: hello\t  world\r\nReferences: <r1@x.test> <r2@x.test>\r\nIn-Reply-To: <r2@x.test>',
  'Subject: =?UTF-8?Q?Re:_=5Blist=5D_caf=C3=A9?=\r\nIn-Reply-To: <p@x.test> <q@x.test>',
  'Subject: [x]\r\nFrom: undisclosed-recipients:;\r\nReferences: nothing valid',
  'From: ann@x.test\r\nDate: Sat, 3 Jan 2026 09:00:00 -0500',
  `Subject: chain\r\nReferences: ${Array.from({ length: 120 }, (_, i) => `<r${i}@x.test>`).join(' ')}`,
  'Subject: (fwd)\r\nDate: not a date',
].map((header) => Buffer.from(`${header}\r\n\r\nbody\r\n`));

t.test('the migration gives messages stored before it the keys delivery gives new ones', async (t) => {
  // A database migrated up to the migration before the sort columns, with messages stored then.
  const url = await freshDatabaseUrl(t);
  const folder = await mkdtemp(join(tmpdir(), 'mailroom-migrations-'));
  t.teardown(() => rm(folder, { recursive: true, force: true }));
  await cp(MIGRATIONS, folder, { recursive: true });
  const journalPath = join(folder, 'meta/_journal.json');
  const journal = JSON.parse(await readFile(journalPath, 'utf8')) as { entries: { tag: string }[] };
  const at = journal.entries.findIndex((entry) => entry.tag === '0006_sort_thread');
  t.ok(at > 0, 'the sort migration is in the journal');
  journal.entries = journal.entries.slice(0, at);
  await writeFile(journalPath, JSON.stringify(journal));
  const database = await connect({ databaseUrl: url, dataDir: 'memory://', poolSize: 2 });
  t.teardown(() => database.close());
  if (database.mode === 'postgres') await migratePg(database.db as unknown as NodePgDatabase, { migrationsFolder: folder });
  else await migratePglite(database.db as unknown as PgliteDatabase, { migrationsFolder: folder });
  const db = database.db;
  await db.execute(sql`insert into domains (name) values ('backfill.test')`);
  await db.execute(sql`insert into accounts (domain_id, address, password_hash, imap_enabled, pop3_enabled, pop3_delete_mode)
    select id, 'old@backfill.test', 'x', true, true, 'remove' from domains`);
  await db.execute(sql`insert into folders (account_id, name) select id, 'INBOX' from accounts`);
  await db.execute(sql`insert into blobs (hash, size, data, ref_count) values ('old', 1, '\\x00', ${CORPUS.length})`);
  const internalDate = new Date('2026-02-01T00:00:00Z');
  for (const [i, raw] of CORPUS.entries()) {
    const index = indexMessage(raw);
    await db.execute(sql`insert into messages (account_id, folder_id, uid, modseq, internal_date, size, crlf_size, blob_hash,
        envelope, body_structure, header_fields, subject, from_address, to_address, sent_date)
      select a.id, f.id, ${i + 1}, 2, ${internalDate.toISOString()}::timestamptz, ${raw.length}, ${raw.length}, 'old',
        ${JSON.stringify(index.envelope)}::jsonb, ${JSON.stringify(index.structure)}::jsonb, ${JSON.stringify(index.headers)}::jsonb,
        ${index.subject}::text, ${index.from}::text, ${index.to}::text, ${index.sentDate?.toISOString() ?? null}::timestamptz
      from accounts a join folders f on f.account_id = a.id`);
  }

  await database.migrate();
  const result = (await db.execute(sql`select uid, sort_subject, sort_from, sort_to, sort_cc, reply_or_forward, message_id,
      reference_ids, sort_date from messages order by uid`)) as unknown as { rows: Record<string, unknown>[] };
  t.equal(result.rows.length, CORPUS.length);
  for (const [i, raw] of CORPUS.entries()) {
    const row = result.rows[i]!;
    const { sort, sentDate } = indexMessage(raw);
    t.same(
      {
        subject: row.sort_subject,
        from: row.sort_from,
        to: row.sort_to,
        cc: row.sort_cc,
        replyOrForward: row.reply_or_forward,
        messageId: row.message_id,
        references: row.reference_ids,
        date: new Date(row.sort_date as string).toISOString(),
      },
      { ...sort, date: (sentDate ?? internalDate).toISOString() },
      raw.toString().split('\r\n')[0]!.slice(0, 60),
    );
  }
});
