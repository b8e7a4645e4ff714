import { and, asc, eq, inArray, like, or, sql, type Column } from 'drizzle-orm';
import type { Database, Executor } from '../../db/client.js';
import { accounts, folders, messages, subscriptions } from '../../db/schema/index.js';
import { ConflictError, InvalidError, NotFoundError } from '../errors.js';
import { publishChange } from '../events/changes.js';
import { releaseBlobs } from './blobs.js';
import { adjustUsage, lockAccount, type QuotaState } from './quota.js';
import { likePrefix } from '../search.js';

export const INBOX = 'INBOX';
export const DELIMITER = '/';

/** Every new mailbox gets these, with their RFC 6154 special-use attributes. */
export const DEFAULT_FOLDERS: readonly { name: string; specialUse: string | null }[] = [
  { name: INBOX, specialUse: null },
  { name: 'Sent', specialUse: '\\Sent' },
  { name: 'Drafts', specialUse: '\\Drafts' },
  { name: 'Trash', specialUse: '\\Trash' },
  { name: 'Junk', specialUse: '\\Junk' },
  { name: 'Archive', specialUse: '\\Archive' },
];

export type FolderRow = typeof folders.$inferSelect;

/** Every folder of a mailbox, and every name subscribed to, whether a folder still has it or not. */
export interface FolderTree {
  folders: FolderRow[];
  subscribed: string[];
}

/** What STATUS counts that no folder row holds. */
export interface FolderCounts {
  unseen: number;
  /** Messages no session has claimed as \Recent yet. */
  recent: number;
}

export interface FolderUsage {
  name: string;
  specialUse: string | null;
  messages: number;
  unseen: number;
  storageBytes: number;
}

/**
 * The one spelling of a folder name: INBOX in any case is INBOX (RFC 3501 §5.1), and so is the
 * INBOX part of its children. Refuses names IMAP clients cannot round-trip, and the controls and
 * line separators RFC 6855 §3 keeps out of UTF-8 folder names.
 */
export function normalizeFolderName(input: string): string {
  const name = /^inbox(\/|$)/i.test(input) ? `${INBOX}${input.slice(INBOX.length)}` : input;
  const segments = name.split(DELIMITER);
  if (
    name.length === 0 ||
    name.length > 1000 ||
    segments.some((segment) => segment.length === 0 || segment.length > 255) ||
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029*%]/.test(name)
  ) {
    throw new InvalidError(
      'invalid_folder_name',
      `'${input}' is not a usable folder name: '/' separates levels, no empty levels, no control characters, * or %`,
      { field: 'folder' },
    );
  }
  return name;
}

/**
 * The default folders, each subscribed, for any number of new mailboxes in two statements (a
 * batch's thousand take three parameters each).
 */
export async function createDefaultFolders(tx: Executor, ...accountIds: number[]): Promise<void> {
  const accounts = sql`unnest(${sql.param(accountIds)}::bigint[]) with ordinality as a(id, n)`;
  await tx.execute(sql`
    insert into folders (account_id, name, special_use)
    select a.id, f.name, f.special_use
    from ${accounts}
    cross join unnest(${sql.param(DEFAULT_FOLDERS.map((folder) => folder.name))}::text[],
                      ${sql.param(DEFAULT_FOLDERS.map((folder) => folder.specialUse))}::text[]) with ordinality as f(name, special_use, n)
    order by a.n, f.n`);
  await tx.execute(sql`
    insert into subscriptions (account_id, name)
    select a.id, f.name
    from ${accounts}
    cross join unnest(${sql.param(DEFAULT_FOLDERS.map((folder) => folder.name))}::text[]) with ordinality as f(name, n)
    order by a.n, f.n`);
}

/** A new folder is subscribed, as most clients expect; a subscription left from a deleted one is kept. */
async function subscribeNew(tx: Executor, accountId: number, name: string): Promise<void> {
  await tx.insert(subscriptions).values({ accountId, name }).onConflictDoNothing();
}

