import { and, eq, lt, sql } from 'drizzle-orm';
import type { Database } from '../../db/client.js';
import { idempotencyKeys } from '../../db/schema/index.js';

/** How long a stored response is replayed; a retry loop older than this is a new request. */
const RETENTION = sql`interval '24 hours'`;

export type Claim =
  | { state: 'new' }
  | { state: 'replay'; statusCode: number; headers: Record<string, string>; body: string }
  /** The key was used before with another request. */
  | { state: 'mismatch' }
  /** The first request with this key has not finished yet. */
  | { state: 'in_progress' };

/** Remembers responses to mutations by the caller's Idempotency-Key, so retries are safe. */
export function createIdempotencyService(db: Database) {
  const forKey = (actorId: string, key: string) => and(eq(idempotencyKeys.actorId, actorId), eq(idempotencyKeys.key, key));

  return {
    async claim(actorId: string, key: string, requestHash: string): Promise<Claim> {
      await db.delete(idempotencyKeys).where(and(forKey(actorId, key), lt(idempotencyKeys.createdAt, sql`now() - ${RETENTION}`)));
      const inserted = await db
        .insert(idempotencyKeys)
        .values({ actorId, key, requestHash })
        .onConflictDoNothing()
        .returning({ key: idempotencyKeys.key });
      if (inserted.length > 0) return { state: 'new' };
      const [row] = await db.select().from(idempotencyKeys).where(forKey(actorId, key));
      // Released between our insert and select: the earlier request failed, so this one may run.
      if (!row) return this.claim(actorId, key, requestHash);
      if (row.requestHash !== requestHash) return { state: 'mismatch' };
      if (row.statusCode === null) return { state: 'in_progress' };
      return {
        state: 'replay',
        statusCode: row.statusCode,
        headers: (row.responseHeaders ?? {}) as Record<string, string>,
        body: row.responseBody ?? '',
      };
    },

    async complete(actorId: string, key: string, statusCode: number, headers: Record<string, string>, body: string) {
      await db
        .update(idempotencyKeys)
        .set({ statusCode, responseHeaders: headers, responseBody: body })
        .where(forKey(actorId, key));
    },

    /** Forgets a claim whose request failed on our side, so the client's retry runs again. */
    async release(actorId: string, key: string) {
      await db.delete(idempotencyKeys).where(forKey(actorId, key));
    },

    async purgeExpired() {
      await db.delete(idempotencyKeys).where(lt(idempotencyKeys.createdAt, sql`now() - ${RETENTION}`));
    },
  };
}

export type IdempotencyService = ReturnType<typeof createIdempotencyService>;
