import { sql } from 'drizzle-orm';
import t from 'tap';
import { runStatement } from '../../src/db/prepared.js';
import { freshDatabase } from '../helpers/database.js';

t.test('a prepared statement answers like a plain one, and on Postgres settles on a generic plan', async (t) => {
  const { db, mode } = await freshDatabase(t);
  const square = (n: number) => sql`select ${n}::int * ${n}::int as square`;
  for (let n = 1; n <= 8; n++) {
    t.same(await runStatement(db, square(n), { preparedAs: 'mailroom_test_square' }), [{ square: n * n }]);
  }
  t.same(await runStatement(db, square(9)), [{ square: 81 }], 'without options it runs plain');
  if (mode === 'postgres') {
    // Queries one after another reuse the same pooled session, the one that prepared it.
    const [plans] = await runStatement(
      db,
      sql`select generic_plans, custom_plans from pg_prepared_statements where name = 'mailroom_test_square'`,
    );
    t.ok(Number(plans?.generic_plans) > 0, 'runs after the fifth reuse a generic plan');
  }
  await db.transaction(async (tx) => {
    t.same(await runStatement(tx, square(3), { preparedAs: 'mailroom_test_square' }), [{ square: 9 }], 'inside a transaction too');
  });
});
