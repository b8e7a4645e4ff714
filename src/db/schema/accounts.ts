import { sql } from 'drizzle-orm';
import { bigint, boolean, check, foreignKey, index, integer, pgTable, primaryKey, smallint, text, timestamp } from 'drizzle-orm/pg-core';
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
    /** The last successful login over each protocol; last_login_* holds the latest of the two. */
    imapLastLoginAt: timestamp('imap_last_login_at', { withTimezone: true }),
    imapLastLoginIp: text('imap_last_login_ip'),
    pop3LastLoginAt: timestamp('pop3_last_login_at', { withTimezone: true }),
    pop3LastLoginIp: text('pop3_last_login_ip'),
    /**
     * Why support switched a protocol, and when the switch flips back by itself: from `until` on
     * the protocol counts as switched the other way, and a periodic sweep stores that flip.
     * changed_at is null while the switch is as the mailbox was created.
     */
    imapReason: text('imap_reason'),
    imapUntil: timestamp('imap_until', { withTimezone: true }),
    imapChangedAt: timestamp('imap_changed_at', { withTimezone: true }),
    pop3Reason: text('pop3_reason'),
    pop3Until: timestamp('pop3_until', { withTimezone: true }),
    pop3ChangedAt: timestamp('pop3_changed_at', { withTimezone: true }),
    version: integer('version').notNull().default(1),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('accounts_domain_address_idx').on(t.domainId, t.address),
    index('accounts_address_prefix_idx').on(t.address.op('text_pattern_ops')),
    // The expiry sweep looks for the few switches that have an end.
    index('accounts_imap_until_idx').on(t.imapUntil).where(sql`${t.imapUntil} is not null`),
    index('accounts_pop3_until_idx').on(t.pop3Until).where(sql`${t.pop3Until} is not null`),
    check('accounts_status_check', sql`${t.status} in ('active', 'suspended')`),
    check('accounts_pop3_delete_mode_check', sql`${t.pop3DeleteMode} in ('remove', 'hide', 'trash')`),
    check('accounts_usage_check', sql`${t.usedBytes} >= 0 and ${t.usedMessages} >= 0`),
  ],
);

/**
 * The last failed POP3 and IMAP logins of each mailbox and why they failed, for support; a few
 * per mailbox are kept. Failures for addresses that do not exist are not stored.
 */
export const failedLogins = pgTable(
  'failed_logins',
  {
    accountId: bigint('account_id', { mode: 'number' }).notNull(),
    id: bigint('id', { mode: 'number' }).notNull().generatedAlwaysAsIdentity(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
    protocol: text('protocol', { enum: ['imap', 'pop3'] }).notNull(),
    ip: text('ip').notNull(),
    reason: text('reason', { enum: ['wrong_password', 'protocol_disabled', 'suspended', 'locked', 'tls_required'] }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.accountId, t.id] }),
    foreignKey({ columns: [t.accountId], foreignColumns: [accounts.id] }).onDelete('cascade'),
  ],
);
