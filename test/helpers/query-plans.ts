import type { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import type pg from 'pg';
import type { Database, DatabaseHandle } from '../../src/db/client.js';
import * as schema from '../../src/db/schema/index.js';

export interface RecordedQuery {
  sql: string;
  params: unknown[];
}

/** One node of an EXPLAIN (FORMAT JSON) plan, with the fields the tests read. */
export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Rows Removed by Filter'?: number;
  'Heap Fetches'?: number;
  Plans?: PlanNode[];
}

/**
 * The database of `handle` behind a drizzle instance that records every query it runs, so a
 * test can run a core service on it and then EXPLAIN ANALYZE exactly what the service asked.
 */
export function recordQueries(handle: DatabaseHandle) {
  const client = (handle.db as unknown as { $client: pg.Pool | PGlite }).$client;
  const queries: RecordedQuery[] = [];
  const logger = { logQuery: (sql: string, params: unknown[]) => queries.push({ sql, params }) };
  const db = (
    handle.mode === 'postgres' ? drizzlePg(client as pg.Pool, { schema, logger }) : drizzlePglite(client as PGlite, { schema, logger })
  ) as unknown as Database;
  return {
    db,
    queries,
    /** Every node of the executed plan of `query`, depth first. */
    async explain(query: RecordedQuery): Promise<PlanNode[]> {
      // pg.Pool and PGlite both take (text, parameters) and answer { rows }; their overloads differ.
      const run = client.query.bind(client) as (text: string, params: unknown[]) => Promise<{ rows: { 'QUERY PLAN': [{ Plan: PlanNode }] }[] }>;
      const result = await run(`explain (analyze, format json) ${query.sql}`, query.params);
      const nodes: PlanNode[] = [];
      const walk = (node: PlanNode) => {
        nodes.push(node);
        for (const child of node.Plans ?? []) walk(child);
      };
      walk(result.rows[0]!['QUERY PLAN'][0].Plan);
      return nodes;
    },
  };
}
