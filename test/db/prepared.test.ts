import { sql } from 'drizzle-orm';
import t from 'tap';
import { executePrepared } from '../../src/db/prepared.js';
import { freshDatabase } from '../helpers/database.js';

t.test('a prepared statement answers like a plain one, and on Postgres settles on a generic plan', async (t) => {
  const { db, mode } = await freshDatabase(t);
  const square = (n: number) => sql`select ${n}::int * ${n}::int as square`;
  for (let n = 1; n <= 8; n++) {
    t.same(await executePrepared(db, 'mailroom_test_square', square(n)), [{ square: n * n }]);
  }
  t.same(await executePrepared(db, null, square(9)), [{ square: 81 }], 'a null name runs it plain');
  if (mode === 'postgres') {
    // Queries one after another reuse the same pooled session, the one that prepared it.
    const [plans] = await executePrepared(
      db,
      null,
      sql`select generic_plans, custom_plans from pg_prepared_statements where name = 'mailroom_test_square'`,
    );
    t.ok(Number(plans?.generic_plans) > 0, 'runs after the fifth reuse a generic plan');
  }
  await db.transaction(async (tx) => {
    t.same(await executePrepared(tx, 'mailroom_test_square', square(3)), [{ square: 9 }], 'inside a transaction too');
  });
});
