import type { SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { type Executor, serverPool } from './client.js';

const dialect = new PgDialect();

export interface StatementOptions {
  /**
   * A hot statement, run as a named prepared statement on a Postgres server: each pooled session
   * parses it once and, after five runs, keeps a generic plan instead of planning it every time
   * (the one-statement delivery spent more time being planned than executed). The text must be
   * the same on every call under one name, and its estimate must not hinge on parameter values
   * (no `= any($n)`), or Postgres keeps making custom plans.
   */
  preparedAs?: string;
}

/**
 * A statement's rows, with the options applied on a Postgres server; PGlite, and an executor
 * that is a transaction, run it as a plain statement.
 */
export async function runStatement(db: Executor, query: SQL, options: StatementOptions = {}): Promise<Record<string, unknown>[]> {
  const pool = serverPool(db);
  if (pool && options.preparedAs !== undefined) {
    const { sql: text, params } = dialect.sqlToQuery(query);
    return (await pool.query({ name: options.preparedAs, text, values: params })).rows;
  }
  // node-postgres and PGlite both answer { rows }; the shared executor type does not say so.
  return ((await db.execute(query)) as unknown as { rows: Record<string, unknown>[] }).rows;
}
