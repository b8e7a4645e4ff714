import { sql } from 'drizzle-orm';
import t from 'tap';
import { loggable } from '../../src/core/errors.js';
import { freshDatabase } from '../helpers/database.js';

t.test('a failed query logs its text and the driver error, never its parameters', async (t) => {
  const { db } = await freshDatabase(t);
  const secret = 'SECRET-PASSWORD-HASH';
  const error = await db.execute(sql`select ${secret}::int`).then(
    () => null,
    (thrown: unknown) => thrown,
  );
  t.ok(error instanceof Error && error.message.includes(secret), 'drizzle itself puts the parameter in its message');
  const safe = loggable(error) as Error & { cause: { code?: string } };
  t.notMatch(safe.message, secret);
  t.notMatch(safe.stack ?? '', secret);
  t.match(safe.message, /^Failed query: select \$1::int$/);
  t.equal(safe.cause.code, '22P02', 'the SQLSTATE stays, for whoever reads the log');
  const plain = new Error('not a query');
  t.equal(loggable(plain), plain, 'other errors pass as they are');
});