export async function findFolder(tx: Executor, accountId: number, name: string, lock = false): Promise<FolderRow> {
  const normalized = normalizeFolderName(name);
  const query = tx
    .select()
    .from(folders)
    .where(and(eq(folders.accountId, accountId), eq(folders.name, normalized)));
  const [row] = lock ? await query.for('update') : await query;
  if (!row) throw new NotFoundError('folder_not_found', `There is no folder ${normalized}`);
  return row;
}

const childrenOf = (name: string, column: Column = folders.name) => like(column, likePrefix(`${name}${DELIMITER}`));
const withChildren = (name: string, column: Column = folders.name) => or(eq(column, name), childrenOf(name, column));

export function createFolderService(db: Database) {
  return {
    /** One folder by name (INBOX in any case); folder_not_found when there is none. */
    async get(accountId: number, name: string): Promise<FolderRow> {
      return findFolder(db, accountId, name);
    },

    async list(accountId: number): Promise<FolderRow[]> {
      return db.select().from(folders).where(eq(folders.accountId, accountId)).orderBy(asc(folders.name));
    },

    /** LIST and LSUB (RFC 3501 §6.3.8–9, RFC 5258): the folders and the subscribed names. */
    async tree(accountId: number): Promise<FolderTree> {
      const [rows, subscribed] = await Promise.all([
        db.select().from(folders).where(eq(folders.accountId, accountId)).orderBy(asc(folders.name)),
        db.select({ name: subscriptions.name }).from(subscriptions).where(eq(subscriptions.accountId, accountId)),
      ]);
      return { folders: rows, subscribed: subscribed.map((row) => row.name) };
    },

    /**
     * Unseen and unclaimed \Recent counts of several folders in one query, for STATUS and LIST's
     * RETURN (STATUS) (RFC 5819): a client listing 200 folders costs one query, not 200.
     */
    async counts(accountId: number, folderIds: readonly number[]): Promise<Map<number, FolderCounts>> {
      const counts = new Map<number, FolderCounts>(folderIds.map((id) => [id, { unseen: 0, recent: 0 }]));
      if (folderIds.length === 0) return counts;
      const rows = await db
        .select({
          folderId: messages.folderId,
          unseen: sql<number>`count(*) filter (where not ('\\Seen' = any(${messages.flags})))`.mapWith(Number),
          recent: sql<number>`count(*) filter (where ${messages.uid} >= ${folders.recentUid})`.mapWith(Number),
        })
        .from(messages)
        .innerJoin(folders, and(eq(folders.accountId, messages.accountId), eq(folders.id, messages.folderId)))
        .where(and(eq(messages.accountId, accountId), inArray(messages.folderId, [...folderIds])))
        .groupBy(messages.folderId);
      for (const { folderId, unseen, recent } of rows) counts.set(folderId, { unseen, recent });
      return counts;
    },

    /** Message, unseen and byte counts per folder, for the API. */
    async usage(accountId: number): Promise<FolderUsage[]> {
      const unseen = db
        .select({ folderId: messages.folderId, unseen: sql<number>`count(*)::int`.as('unseen') })
        .from(messages)
        .where(and(eq(messages.accountId, accountId), sql`not ('\\Seen' = any(${messages.flags}))`))
        .groupBy(messages.folderId)
        .as('unseen');
      const rows = await db
        .select({
          name: folders.name,
          specialUse: folders.specialUse,
          messages: folders.messageCount,
          storageBytes: folders.storageBytes,
          unseen: sql<number>`coalesce(${unseen.unseen}, 0)`.mapWith(Number),
        })
        .from(folders)
        .leftJoin(unseen, eq(unseen.folderId, folders.id))
        .where(eq(folders.accountId, accountId))
        .orderBy(asc(folders.name));
      return rows;
    },

    async create(accountId: number, name: string): Promise<FolderRow> {
      const normalized = normalizeFolderName(name);
      return db.transaction(async (tx) => {
        const [row] = await tx
          .insert(folders)
          .values({ accountId, name: normalized })
          .onConflictDoNothing()
          .returning();
        if (!row) throw new ConflictError('folder_exists', `The folder ${normalized} exists already`);
        await subscribeNew(tx, accountId, normalized);
        await publishChange(tx, { kind: 'folders', accountId });
        return row;
      });
    },

    /**
     * Renames a folder and every folder below it; their UIDVALIDITY and messages stay, and their
     * subscriptions follow (as Dovecot's do).
     */
    async rename(accountId: number, from: string, to: string): Promise<void> {
      const source = normalizeFolderName(from);
      const target = normalizeFolderName(to);
      if (source === INBOX) {
        throw new InvalidError('inbox_rename', 'INBOX cannot be renamed here', { field: 'folder' });
      }
      if (target === source || target.startsWith(`${source}${DELIMITER}`)) {
        throw new InvalidError('invalid_folder_name', `${source} cannot be moved into itself`, { field: 'folder' });
      }
      await db.transaction(async (tx) => {
        await findFolder(tx, accountId, source, true);
        const [taken] = await tx
          .select({ id: folders.id })
          .from(folders)
          .where(and(eq(folders.accountId, accountId), withChildren(target)))
          .limit(1);
        if (taken) throw new ConflictError('folder_exists', `The folder ${target} exists already`);
        await tx
          .update(folders)
          // Counted by Postgres: JavaScript's length counts UTF-16 units, so an emoji would count twice.
          .set({ name: sql`${target}::text || substr(${folders.name}, char_length(${source}::text) + 1)` })
          .where(and(eq(folders.accountId, accountId), withChildren(source)));
        const mine = and(eq(subscriptions.accountId, accountId), withChildren(source, subscriptions.name));
        await tx.execute(sql`
          insert into subscriptions (account_id, name)
          select account_id, ${target}::text || substr(name, char_length(${source}::text) + 1) from subscriptions where ${mine}
          on conflict do nothing`);
        await tx.delete(subscriptions).where(mine);
        await publishChange(tx, { kind: 'folders', accountId });
      });
    },

    /**
     * Deletes a folder with its messages; one that has folders below it is refused, as in Dovecot.
     * Its subscription stays (RFC 3501 §6.3.6: the server must not remove it on its own).
     */
    async delete(accountId: number, name: string): Promise<void> {
      const normalized = normalizeFolderName(name);
      if (normalized === INBOX) throw new InvalidError('inbox_delete', 'INBOX cannot be deleted', { field: 'folder' });
      await db.transaction(async (tx) => {
        await lockAccount(tx, accountId);
        const folder = await findFolder(tx, accountId, normalized, true);
        const [child] = await tx
          .select({ id: folders.id })
          .from(folders)
          .where(and(eq(folders.accountId, accountId), childrenOf(normalized)))
          .limit(1);
        if (child) throw new ConflictError('folder_has_children', `Delete the folders below ${normalized} first`);
        const gone = await tx
          .delete(messages)
          .where(and(eq(messages.accountId, accountId), eq(messages.folderId, folder.id)))
          .returning({ blobHash: messages.blobHash, size: messages.size });
        await releaseBlobs(tx, gone.map((m) => m.blobHash));
        await tx.delete(folders).where(and(eq(folders.accountId, accountId), eq(folders.id, folder.id)));
        await adjustUsage(tx, accountId, -gone.reduce((sum, m) => sum + m.size, 0), -gone.length);
        await publishChange(tx, { kind: 'folders', accountId });
      });
    },

    /**
     * SUBSCRIBE / UNSUBSCRIBE (RFC 3501 §6.3.6–7): only a folder that exists can be subscribed; a
     * name subscribed to can be unsubscribed whether its folder still exists or not.
     */
    async subscribe(accountId: number, name: string, subscribed: boolean): Promise<void> {
      const normalized = normalizeFolderName(name);
      if (subscribed) {
        await findFolder(db, accountId, normalized);
        await db.insert(subscriptions).values({ accountId, name: normalized }).onConflictDoNothing();
        return;
      }
      const removed = await db
        .delete(subscriptions)
        .where(and(eq(subscriptions.accountId, accountId), eq(subscriptions.name, normalized)))
        .returning({ name: subscriptions.name });
      if (removed.length === 0) await findFolder(db, accountId, normalized);
    },

    /**
     * Renaming INBOX (RFC 3501 §6.3.5): a new folder takes every INBOX message with its UID, and
     * INBOX stays, empty, with tombstones so its sessions see them go. Folders below INBOX stay.
     */
    async renameInbox(accountId: number, to: string): Promise<FolderRow> {
      const target = normalizeFolderName(to);
      if (target === INBOX) throw new InvalidError('invalid_folder_name', 'INBOX cannot be renamed to INBOX', { field: 'folder' });
      return db.transaction(async (tx) => {
        await lockAccount(tx, accountId);
        const inbox = await findFolder(tx, accountId, INBOX, true);
        const { uidNext, recentUid, highestModseq, messageCount, storageBytes } = inbox;
        const [created] = await tx
          .insert(folders)
          .values({ accountId, name: target, uidNext, recentUid, highestModseq, messageCount, storageBytes })
          .onConflictDoNothing()
          .returning();
        if (!created) throw new ConflictError('folder_exists', `The folder ${target} exists already`);
        await subscribeNew(tx, accountId, target);
        const inInbox = and(eq(messages.accountId, accountId), eq(messages.folderId, inbox.id));
        const [moved] = await tx.update(messages).set({ folderId: created.id }).where(inInbox).returning({ uid: messages.uid });
        if (moved) {
          const [emptied] = await tx
            .update(folders)
            .set({ highestModseq: sql`${folders.highestModseq} + 1`, messageCount: 0, storageBytes: 0 })
            .where(and(eq(folders.accountId, accountId), eq(folders.id, inbox.id)))
            .returning({ modseq: folders.highestModseq });
          await tx.execute(sql`
            insert into expunged (account_id, folder_id, uid, modseq)
            select account_id, ${inbox.id}, uid, ${emptied!.modseq} from messages
            where account_id = ${accountId} and folder_id = ${created.id}
            on conflict (account_id, folder_id, uid) do update set modseq = excluded.modseq`);
          await publishChange(tx, { kind: 'messages', accountId, folderId: inbox.id, modseq: emptied!.modseq });
        }
        await publishChange(tx, { kind: 'folders', accountId });
        return created;
      });
    },

    /**
     * Claims \Recent (RFC 3501 §2.3.2) for one IMAP session: the folder's UIDs below `upTo` that
     * no session has claimed yet, as the range [from, to). One UPDATE moves the mark, so
     * concurrent sessions get disjoint ranges and each message is \Recent in one session only.
     * With `peek` (EXAMINE, which must not take \Recent away), the range is read, not claimed.
     * The mark is read first: a SELECT with nothing new to claim (the common case) writes
     * nothing, and so waits for no commit to reach the disk.
     */
    async claimRecent(accountId: number, folderId: number, upTo: number, peek = false): Promise<{ from: number; to: number }> {
      const here = and(eq(folders.accountId, accountId), eq(folders.id, folderId));
      const [mark] = await db.select({ from: folders.recentUid }).from(folders).where(here);
      if (!mark) throw new NotFoundError('folder_not_found', 'The folder no longer exists');
      if (peek || mark.from >= upTo) return { from: mark.from, to: Math.max(mark.from, upTo) };
      // The row locked in a subquery is the value before the update: Postgres 15 has no RETURNING OLD.
      const before = db
        .select({ recentUid: folders.recentUid })
        .from(folders)
        .where(here)
        .for('no key update')
        .as('before');
      const [row] = await db
        .update(folders)
        .set({ recentUid: sql`greatest(${folders.recentUid}, ${upTo}::bigint)` })
        .from(before)
        .where(here)
        .returning({ from: before.recentUid, to: folders.recentUid });
      if (!row) throw new NotFoundError('folder_not_found', 'The folder no longer exists');
      return row;
    },

    /** The mailbox's quota (null: unlimited) and usage counters, for IMAP GETQUOTA. */
    async quota(accountId: number): Promise<QuotaState> {
      const [row] = await db
        .select({
          id: accounts.id,
          quotaBytes: accounts.quotaBytes,
          quotaMessages: accounts.quotaMessages,
          usedBytes: accounts.usedBytes,
          usedMessages: accounts.usedMessages,
        })
        .from(accounts)
        .where(eq(accounts.id, accountId));
      if (!row) throw new NotFoundError('mailbox_not_found', 'The mailbox no longer exists');
      return row;
    },
  };
}

export type FolderService = ReturnType<typeof createFolderService>;
