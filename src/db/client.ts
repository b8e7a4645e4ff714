import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import type { ExtractTablesWithRelations } from 'drizzle-orm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import type { PgDatabase, PgQueryResultHKT, PgTransaction } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';
import * as schema from './schema/index.js';

export type Schema = typeof schema;
export type Database = PgDatabase<PgQueryResultHKT, Schema>;
export type Transaction = PgTransaction<PgQueryResultHKT, Schema, ExtractTablesWithRelations<Schema>>;
/** Either the database or an open transaction: what a query helper runs on. */
export type Executor = Database | Transaction;

export interface DatabaseHandle {
  db: Database;
  mode: 'postgres' | 'embedded';
  /** Applies the committed migrations that have not run yet. */
  migrate(): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
}

const migrationsFolder = fileURLToPath(new URL('../../migrations', import.meta.url));
/** Several processes starting at once on one database take turns applying migrations. */
const MIGRATION_LOCK_ID = 0x6d61696c;

export interface ConnectOptions {
  /** Set: a real Postgres server. Unset: embedded PGlite. */
  databaseUrl: string | null;
  /** Where PGlite keeps its files; `memory://` keeps nothing. */
  dataDir: string;
  poolSize: number;
}

export async function connect(options: ConnectOptions): Promise<DatabaseHandle> {
  const handle = options.databaseUrl
    ? connectPostgres(options.databaseUrl, options.poolSize)
    : await connectEmbedded(options.dataDir);
  // Closing twice (a shutdown racing a test teardown) is harmless.
  let closing: Promise<void> | undefined;
  return { ...handle, close: () => (closing ??= handle.close()) };
}

function connectPostgres(url: string, poolSize: number): DatabaseHandle {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  // An idle client losing its server must not crash the process; the next query reports it.
  pool.on('error', () => {});
  return {
    db: drizzlePg(pool, { schema }),
    mode: 'postgres',
    async migrate() {
      const client = await pool.connect();
      try {
        await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
        try {
          await migratePg(drizzlePg(client), { migrationsFolder });
        } finally {
          await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]);
        }
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

async function connectEmbedded(dataDir: string): Promise<DatabaseHandle> {
  const inMemory = dataDir.startsWith('memory://');
  if (!inMemory) await mkdir(dataDir, { recursive: true });
  const client = await PGlite.create(inMemory ? dataDir : `${dataDir}/pglite`);
  const db = drizzlePglite(client, { schema });
  return {
    db,
    mode: 'embedded',
    // PGlite is one connection inside this process: no other migrator can run beside it.
    migrate: () => migratePglite(db, { migrationsFolder }),
    close: () => client.close(),
  };
}
