import { sql } from 'drizzle-orm';
import t from 'tap';
import type { Actor } from '../../src/core/actor.js';
import { createServices } from '../../src/core/services.js';
import { freshDatabase } from '../helpers/database.js';
import { recordQueries } from '../helpers/query-plans.js';

// A folder's listing (IMAP SELECT, POP3 login, FETCH of dates and sizes) reads every message of
// the folder. From the table, that is a page per message once mailboxes share the table (a row
// carries the indexed envelope, structure and headers): 91,000 pages for a 100,000-message INBOX
// among a million messages. It must come from the primary key alone.
const ACTOR: Actor = { id: 'test', name: 'test', domains: null };

const database = await freshDatabase(t);
const recorder = recordQueries(database);
const services = createServices(recorder.db, { passwordPolicy: { minLength: 10 }, bootstrapToken: null, maxMessageSize: 1024 * 1024 });
await services.domains.create({ name: 'listing.test' }, ACTOR);

async function inboxOf(local: string) {
  const address = `${local}@listing.test`;
  await services.mailboxes.create({ address, password: 'correct horse battery staple' }, ACTOR);
  const { id } = await services.mailboxes.find(address, ACTOR);
  return { id, inbox: (await services.mail.folders.get(id, 'INBOX')).id };
}

const reader = await inboxOf('reader');
const other = await inboxOf('other');
const READER = 2000;
const OTHER = 20_000;
// Wide rows as delivery leaves them (a kilobyte of indexed fields), arriving interleaved.
await recorder.db.execute(sql`insert into blobs (hash, size, data, ref_count) values ('listing', 4, '\\x61626364', ${READER + OTHER})`);
await recorder.db.execute(sql`
  insert into messages (account_id, folder_id, uid, modseq, flags, internal_date, size, crlf_size, blob_hash, envelope, subject)
  select case when g % 11 = 0 then ${reader.id}::bigint else ${other.id}::bigint end,
         case when g % 11 = 0 then ${reader.inbox}::bigint else ${other.inbox}::bigint end,
         row_number() over (partition by g % 11 = 0 order by g), g + 1,
         case when g % 3 = 0 then '{}'::text[] else array['\\Seen'] end, now(), 4, 4, 'listing',
         jsonb_build_object('subject', repeat('x', 1000)), 'subject'
  from generate_series(1, ${READER + OTHER}::int) g`);
// As autovacuum leaves a table in use: the visibility map set, statistics gathered.
await recorder.db.execute(sql`vacuum analyze messages`);

t.test('the listing of a folder reads the primary key and no table row', async (t) => {
  recorder.queries.length = 0;
  const listed = await services.mail.list(reader.id, reader.inbox);
  t.equal(listed.length, READER);
  t.ok(listed.every((m, i) => m.uid === i + 1 && m.size === 4 && m.crlfSize === 4 && !m.pop3Hidden), 'UIDs ascend from 1');
  t.equal(listed.filter((m) => m.flags.length === 0).length, listed.filter((m) => m.modseq % 3 === 1).length, 'flags as stored');
  const nodes = await recorder.explain(recorder.queries.at(-1)!);
  const scans = nodes.filter((node) => node['Relation Name'] === 'messages');
  t.same(
    scans.map((node) => [node['Node Type'], node['Index Name'], node['Heap Fetches']]),
    [['Index Only Scan', 'messages_account_id_folder_id_uid_pk', 0]],
  );
});

t.test('messages changed since the last vacuum are still listed as they are now', async (t) => {
  await services.mail.changeFlags(reader.id, reader.inbox, [1, 2], 'add', ['\\Flagged']);
  const listed = await services.mail.list(reader.id, reader.inbox);
  t.equal(listed.length, READER);
  t.same(listed.slice(0, 2).map((m) => m.flags.includes('\\Flagged')), [true, true]);
  t.notOk(listed[2]!.flags.includes('\\Flagged'));
});
