import { sql } from 'drizzle-orm';
import { bigint, boolean, check, index, integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

export const domains = pgTable(
  'domains',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    /** ASCII (punycode) and lowercase; the Unicode form is derived for display. */
    name: text('name').notNull().unique(),
    status: text('status', { enum: ['active', 'suspended'] }).notNull().default('active'),
    defaultQuotaBytes: bigint('default_quota_bytes', { mode: 'number' }),
    defaultQuotaMessages: integer('default_quota_messages'),
    defaultImap: boolean('default_imap').notNull().default(true),
    defaultPop3: boolean('default_pop3').notNull().default(true),
    defaultPop3DeleteMode: text('default_pop3_delete_mode', { enum: ['remove', 'hide', 'trash'] })
      .notNull()
      .default('remove'),
    /** Whether a suspended mailbox of this domain still receives mail. */
    suspendedDelivery: text('suspended_delivery', { enum: ['receive', 'reject'] })
      .notNull()
      .default('receive'),
    maxMailboxes: integer('max_mailboxes'),
    maxQuotaBytes: bigint('max_quota_bytes', { mode: 'number' }),
    maxQuotaMessages: integer('max_quota_messages'),
    /** Bumped on every change; part of the ETag. */
    version: integer('version').notNull().default(1),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('domains_name_prefix_idx').on(t.name.op('text_pattern_ops')),
    check('domains_status_check', sql`${t.status} in ('active', 'suspended')`),
    check('domains_suspended_delivery_check', sql`${t.suspendedDelivery} in ('receive', 'reject')`),
  ],
);
