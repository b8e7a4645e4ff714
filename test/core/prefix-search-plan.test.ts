import { sql } from 'drizzle-orm';
import t from 'tap';
import type { Actor } from '../../src/core/actor.js';
import { createServices } from '../../src/core/services.js';
import { freshDatabase } from '../helpers/database.js';
import { type PlanNode, recordQueries } from '../helpers/query-plans.js';

// A prefix search (?q=) must read about one page of rows, wherever the prefix falls in the
// order. Ordered by the collation, Postgres walked the address index from its start and filtered
// (95,000 rows for q=ulf among 100,000 mailboxes, 1.5 s).
const ACTOR: Actor = { id: 'test', name: 'test', domains: null };
const SEARCH = 'zed';
const MATCHES = 600;
const OTHERS = 5400;

const database = await freshDatabase(t);
const recorder = recordQueries(database);
const services = createServices(recorder.db, { passwordPolicy: { minLength: 10 }, bootstrapToken: null, maxMessageSize: 1024 * 1024 });
await services.domains.create({ name: 'search.test' }, ACTOR);
const { rows } = (await recorder.db.execute(sql`select id from domains where name = 'search.test'`)) as unknown as { rows: { id: number }[] };
const domainId = rows[0]!.id;
// Most sort before the prefix; the matches, 10%, come last.
await recorder.db.execute(sql`
  insert into accounts (domain_id, address, password_hash, imap_enabled, pop3_enabled, pop3_delete_mode)
  select ${domainId}::bigint, case when g <= ${MATCHES}::int then ${SEARCH} || g else 'a' || g end || '@search.test',
         '{bench}unused', true, true, 'remove'
  from generate_series(1, ${MATCHES + OTHERS}::int) g`);
await recorder.db.execute(sql`
  insert into domains (name) select case when g <= ${MATCHES}::int then ${SEARCH} || g else 'a' || g end || '.example'
  from generate_series(1, ${MATCHES + OTHERS}::int) g`);
await recorder.db.execute(sql`analyze accounts`);
await recorder.db.execute(sql`analyze domains`);

/** Rows the scans of `table` produced or threw away. */
const rowsRead = (nodes: PlanNode[], table: string) =>
  nodes
    .filter((node) => node['Relation Name'] === table)
    .reduce((sum, node) => sum + (node['Actual Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0), 0);

t.test('a mailbox prefix search reads one page of rows, and only matching rows after it', async (t) => {
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    recorder.queries.length = 0;
    const page = await services.mailboxes.list({ q: SEARCH }, { limit: 50, ...(cursor ? { cursor } : {}) }, ACTOR);
    seen.push(...page.items.map((m) => m.address));
    const read = rowsRead(await recorder.explain(recorder.queries.at(-1)!), 'accounts');
    // The first page stops after 51 rows; a later one may gather the matches past its cursor and sort them.
    t.ok(seen.length === 50 ? read <= 51 : read <= MATCHES + 1, `page ${seen.length / 50}: ${read} rows read`);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  t.equal(seen.length, MATCHES);
  t.ok(seen.every((address) => address.startsWith(SEARCH)));
  t.same(seen, [...seen].sort(), 'in address order');
});

t.test('a domain prefix search reads one page of rows', async (t) => {
  recorder.queries.length = 0;
  const page = await services.domains.list({ q: SEARCH }, { limit: 50 }, ACTOR);
  t.equal(page.items.length, 50);
  t.ok(page.items.every((d) => d.name.startsWith(SEARCH)));
  t.ok(rowsRead(await recorder.explain(recorder.queries.at(-1)!), 'domains') <= 51);
});
