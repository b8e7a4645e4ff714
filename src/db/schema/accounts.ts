import { sql } from 'drizzle-orm';
import { bigint, boolean, check, index, integer, pgTable, smallint, text, timestamp } from 'drizzle-orm/pg-core';
import { domains } from './domains.js';

export const accounts = pgTable(
  'accounts',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    domainId: bigint('domain_id', { mode: 'number' })
      .notNull()
      .references(() => domains.id, { onDelete: 'restrict' }),
    /** Lowercase local part @ ASCII domain: the one spelling used for lookups. */
    address: text('address').notNull().unique(),
    displayName: text('display_name'),
    passwordHash: text('password_hash').notNull(),
    passwordVersion: integer('password_version').notNull().default(1),
    passwordChangedAt: timestamp('password_changed_at', { withTimezone: true }).notNull().defaultNow(),
    status: text('status', { enum: ['active', 'suspended'] }).notNull().default('active'),
    imapEnabled: boolean('imap_enabled').notNull(),
    pop3Enabled: boolean('pop3_enabled').notNull(),
    pop3DeleteMode: text('pop3_delete_mode', { enum: ['remove', 'hide', 'trash'] }).notNull(),
    /** Null means unlimited. */
    quotaBytes: bigint('quota_bytes', { mode: 'number' }),
    quotaMessages: integer('quota_messages'),
    usedBytes: bigint('used_bytes', { mode: 'number' }).notNull().default(0),
    usedMessages: integer('used_messages').notNull().default(0),
    /**
     * The highest quota threshold (0, 80, 95, 100 %) usage has reached, for storage and messages:
     * a webhook hears of each upward crossing once. Moves with the usage counters.
     */
    quotaStorageLevel: smallint('quota_storage_level').notNull().default(0),
    quotaMessagesLevel: smallint('quota_messages_level').notNull().default(0),
    lastLoginAt: timestamp('last_login_at', { withTimezone: true }),
    lastLoginProtocol: text('last_login_protocol'),
    lastLoginIp: text('last_login_ip'),
    version: integer('version').notNull().default(1),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('accounts_domain_address_idx').on(t.domainId, t.address),
    index('accounts_address_prefix_idx').on(t.address.op('text_pattern_ops')),
    check('accounts_status_check', sql`${t.status} in ('active', 'suspended')`),
    check('accounts_pop3_delete_mode_check', sql`${t.pop3DeleteMode} in ('remove', 'hide', 'trash')`),
    check('accounts_usage_check', sql`${t.usedBytes} >= 0 and ${t.usedMessages} >= 0`),
  ],
);
