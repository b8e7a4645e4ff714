import { sql } from 'drizzle-orm';
import t from 'tap';
import { connect } from '../../src/db/client.js';
import { InvalidError, isDatabaseUnavailable } from '../../src/core/errors.js';
import { cuttableProxy } from '../helpers/cuttable-proxy.js';
import { freshDatabase, freshDatabaseUrl } from '../helpers/database.js';
import { freePort } from '../helpers/server.js';

const caught = (promise: Promise<unknown>) => promise.then(() => null, (error: unknown) => error);

t.test('errors of the query itself are not an outage', async (t) => {
  const { db } = await freshDatabase(t);
  t.notOk(isDatabaseUnavailable(await caught(db.execute(sql`select 1/0`))), 'division by zero');
  t.notOk(isDatabaseUnavailable(await caught(db.execute(sql`select * from no_such_table`))), 'a missing table');
  t.notOk(isDatabaseUnavailable(new InvalidError('bad', 'a domain error')));
  t.notOk(isDatabaseUnavailable(new Error('anything else')));
  t.notOk(isDatabaseUnavailable('not even an error'));
});

const url = await freshDatabaseUrl(t);

t.test('a server that is not there, or that drops the connection mid-query, is an outage', { skip: url === null && 'Postgres only' }, async (t) => {
  const nowhere = new URL(url!);
  nowhere.port = String(await freePort());
  const down = await connect({ databaseUrl: nowhere.toString(), dataDir: 'memory://', poolSize: 1 });
  t.teardown(() => down.close());
  const refused = await caught(down.db.execute(sql`select 1`));
  t.ok(isDatabaseUnavailable(refused), `refused: ${String(refused)}`);

  const proxy = await cuttableProxy(t, url!);
  const handle = await connect({ databaseUrl: proxy.url, dataDir: 'memory://', poolSize: 1 });
  t.teardown(() => handle.close());
  const slow = caught(handle.db.execute(sql`select pg_sleep(5)`));
  await new Promise((resolve) => setTimeout(resolve, 300));
  proxy.cut('refuse');
  const dropped = await slow;
  t.ok(isDatabaseUnavailable(dropped), `dropped mid-query: ${String(dropped)}`);
  const reconnecting = await caught(handle.db.execute(sql`select 1`));
  t.ok(isDatabaseUnavailable(reconnecting), `cut off while reconnecting: ${String(reconnecting)}`);
  proxy.restore();
  const after = (await handle.db.execute(sql`select 1 as one`)) as unknown as { rows: unknown[] };
  t.same(after.rows, [{ one: 1 }], 'the pool connects again by itself');
});
