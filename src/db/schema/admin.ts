import { bigint, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';

export const apiKeys = pgTable('api_keys', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  role: text('role', { enum: ['admin', 'provisioner', 'support'] }).notNull(),
  /** Null: every domain. Otherwise the ASCII domain names the key is confined to. */
  domains: text('domains').array(),
  /** SHA-256 of the token; tokens are random and long, so a fast hash is enough and allows lookup. */
  tokenHash: text('token_hash').notNull().unique(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
  revokedAt: timestamp('revoked_at', { withTimezone: true }),
});

export const auditEvents = pgTable(
  'audit_events',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
    actorId: text('actor_id').notNull(),
    actorName: text('actor_name').notNull(),
    action: text('action').notNull(),
    targetType: text('target_type').notNull(),
    target: text('target').notNull(),
    /** The domain the target belongs to, so domain-confined keys see only their own events. */
    domain: text('domain'),
    before: jsonb('before'),
    after: jsonb('after'),
    requestId: text('request_id'),
    ip: text('ip'),
  },
  (t) => [
    index('audit_events_target_idx').on(t.target, t.id),
    index('audit_events_actor_idx').on(t.actorId, t.id),
    index('audit_events_action_idx').on(t.action, t.id),
    index('audit_events_domain_idx').on(t.domain, t.id),
    index('audit_events_at_idx').on(t.at),
  ],
);

export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    actorId: text('actor_id').notNull(),
    key: text('key').notNull(),
    /** SHA-256 over method, path and body: a reused key with another request is refused. */
    requestHash: text('request_hash').notNull(),
    /** Null while the first request with this key is still running. */
    statusCode: integer('status_code'),
    responseHeaders: jsonb('response_headers'),
    responseBody: text('response_body'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.actorId, t.key] }), index('idempotency_keys_created_idx').on(t.createdAt)],
);

/**
 * Recent failed logins per client address and per existing mailbox, shared by every gateway
 * process: beyond a threshold the key is locked out until locked_until.
 */
export const loginFailures = pgTable(
  'login_failures',
  {
    kind: text('kind', { enum: ['ip', 'mailbox'] }).notNull(),
    /** The client address (an IPv6 client's /64) or the mailbox address. */
    key: text('key').notNull(),
    failures: integer('failures').notNull(),
    /** Failures are counted from here for one lock period, then start again from one. */
    firstFailureAt: timestamp('first_failure_at', { withTimezone: true }).notNull().defaultNow(),
    lockedUntil: timestamp('locked_until', { withTimezone: true }),
  },
  (t) => [primaryKey({ columns: [t.kind, t.key] })],
);
