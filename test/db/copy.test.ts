import { sql } from 'drizzle-orm';
import t from 'tap';
import { serverPool } from '../../src/db/client.js';
import { copyRows } from '../../src/db/copy.js';
import { freshDatabase } from '../helpers/database.js';

const { db } = await freshDatabase(t);
const pool = serverPool(db)!;
const skip = pool === null && 'COPY through node-postgres needs a Postgres server; PGlite reads bytea directly';

t.test('binary COPY hands back every field raw, whatever its size', { skip }, async (t) => {
  t.equal(serverPool(await db.transaction(async (tx) => tx)), null, 'a transaction has no pool of its own');

  const rows = await copyRows(
    pool,
    sql`select n::int8, case when n = 2 then null else decode(repeat('ab', n * ${100_000}), 'hex') end
        from unnest(${sql.param([1, 2, 3, 0])}::int[]) as n order by n`,
  );
  t.equal(rows.length, 4);
  t.same(
    rows.map(([n]) => Number(n!.readBigInt64BE())),
    [0, 1, 2, 3],
  );
  t.same(rows[0]![1], Buffer.alloc(0), 'an empty bytea is an empty buffer');
  t.ok(rows[1]![1]!.equals(Buffer.alloc(100_000, 0xab)), '100 kB, split across many chunks, arrives whole');
  t.equal(rows[2]![1], null, 'NULL stays null');
  t.equal(rows[3]![1]!.length, 300_000);
  t.same(await copyRows(pool, sql`select 1 where false`), [], 'no rows');
  t.same(await copyRows(pool, sql`select from generate_series(1, 2)`), [[], []], 'rows without fields');
});

t.test('only numbers are written into the statement; a failing statement leaves the pool usable', { skip }, async (t) => {
  await t.rejects(copyRows(pool, sql`select ${"'; drop table accounts; --"}::text`), TypeError);
  await t.rejects(copyRows(pool, sql`select ${sql.param(['a'])}::text[]`), TypeError);
  // Fails after the first rows have been sent: the session is dropped, not reused mid-copy.
  await t.rejects(copyRows(pool, sql`select 1 / (3 - n) from generate_series(1, 5) as n`), /division by zero/);
  const [seven] = await copyRows(pool, sql`select ${7}::int4`);
  t.equal(seven![0]!.readInt32BE(), 7, 'the next copy works');
  t.equal((await pool.query('select 1 as one')).rows[0].one, 1, 'and so do ordinary queries');
});
