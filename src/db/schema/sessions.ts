import { bigint, boolean, foreignKey, index, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { accounts } from './accounts.js';

/** A running gateway process; its sessions count as live only while it keeps checking in. */
export const gateways = pgTable('gateways', {
  id: uuid('id').primaryKey(),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
  seenAt: timestamp('seen_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Live POP3 and IMAP sessions, across every gateway process, for support to see and end. */
export const mailSessions = pgTable(
  'mail_sessions',
  {
    accountId: bigint('account_id', { mode: 'number' }).notNull(),
    id: uuid('id').notNull().defaultRandom(),
    gatewayId: uuid('gateway_id')
      .notNull()
      .references(() => gateways.id, { onDelete: 'cascade' }),
    protocol: text('protocol', { enum: ['imap', 'pop3'] }).notNull(),
    remoteIp: text('remote_ip').notNull(),
    tls: boolean('tls').notNull(),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.accountId, t.id] }),
    index('mail_sessions_gateway_idx').on(t.gatewayId),
    foreignKey({ columns: [t.accountId], foreignColumns: [accounts.id] }).onDelete('cascade'),
  ],
);
