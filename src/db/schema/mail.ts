import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  customType,
  foreignKey,
  index,
  integer,
  jsonb,
  pgSequence,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
} from 'drizzle-orm/pg-core';
import { accounts } from './accounts.js';

const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => 'bytea',
});

/** A folder's UIDVALIDITY: never reused, so a folder deleted and made again gets a new one. */
export const uidValiditySequence = pgSequence('folder_uid_validity_seq', { startWith: 1, maxValue: 4294967295 });

/** Mail tables lead every key with account_id so they can later be distributed by account. */
export const folders = pgTable(
  'folders',
  {
    accountId: bigint('account_id', { mode: 'number' })
      .notNull()
      .references(() => accounts.id, { onDelete: 'cascade' }),
    id: bigint('id', { mode: 'number' }).notNull().generatedAlwaysAsIdentity(),
    /** Full name with '/' as the hierarchy delimiter, e.g. "Archive/2026". */
    name: text('name').notNull(),
    specialUse: text('special_use'),
    uidValidity: bigint('uid_validity', { mode: 'number' })
      .notNull()
      .default(sql`nextval('folder_uid_validity_seq')`),
    uidNext: bigint('uid_next', { mode: 'number' }).notNull().default(1),
    /** The first UID no IMAP session has claimed as \Recent yet (RFC 3501 §2.3.2), as Dovecot keeps it. */
    recentUid: bigint('recent_uid', { mode: 'number' }).notNull().default(1),
    highestModseq: bigint('highest_modseq', { mode: 'number' }).notNull().default(1),
    messageCount: integer('message_count').notNull().default(0),
    storageBytes: bigint('storage_bytes', { mode: 'number' }).notNull().default(0),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.accountId, t.id] }), unique('folders_account_name_key').on(t.accountId, t.name)],
);

/**
 * The folder names a mailbox is subscribed to (RFC 3501 §6.3.6). Kept apart from the folders: a
 * subscription outlives its folder's deletion, and LIST (SUBSCRIBED) shows it \NonExistent.
 */
export const subscriptions = pgTable(
  'subscriptions',
  {
    accountId: bigint('account_id', { mode: 'number' })
      .notNull()
      .references(() => accounts.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
  },
  (t) => [primaryKey({ columns: [t.accountId, t.name] })],
);

/** Raw RFC 5322 bytes, content-addressed by SHA-256 so a message sent to many mailboxes is stored once. */
export const blobs = pgTable('blobs', {
  hash: text('hash').primaryKey(),
  size: bigint('size', { mode: 'number' }).notNull(),
  data: bytea('data').notNull(),
  refCount: integer('ref_count').notNull().default(0),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

export const messages = pgTable(
  'messages',
  {
    accountId: bigint('account_id', { mode: 'number' }).notNull(),
    folderId: bigint('folder_id', { mode: 'number' }).notNull(),
    uid: bigint('uid', { mode: 'number' }).notNull(),
    /** Stable for the life of the message in its mailbox: the POP3 UIDL. */
    messageKey: bigint('message_key', { mode: 'number' }).notNull().generatedAlwaysAsIdentity(),
    modseq: bigint('modseq', { mode: 'number' }).notNull(),
    flags: text('flags').array().notNull().default(sql`'{}'::text[]`),
    internalDate: timestamp('internal_date', { withTimezone: true }).notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    /** The size with every line ending CRLF: what POP3 LIST and STAT must report. */
    crlfSize: bigint('crlf_size', { mode: 'number' }).notNull(),
    blobHash: text('blob_hash')
      .notNull()
      .references(() => blobs.hash),
    pop3Hidden: boolean('pop3_hidden').notNull().default(false),
    /** Parsed once at store time so FETCH and SEARCH never re-parse the message. */
    envelope: jsonb('envelope'),
    bodyStructure: jsonb('body_structure'),
    headerFields: jsonb('header_fields'),
    subject: text('subject'),
    fromAddress: text('from_address'),
    toAddress: text('to_address'),
    sentDate: timestamp('sent_date', { withTimezone: true }),
    /** SORT's DATE (RFC 5256 §2.2): the Date header, or the internal date when it is missing or does not parse. */
    sortDate: timestamp('sort_date', { withTimezone: true })
      .notNull()
      .generatedAlwaysAs(sql`coalesce(sent_date, internal_date)`),
    /**
     * What SORT (RFC 5256) compares, casemapped at delivery so the database sorts them byte by
     * byte: the base subject, and the mailbox (local part) of the first From, To and Cc address.
     */
    sortSubject: text('sort_subject').notNull().default(''),
    sortFrom: text('sort_from').notNull().default(''),
    sortTo: text('sort_to').notNull().default(''),
    sortCc: text('sort_cc').notNull().default(''),
    /** What THREAD=REFERENCES reads: the subject marked a reply or forward, the Message-ID, the parents' IDs. */
    replyOrForward: boolean('reply_or_forward').notNull().default(false),
    messageId: text('message_id'),
    referenceIds: text('reference_ids').array().notNull().default(sql`'{}'::text[]`),
  },
  (t) => [
    // Migration 0009 gives it INCLUDE (message_key, modseq, flags, internal_date, size, crlf_size,
    // pop3_hidden), which drizzle cannot declare: a folder's listing is read from it alone.
    primaryKey({ columns: [t.accountId, t.folderId, t.uid] }),
    unique('messages_account_key_key').on(t.accountId, t.messageKey),
    index('messages_folder_modseq_idx').on(t.accountId, t.folderId, t.modseq),
    // With the account: a redelivery check finds a mailbox's copy among thousands sharing one blob.
    index('messages_blob_idx').on(t.blobHash, t.accountId),
    // SORT by the commonest keys reads one of these in order (an index-only scan, UID and MODSEQ
    // included) instead of every row of the folder; the other keys sort the folder's rows.
    index('messages_sort_arrival_idx').on(t.accountId, t.folderId, t.internalDate, t.uid, t.modseq),
    index('messages_sort_date_idx').on(t.accountId, t.folderId, t.sortDate, t.uid, t.modseq),
    index('messages_sort_subject_idx').on(t.accountId, t.folderId, sql`${t.sortSubject} collate "C"`, t.uid, t.modseq),
    foreignKey({ columns: [t.accountId, t.folderId], foreignColumns: [folders.accountId, folders.id] }).onDelete(
      'cascade',
    ),
  ],
);

/** Tombstones: which UIDs vanished at which MODSEQ, so any session can learn what it missed. */
export const expunged = pgTable(
  'expunged',
  {
    accountId: bigint('account_id', { mode: 'number' }).notNull(),
    folderId: bigint('folder_id', { mode: 'number' }).notNull(),
    uid: bigint('uid', { mode: 'number' }).notNull(),
    modseq: bigint('modseq', { mode: 'number' }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.accountId, t.folderId, t.uid] }),
    index('expunged_folder_modseq_idx').on(t.accountId, t.folderId, t.modseq),
    foreignKey({ columns: [t.accountId, t.folderId], foreignColumns: [folders.accountId, folders.id] }).onDelete(
      'cascade',
    ),
  ],
);
