import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import { connect, type DatabaseHandle } from '../../src/db/client.js';
import { openDatabase } from '../../src/main.js';
import { checkForLeaksAtEnd, recordDatabase } from './secrets.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/**
 * A migrated database of this test file's own: a new database on the Postgres server of
 * DATABASE_URL (dropped afterwards), or an in-memory PGlite when DATABASE_URL is unset.
 */
export async function freshDatabase(t: Teardown): Promise<DatabaseHandle> {
  return openTestDatabase(t, await freshDatabaseUrl(t));
}

/**
 * The database at url (null: a new in-memory PGlite), migrated, closed when the test ends; its
 * hashes and audit events go to the leak check as it closes (a test may close it early).
 */
export async function openTestDatabase(t: Teardown, url: string | null): Promise<DatabaseHandle> {
  checkForLeaksAtEnd(t);
  const opened = await connect({ databaseUrl: url, dataDir: 'memory://', poolSize: 10 });
  await opened.migrate();
  let recorded: Promise<void> | null = null;
  const handle: DatabaseHandle = {
    ...opened,
    async close() {
      recorded ??= recordDatabase(opened);
      try {
        await recorded;
      } finally {
        await opened.close();
      }
    },
  };
  // Registered after the database's own teardown, so it runs first (tap runs teardowns in reverse).
  t.teardown(() => handle.close());
  return handle;
}

/**
 * With DATABASE_URL set: the URL of a new, empty database on that server, dropped when the test
 * ends (for servers and CLIs started as child processes). Without it: null, meaning embedded.
 */
export async function freshDatabaseUrl(t: Teardown): Promise<string | null> {
  checkForLeaksAtEnd(t);
  const serverUrl = loadConfig().databaseUrl;
  if (serverUrl === null) return null;
  const name = `mailroom_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await runOnServer(serverUrl, `create database ${name}`);
  t.teardown(() => runOnServer(serverUrl, `drop database if exists ${name} with (force)`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function runOnServer(serverUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/** The database a stopped `mailroom serve` used (Postgres at databaseUrl, or embedded in dataDir), to check what it stored. */
export async function openStoppedServerDatabase(t: Teardown, where: { databaseUrl: string | null; dataDir: string }): Promise<DatabaseHandle> {
  const handle =
    where.databaseUrl !== null
      ? await connect({ databaseUrl: where.databaseUrl, dataDir: where.dataDir, poolSize: 2 })
      : await openDatabase(loadConfig({ MAILROOM_DATA_DIR: where.dataDir }));
  t.teardown(() => handle.close());
  return handle;
}
