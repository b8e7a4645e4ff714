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

/** The pool behind a database on a Postgres server; null for PGlite and for a transaction. */
export function serverPool(db: Executor): pg.Pool | null {
  const client = (db as { $client?: unknown }).$client;
  return client instanceof pg.Pool ? client : null;
}

export interface DatabaseHandle {
  db: Database;
  mode: 'postgres' | 'embedded';
  /** The pg pool, for its metrics; PGlite has none. */
  pool?: Pick<pg.Pool, 'totalCount' | 'idleCount' | 'waitingCount'>;
  /** Applies the committed migrations that have not run yet. */
  migrate(): Promise<void>;
  /**
   * Hands each notification on channel to onPayload until the returned function is called.
   * Postgres: one dedicated session that reconnects by itself when lost; onReconnect runs once it
   * listens again, because notifications sent while it was away are gone. Embedded: never
   * reconnects. Neither callback may throw.
   */
  listen(channel: string, onPayload: (payload: string) => void, onReconnect: () => void): Promise<Unlisten>;
  /** Idempotent; ends every listener too. */
  close(): Promise<void>;
}

/** Idempotent; harmless after the handle is closed. */
export type Unlisten = () => Promise<void>;

const migrationsFolder = fileURLToPath(new URL('../../migrations', import.meta.url));
/** Several processes starting at once on one database take turns applying migrations. */
const MIGRATION_LOCK_ID = 0x6d61696c;
/**
 * How long opening a connection may take. A server that is down refuses at once; an unreachable
 * one answers nothing, and without a bound every query would wait for it forever.
 */
export const CONNECT_TIMEOUT_MS = 10_000;
/** A lost listener session retries at this delay, doubling up to the cap. */
const RECONNECT_DELAY_MIN_MS = 100;
const RECONNECT_DELAY_MAX_MS = 5_000;

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
  const listeners = new Set<Unlisten>();
  let closed = false;
  const closedError = () => new Error('the database handle is closed');
  return {
    ...handle,
    async listen(channel, onPayload, onReconnect) {
      if (closed) throw closedError();
      const unlisten = once(await handle.listen(channel, onPayload, onReconnect));
      // The handle closed while this listener was starting: it must not outlive the handle.
      if (closed) {
        await unlisten().catch(() => {}); // PGlite refuses UNLISTEN once closing; nothing to undo then.
        throw closedError();
      }
      listeners.add(unlisten);
      return async () => {
        listeners.delete(unlisten);
        await unlisten();
      };
    },
    // Closing twice (a shutdown racing a test teardown) is harmless.
    close: once(async () => {
      closed = true;
      await Promise.allSettled([...listeners].map((unlisten) => unlisten()));
      await handle.close();
    }),
  };
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}

function connectPostgres(url: string, poolSize: number): DatabaseHandle {
  // The timeout also bounds the wait for a free client, so a request fails rather than queue forever.
  const pool = new pg.Pool({ connectionString: url, max: poolSize, keepAlive: true, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  // An idle client losing its server must not crash the process; the next query reports it.
  pool.on('error', () => {});
  return {
    db: drizzlePg(pool, { schema }),
    mode: 'postgres',
    pool,
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
    listen: (channel, onPayload, onReconnect) => listenPostgres(url, channel, onPayload, onReconnect),
    close: () => pool.end(),
  };
}

/**
 * LISTEN belongs to one session for as long as it lasts, so it gets a client of its own rather
 * than a pooled one. When that session is lost (server restart, terminated backend, network),
 * it reconnects with a growing delay until it listens again or is stopped.
 */
async function listenPostgres(
  url: string,
  channel: string,
  onPayload: (payload: string) => void,
  onReconnect: () => void,
): Promise<Unlisten> {
  let stopped = false;
  let delay = RECONNECT_DELAY_MIN_MS;
  let retryTimer: NodeJS.Timeout | undefined;
  let reconnecting: Promise<void> | undefined;

  async function openSession(): Promise<pg.Client> {
    // keepAlive and the timeout: a silently dead network must not leave the feed mute forever.
    const client = new pg.Client({ connectionString: url, keepAlive: true, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
    // An error on an open session is followed by 'end' once the socket is closed.
    client.on('error', () => void client.end().catch(() => {}));
    client.on('notification', (message) => {
      if (message.channel === channel && message.payload !== undefined) onPayload(message.payload);
    });
    try {
      await client.connect();
      await client.query(`listen ${client.escapeIdentifier(channel)}`);
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    client.once('end', () => {
      if (!stopped) reconnectLater();
    });
    return client;
  }

  function reconnectLater(): void {
    retryTimer = setTimeout(() => (reconnecting = reconnect()), delay);
    delay = Math.min(delay * 2, RECONNECT_DELAY_MAX_MS);
  }

  async function reconnect(): Promise<void> {
    try {
      session = await openSession();
    } catch {
      if (!stopped) reconnectLater();
      return;
    }
    if (stopped) {
      await session.end();
      return;
    }
    delay = RECONNECT_DELAY_MIN_MS;
    onReconnect();
  }

  let session = await openSession();
  return async () => {
    stopped = true;
    clearTimeout(retryTimer);
    await reconnecting;
    await session.end().catch(() => {});
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
    // Notifications are delivered after the notifying transaction commits, as on a server.
    async listen(channel, onPayload) {
      const unlisten = await client.listen(channel, onPayload);
      return () => unlisten();
    },
    close: () => client.close(),
  };
}
