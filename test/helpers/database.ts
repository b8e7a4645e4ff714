import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import { connect, type DatabaseHandle } from '../../src/db/client.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/**
 * A migrated database of this test file's own: a new database on the Postgres server of
 * DATABASE_URL (dropped afterwards), or an in-memory PGlite when DATABASE_URL is unset.
 */
export async function freshDatabase(t: Teardown): Promise<DatabaseHandle> {
  const serverUrl = loadConfig().databaseUrl;
  if (serverUrl === null) {
    const handle = await connect({ databaseUrl: null, dataDir: 'memory://', poolSize: 1 });
    await handle.migrate();
    t.teardown(() => handle.close());
    return handle;
  }
  const name = `mailroom_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const handle = await connect({ databaseUrl: url.toString(), dataDir: 'unused', poolSize: 10 });
  await handle.migrate();
  t.teardown(async () => {
    await handle.close();
    const dropper = new pg.Client({ connectionString: serverUrl });
    await dropper.connect();
    await dropper.query(`drop database if exists ${name} with (force)`);
    await dropper.end();
  });
  return handle;
}
