import { type SQL, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import type { Actor } from '../actor.js';
import type { AuditEntry } from '../audit/service.js';

export const EVENT_TYPES = [
  'mailbox.created',
  'mailbox.updated',
  'mailbox.deleted',
  'mailbox.protocol_switched',
  'mailbox.suspended',
  'mailbox.unsuspended',
  'mailbox.password_changed',
  'mailbox.quota_crossed',
  'mailbox.login_locked',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** An event as queued; the dispatcher adds its id and time when it sends it. */
export interface WebhookEvent {
  type: EventType;
  /** The mailbox's domain (ASCII): webhooks confined to domains get only their own. */
  domain: string;
  mailbox: string;
  data: Record<string, unknown>;
}

/** The percentages of a quota whose upward crossing is an event. */
export const QUOTA_THRESHOLDS = [80, 95, 100] as const;

type Changes = Record<string, unknown> | null;

/** Which events an audited change is, and which of its fields each one carries. */
const AUDITED: Record<string, (before: Changes, after: Changes) => { type: EventType; field?: string }[]> = {
  'mailbox.create': () => [{ type: 'mailbox.created' }],
  'mailbox.update': (_before, after) => [
    { type: 'mailbox.updated' },
    ...(after?.protocols === undefined ? [] : [{ type: 'mailbox.protocol_switched' as const, field: 'protocols' }]),
    ...(after?.status === undefined
      ? []
      : [{ type: after.status === 'suspended' ? ('mailbox.suspended' as const) : ('mailbox.unsuspended' as const), field: 'status' }]),
  ],
  'mailbox.password.set': () => [{ type: 'mailbox.password_changed' }],
  'mailbox.delete': () => [{ type: 'mailbox.deleted' }],
  'mailbox.login_lockout.start': () => [{ type: 'mailbox.login_locked' }],
};

function only(changes: Changes, field: string | undefined): Changes {
  return changes === null || field === undefined ? changes : { [field]: changes[field] };
}

/** The webhook events an audit entry stands for (none for most): same who, what and before/after. */
export function eventsOfAudit(actor: Actor, entry: AuditEntry): WebhookEvent[] {
  const events = AUDITED[entry.action];
  if (events === undefined || entry.domain === null) return [];
  const before = entry.before ?? null;
  const after = entry.after ?? null;
  return events(before, after).map(({ type, field }) => ({
    type,
    domain: entry.domain!,
    mailbox: entry.target,
    data: { actor: { id: actor.id, name: actor.name }, before: only(before, field), after: only(after, field) },
  }));
}

/** Whether webhook `w` takes an event of this type in this domain. */
const wants = (type: SQL, domain: SQL) =>
  sql`(w.event_types is null or ${type} = any(w.event_types)) and (w.domains is null or ${domain} = any(w.domains))`;

/**
 * Two CTEs for a WITH list that already has the CTE `source` (columns type, domain, mailbox,
 * data): every row of it some webhook wants becomes an event, with a delivery per such webhook.
 * Nothing is written when no webhook wants it, so an installation without webhooks keeps no outbox.
 */
export function queueEventsFrom(source: string): SQL {
  return sql`queued_events as (
      insert into webhook_events (type, domain, mailbox, data)
      select s.type, s.domain, s.mailbox, s.data from ${sql.identifier(source)} s
      where exists (select 1 from webhooks w where ${wants(sql`s.type`, sql`s.domain`)})
      returning id, type, domain
    ),
    queued_deliveries as (
      insert into webhook_deliveries (webhook_id, event_id)
      select w.id, e.id from queued_events e join webhooks w on ${wants(sql`e.type`, sql`e.domain`)}
      returning event_id
    )`;
}

/** Queues events inside the transaction of the change they report: they exist exactly when it does. */
export async function queueEvents(tx: Executor, events: readonly WebhookEvent[]): Promise<void> {
  if (events.length === 0) return;
  await tx.execute(sql`
    with source as (
      select * from jsonb_to_recordset(${JSON.stringify(events)}::jsonb) as e(type text, domain text, mailbox text, data jsonb)
    ),
    ${queueEventsFrom('source')}
    select count(*) from queued_deliveries`);
}

/** SQL: the highest of QUOTA_THRESHOLDS `used` has reached of `quota`; 0 below them all or without a quota. */
export function quotaLevel(used: SQL, quota: SQL): SQL {
  const [low, middle, full] = QUOTA_THRESHOLDS.map((percent) => sql.raw(String(percent)));
  return sql`(case when (${quota}) is null or (${quota}) <= 0 then 0
    when (${used}) * 100 >= (${quota}) * ${full} then ${full}
    when (${used}) * 100 >= (${quota}) * ${middle} then ${middle}
    when (${used}) * 100 >= (${quota}) * ${low} then ${low} else 0 end)::smallint`;
}

/** The SET clause that keeps an account's quota levels with its usage counters (`a`: the accounts row). */
export function quotaLevels(usedBytes: SQL, usedMessages: SQL): SQL {
  return sql`quota_storage_level = ${quotaLevel(usedBytes, sql`a.quota_bytes`)},
    quota_messages_level = ${quotaLevel(sql`(${usedMessages})::bigint`, sql`a.quota_messages::bigint`)}`;
}

/**
 * A query listing mailbox.quota_crossed events, one per threshold crossed upwards, as a source
 * for queueEventsFrom. `usage` is a CTE of accounts whose usage changed, with columns domain,
 * address, quota_bytes, quota_messages, used_bytes and used_messages (after the change), and
 * storage_level and messages_level (before it). A mailbox that fell below a threshold has a lower
 * level by then, so its next crossing counts again.
 */
export function quotaCrossings(usage: string): SQL {
  return sql`select 'mailbox.quota_crossed'::text as type, u.domain, u.address as mailbox,
      jsonb_build_object('quota', q.quota, 'threshold', th.percent, 'limit', q.quota_limit, 'used', q.used) as data
    from ${sql.identifier(usage)} u
    cross join lateral (values
      ('storage', u.storage_level, ${quotaLevel(sql`u.used_bytes`, sql`u.quota_bytes`)}, u.quota_bytes, u.used_bytes),
      ('messages', u.messages_level, ${quotaLevel(sql`u.used_messages::bigint`, sql`u.quota_messages::bigint`)},
        u.quota_messages::bigint, u.used_messages::bigint)
    ) as q(quota, level_before, level_after, quota_limit, used)
    join (values ${sql.join(QUOTA_THRESHOLDS.map((percent) => sql`(${sql.raw(String(percent))})`), sql`, `)}) as th(percent)
      on th.percent > q.level_before and th.percent <= q.level_after
    order by u.address, q.quota, th.percent`;
}
