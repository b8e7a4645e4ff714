import { randomBytes } from 'node:crypto';
import { and, asc, eq, sql } from 'drizzle-orm';
import type { Actor } from '../../src/core/actor.js';
import type { MailboxChange } from '../../src/core/mailboxes/service.js';
import type { Services } from '../../src/core/services.js';
import type { Database, DatabaseHandle } from '../../src/db/client.js';
import { accounts, blobs, folders, messages } from '../../src/db/schema/index.js';
import { type LmtpOptions, type LmtpServer, startLmtpServer } from '../../src/lmtp/server.js';
import { buildTestApi, type TestApi } from '../helpers/api.js';

export const ACTOR: Actor = { id: 'test', name: 'lmtp test', domains: null };

/** An imported hash (of 'imported passphrase'): no argon2 work for every mailbox a test makes. */
const PASSWORD_HASH =
  '{SHA512-CRYPT}$6$saltsalt$owpKrqjGlRYC25WjisgzBriSuXX2LO8nZAMUnLV0I9skFOA0ieFk1ZcoYuYz7sgch3uLtoYJXjYXS4g7azxSa/';

type Teardown = { teardown(fn: () => unknown): void };

export interface LmtpFixture {
  /** The API on the same core, for what it serves about deliveries (/metrics). */
  app: TestApi['app'];
  services: Services;
  database: DatabaseHandle;
  lmtp: LmtpServer;
  port: number;
  /** Makes a mailbox, and its domain on first use (with `suspendedDelivery`, `receive` by default). */
  mailbox(address: string, change?: MailboxChange, domain?: { suspendedDelivery: 'receive' | 'reject' }): Promise<void>;
  /** The INBOX messages of a mailbox, bytes included, in UID order. */
  inbox(address: string): Promise<{ uid: number; raw: Buffer }[]>;
}

/** The core on a fresh database with an LMTP listener in this process on a free port. */
export async function lmtpFixture(
  t: Teardown,
  options: { maxMessageSize?: number } & Partial<LmtpOptions> = {},
): Promise<LmtpFixture> {
  const maxMessageSize = options.maxMessageSize ?? 1024 * 1024;
  const { app, services, database } = await buildTestApi(t, { maxMessageSize });
  // Into the API's recorded log for the leak check; at info, as smtp-server's per-line logging would be slow.
  const logger = app.log.child({ part: 'lmtp' }, { level: 'info' });
  const lmtp = await startLmtpServer({ services, maxMessageSize, logger, ...options }, '127.0.0.1', 0);
  // Registered after the database's teardown, so it runs first: the listener closes before the database.
  t.teardown(() => lmtp.close());
  const domainsMade = new Set<string>();
  return {
    app,
    services,
    database,
    lmtp,
    port: lmtp.port,
    async mailbox(address, change = {}, domainSettings = { suspendedDelivery: 'receive' }) {
      const domain = address.slice(address.indexOf('@') + 1);
      if (!domainsMade.has(domain)) {
        domainsMade.add(domain);
        await services.domains.create({ name: domain, ...domainSettings }, ACTOR);
      }
      await services.mailboxes.create({ address, passwordHash: PASSWORD_HASH, ...change }, ACTOR);
    },
    async inbox(address) {
      const { accountId, folderId } = await inboxOf(database.db, address);
      const list = await services.mail.list(accountId, folderId);
      return Promise.all(list.map(async (m) => ({ uid: m.uid, raw: await services.mail.read(accountId, folderId, m.uid) })));
    },
  };
}

export async function inboxOf(db: Database, address: string): Promise<{ accountId: number; folderId: number }> {
  const [row] = await db
    .select({ accountId: accounts.id, folderId: folders.id })
    .from(accounts)
    .innerJoin(folders, and(eq(folders.accountId, accounts.id), eq(folders.name, 'INBOX')))
    .where(eq(accounts.address, address));
  if (!row) throw new Error(`no mailbox ${address}`);
  return row;
}

/** A small RFC 5322 message with CRLF line ends; `body` repeats to make it about `size` bytes. */
export function message(subject: string, size = 0): Buffer {
  const head =
    `From: Sender <sender@example.net>\r\nTo: rcpt@example.com\r\nSubject: ${subject}\r\n` +
    `Message-ID: <${randomBytes(8).toString('hex')}@example.net>\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\n` +
    // A line starting with '.' proves the dot-stuffing round trip.
    `Hello.\r\n.a line that starts with a dot\r\n`;
  const filler = size > head.length ? `${'x'.repeat(76)}\r\n`.repeat(Math.ceil((size - head.length) / 78)) : '';
  return Buffer.from(head + filler);
}

/** Accounts, folders and blobs against the messages they count; what a crash must never break. */
export async function storeInvariants(db: Database) {
  const usage = await db
    .select({
      address: accounts.address,
      usedBytes: accounts.usedBytes,
      usedMessages: accounts.usedMessages,
      bytes: sql<number>`coalesce((select sum(${messages.size}) from ${messages} where ${messages.accountId} = ${accounts.id}), 0)`.mapWith(Number),
      count: sql<number>`(select count(*) from ${messages} where ${messages.accountId} = ${accounts.id})`.mapWith(Number),
    })
    .from(accounts)
    .orderBy(asc(accounts.address));
  const folderCounts = await db
    .select({
      name: folders.name,
      messageCount: folders.messageCount,
      storageBytes: folders.storageBytes,
      bytes: sql<number>`coalesce((select sum(${messages.size}) from ${messages} where ${messages.accountId} = ${folders.accountId} and ${messages.folderId} = ${folders.id}), 0)`.mapWith(Number),
      count: sql<number>`(select count(*) from ${messages} where ${messages.accountId} = ${folders.accountId} and ${messages.folderId} = ${folders.id})`.mapWith(Number),
    })
    .from(folders);
  const blobRefs = await db
    .select({
      hash: blobs.hash,
      refCount: blobs.refCount,
      size: blobs.size,
      dataSize: sql<number>`octet_length(${blobs.data})`.mapWith(Number),
      used: sql<number>`(select count(*) from ${messages} where ${messages.blobHash} = ${blobs.hash})`.mapWith(Number),
    })
    .from(blobs);
  return { usage, folderCounts, blobRefs };
}
