import pg from 'pg';
import { CONNECT_TIMEOUT_MS } from './client.js';

/**
 * Exclusive locks that vanish with the process holding them: a crashed gateway never leaves a
 * mailbox locked. Keys are positive integers (account ids).
 */
export interface SessionLocks {
  /** True when this process now holds the key; false when another holder has it. */
  tryLock(key: number): Promise<boolean>;
  unlock(key: number): Promise<void>;
  close(): Promise<void>;
}

/** Embedded mode: one process owns the data directory, so its memory is the whole truth. */
export function inProcessLocks(): SessionLocks {
  const held = new Set<number>();
  return {
    async tryLock(key) {
      if (held.has(key)) return false;
      held.add(key);
      return true;
    },
    async unlock(key) {
      held.delete(key);
    },
    async close() {
      held.clear();
    },
  };
}

/**
 * Postgres advisory locks on one session of this process's own. Postgres frees them when that
 * session ends, which a crash ends too. If the session is lost while the process lives (a
 * database restart), every lock is gone at once: onLost names the keys, so their holders stop
 * (the next lock opens a new session).
 * Advisory locks are re-entrant within a session, so this process's own holders are tracked too.
 */
export function postgresLocks(url: string, onLost: (keys: number[]) => void): SessionLocks {
  const held = new Set<number>();
  let session: Promise<pg.Client> | undefined;

  function open(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: url, keepAlive: true, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
    const opening = client.connect().then(() => client);
    client.on('error', () => void client.end().catch(() => {}));
    client.once('end', () => {
      if (session !== opening) return;
      session = undefined;
      if (held.size > 0) {
        const lost = [...held];
        held.clear();
        onLost(lost);
      }
    });
    opening.catch(() => {
      if (session === opening) session = undefined;
    });
    return opening;
  }

  // Negative keys: the migration lock and any other advisory use stay positive.
  const lockKey = (key: number) => -key;
  // One query at a time on the session: pg deprecates overlapping queries on one client.
  let queue: Promise<unknown> = Promise.resolve();
  const query = <T extends object>(client: pg.Client, text: string, values: unknown[]) => {
    const result = queue.then(() => client.query<T>(text, values));
    queue = result.catch(() => {});
    return result;
  };

  return {
    async tryLock(key) {
      if (held.has(key)) return false;
      held.add(key);
      try {
        const client = await (session ??= open());
        const result = await query<{ locked: boolean }>(client, 'select pg_try_advisory_lock($1) as locked', [lockKey(key)]);
        if (!result.rows[0]!.locked) held.delete(key);
        return result.rows[0]!.locked;
      } catch (error) {
        held.delete(key);
        throw error;
      }
    },
    async unlock(key) {
      if (!held.delete(key)) return;
      const client = await session;
      if (client) await query(client, 'select pg_advisory_unlock($1)', [lockKey(key)]).catch(() => {});
    },
    async close() {
      held.clear();
      const client = await session?.catch(() => undefined);
      session = undefined;
      await client?.end().catch(() => {});
    },
  };
}
