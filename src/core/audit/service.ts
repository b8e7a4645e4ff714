import { and, desc, eq, gte, inArray, lt, type SQL, sql } from 'drizzle-orm';
import type { Database, Executor } from '../../db/client.js';
import { auditEvents } from '../../db/schema/index.js';
import type { Actor } from '../actor.js';
import { decodeCursor, type Page, type PageRequest, toPage } from '../pagination.js';
import { eventsOfAudit, queueEvents } from '../webhooks/events.js';

export interface AuditEntry {
  action: string;
  targetType: 'domain' | 'mailbox' | 'api_key' | 'client_address' | 'webhook';
  target: string;
  /** The domain the target belongs to, or null for global targets such as API keys. */
  domain: string | null;
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
}

export interface AuditEventView {
  id: string;
  at: string;
  actor: { id: string; name: string };
  action: string;
  targetType: string;
  target: string;
  domain: string | null;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  requestId: string | null;
  ip: string | null;
}

export interface AuditFilter {
  target?: string;
  actor?: string;
  action?: string;
  from?: Date;
  to?: Date;
}

/** Keeps only the top-level fields whose value changed, on both sides. */
export function changedFields<T extends object>(before: T, after: T): { before: Partial<T>; after: Partial<T> } {
  const was: Partial<T> = {};
  const now: Partial<T> = {};
  for (const key of Object.keys(after) as (keyof T)[]) {
    if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) {
      was[key] = before[key];
      now[key] = after[key];
    }
  }
  return { before: was, after: now };
}

type AuditRow = typeof auditEvents.$inferSelect;

function view(row: AuditRow): AuditEventView {
  return {
    id: String(row.id),
    at: row.at.toISOString(),
    actor: { id: row.actorId, name: row.actorName },
    action: row.action,
    targetType: row.targetType,
    target: row.target,
    domain: row.domain,
    before: row.before as Record<string, unknown> | null,
    after: row.after as Record<string, unknown> | null,
    requestId: row.requestId,
    ip: row.ip,
  };
}

export function createAuditService(db: Database) {
  return {
    /**
     * Call inside the mutation's transaction, so the event exists exactly when the change does;
     * the webhook events the change stands for are queued with it.
     */
    async record(tx: Executor, actor: Actor, entry: AuditEntry): Promise<void> {
      await this.recordMany(tx, actor, [entry]);
    },

    /**
     * record() for many changes at once (a batch), in two statements; the entries travel as one
     * JSON parameter, as a statement with thousands of parameters is slow to build and send.
     */
    async recordMany(tx: Executor, actor: Actor, entries: readonly AuditEntry[]): Promise<void> {
      if (entries.length === 0) return;
      const rows = entries.map((entry) => ({
        action: entry.action,
        target_type: entry.targetType,
        target: entry.target,
        domain: entry.domain,
        before: entry.before ?? null,
        after: entry.after ?? null,
      }));
      await tx.execute(sql`
        insert into audit_events (actor_id, actor_name, action, target_type, target, domain, before, after, request_id, ip)
        select ${actor.id}::text, ${actor.name}::text, e.action, e.target_type, e.target, e.domain, e.before, e.after,
               ${actor.requestId ?? null}::text, ${actor.ip ?? null}::text
        from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
          as e(action text, target_type text, target text, domain text, before jsonb, after jsonb)`);
      await queueEvents(tx, entries.flatMap((entry) => eventsOfAudit(actor, entry)));
    },

    /** For changes the core commits in transactions of its own (mail delivery, import): recorded right after. */
    async recordAfter(actor: Actor, entry: AuditEntry): Promise<void> {
      await db.transaction((tx) => this.record(tx, actor, entry));
    },

    /** Newest first. A domain-confined actor sees only events of its own domains. */
    async list(filter: AuditFilter, page: PageRequest, actor: Actor): Promise<Page<AuditEventView>> {
      const conditions: (SQL | undefined)[] = [
        filter.target === undefined ? undefined : eq(auditEvents.target, filter.target.toLowerCase()),
        filter.actor === undefined ? undefined : eq(auditEvents.actorId, filter.actor),
        filter.action === undefined ? undefined : eq(auditEvents.action, filter.action),
        filter.from === undefined ? undefined : gte(auditEvents.at, filter.from),
        // Stored to the microsecond, listed to the millisecond: `to` takes in the whole millisecond
        // it names, so an event's own listed time finds it.
        filter.to === undefined
          ? undefined
          : sql`${auditEvents.at} < ${filter.to.toISOString()}::timestamptz + interval '1 millisecond'`,
        page.cursor === undefined ? undefined : lt(auditEvents.id, decodeCursor<number>(page.cursor, 'number')),
        actor.domains === null ? undefined : inArray(auditEvents.domain, [...actor.domains]),
      ];
      const rows = await db
        .select()
        .from(auditEvents)
        .where(and(...conditions))
        .orderBy(desc(auditEvents.id))
        .limit(page.limit + 1);
      return toPage(rows, page.limit, (row) => row.id, view);
    },
  };
}

export type AuditService = ReturnType<typeof createAuditService>;
