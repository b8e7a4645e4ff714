import { Readable } from 'node:stream';
import { ConflictError, DomainError, NotFoundError, QuotaExceededError } from '../../core/errors.js';
import { normalizeFlags } from '../../core/mailstore/flags.js';
import { type FolderRow, INBOX, normalizeFolderName } from '../../core/mailstore/folders.js';
import type { Services } from '../../core/services.js';
import type { Api } from '../app.js';
import { flagsFromHeaders, type MboxEntry, mboxEntry, readMbox, separatorDate, takeMeta } from '../mbox.js';
import { ALL_ROLES, actorOf } from '../plugins/auth.js';
import { acceptRawBodies, rawBody } from '../raw-body.js';
import { errorResponses } from '../schemas/common.js';
import { MailboxParams } from '../schemas/mailboxes.js';
import { ExportQuery, ImportQuery, ImportReport, MboxFile } from '../schemas/messages.js';
import type { MailRouteOptions } from './messages.js';

const MAX_REPORTED_ERRORS = 1000;

/** An entry the import cannot store as it stands; it is skipped and reported. */
class EntryError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A file name safe in any header, and the exact one in RFC 8187 form for clients that read it. */
function attachment(name: string): string {
  const plain = name.replace(/[^\w@.+-]/g, '_');
  const exact = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${plain}"; filename*=UTF-8''${exact}`;
}

/** Keywords other programs wrote that IMAP could not carry are dropped, not the message. */
function usableFlags(flags: string[]): string[] {
  return flags.filter((flag) => {
    try {
      normalizeFlags([flag]);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Where and how an entry is to be stored: as its X-Mailroom-Meta line says (the line taken off),
 * else in `fallback`, flagged from its headers and dated from its separator line.
 */
function toStore(entry: MboxEntry, fallback: string): { folder: string; flags: string[]; internalDate?: Date; raw: Buffer } {
  let taken: ReturnType<typeof takeMeta>;
  try {
    taken = takeMeta(entry.raw);
  } catch (error) {
    throw new EntryError('invalid_meta', (error as Error).message);
  }
  const message = taken
    ? { folder: normalizeFolderName(taken.meta.folder), flags: taken.meta.flags, internalDate: taken.meta.internalDate, raw: taken.raw }
    : {
        folder: fallback,
        flags: usableFlags(flagsFromHeaders(entry.raw)),
        internalDate: separatorDate(entry.separator) ?? undefined,
        raw: entry.raw,
      };
  if (message.raw.length === 0) throw new EntryError('empty_message', 'The entry holds no message');
  return message;
}

/** The mbox, one message's bytes in memory at a time; a message expunged meanwhile is left out. */
async function* mboxOf(mail: Services['mail'], accountId: number, folders: FolderRow[]): AsyncGenerator<Buffer> {
  for (const folder of folders) {
    for (const message of await mail.list(accountId, folder.id)) {
      let raw: Buffer;
      try {
        raw = await mail.read(accountId, folder.id, message.uid);
      } catch (error) {
        if (error instanceof NotFoundError) continue;
        throw error;
      }
      const meta = { folder: folder.name, flags: message.flags, internalDate: message.internalDate };
      yield Buffer.concat([...mboxEntry(raw, meta)]);
    }
  }
}

export async function mboxRoutes(app: Api, { services, maxImportSize }: MailRouteOptions) {
  acceptRawBodies(app, 'application/mbox');

  app.get(
    '/v1/mailboxes/:address/export',
    {
      config: { roles: ALL_ROLES },
      schema: {
        tags: ['mail'],
        summary: 'Export the mailbox (or ?folder=) as an mbox, streamed',
        description:
          'mboxrd: each message follows a `From MAILER-DAEMON <date>` line and an added first line `X-Mailroom-Meta: folder=<percent-encoded>; flags=<space-separated>; internaldate=<ISO 8601>`; otherwise its bytes are exactly as stored, with lines matching /^>*From / given one more `>`. Import restores folders, flags and dates from it. Empty folders are not in the file. Roles: admin, provisioner, and support (who back mailboxes up).',
        params: MailboxParams,
        querystring: ExportQuery,
        produces: ['application/mbox'],
        response: {
          200: {
            description: 'The mbox, folder by folder, message by message in UID order',
            content: { 'application/mbox': { schema: MboxFile } },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const mailbox = await services.mailboxes.find(request.params.address, actorOf(request));
      let folders = await services.mail.folders.list(mailbox.id);
      let name = mailbox.address;
      if (request.query.folder !== undefined) {
        const wanted = normalizeFolderName(request.query.folder);
        folders = folders.filter((folder) => folder.name === wanted);
        if (folders.length === 0) throw new NotFoundError('folder_not_found', `There is no folder ${wanted}`);
        name += `-${wanted}`;
      }
      reply.type('application/mbox').header('content-disposition', attachment(`${name}.mbox`));
      return reply.send(Readable.from(mboxOf(services.mail, mailbox.id, folders), { objectMode: false }));
    },
  );

  app.post(
    '/v1/mailboxes/:address/import',
    {
      config: { roles: ['admin', 'provisioner'] },
      ...rawBody('application/mbox', maxImportSize),
      schema: {
        tags: ['mail'],
        summary: 'Import an mbox into the mailbox, keeping folders, flags and dates where given',
        description:
          'Reads mboxrd and mboxo. An entry starting with the X-Mailroom-Meta line the export writes goes to that folder (made if missing) with those flags and that date, and the line is taken off, so export -> import -> export gives the same file. Other entries go to ?folder= (INBOX), flagged from Status:, X-Status: and X-Keywords: headers, dated from their separator line. Entries that cannot be stored (too large, malformed) are skipped and reported; when the mailbox is full, storing stops and the rest count as skipped. The body is read whole: at most 20 times MAILROOM_MAX_MESSAGE_SIZE (413 beyond). Roles: admin, provisioner.',
        consumes: ['application/mbox'],
        params: MailboxParams,
        querystring: ImportQuery,
        body: MboxFile,
        response: { 200: ImportReport, ...errorResponses },
      },
    },
    async (request) => {
      const actor = actorOf(request);
      const mailbox = await services.mailboxes.find(request.params.address, actor);
      const fallback = normalizeFolderName(request.query.folder ?? INBOX);
      const entries = readMbox(request.body);
      const known = new Set((await services.mail.folders.list(mailbox.id)).map((folder) => folder.name));
      const created: string[] = [];
      const report = { imported: 0, skipped: 0, errors: [] as { index: number; code: string; detail: string }[] };
      let full: { index: number; error: QuotaExceededError } | null = null;
      let notTried = 0;

      for (const entry of entries) {
        if (full) {
          notTried++;
          report.skipped++;
          continue;
        }
        try {
          const message = toStore(entry, fallback);
          if (!known.has(message.folder)) {
            try {
              await services.mail.folders.create(mailbox.id, message.folder);
              created.push(message.folder);
            } catch (error) {
              // Made meanwhile by someone else: it is there, which is all the import needs.
              if (!(error instanceof ConflictError && error.code === 'folder_exists')) throw error;
            }
            known.add(message.folder);
          }
          await services.mail.append(mailbox.id, message.folder, message.raw, {
            flags: message.flags,
            internalDate: message.internalDate,
          });
          report.imported++;
        } catch (error) {
          if (error instanceof QuotaExceededError) {
            full = { index: entry.index, error };
          } else if (error instanceof EntryError || (error instanceof DomainError && error.code !== 'mailbox_not_found')) {
            if (report.errors.length < MAX_REPORTED_ERRORS) {
              report.errors.push({ index: entry.index, code: error.code, detail: error.message });
            }
          } else {
            throw error;
          }
          report.skipped++;
        }
      }
      if (full) {
        report.errors.push({
          index: full.index,
          code: 'quota_exceeded',
          detail: `${full.error.message}; storing stopped at this entry, and the ${notTried} after it were not imported either`,
        });
      }
      await services.audit.recordAfter(actor, {
        action: 'mailbox.import',
        targetType: 'mailbox',
        target: mailbox.address,
        domain: mailbox.address.slice(mailbox.address.lastIndexOf('@') + 1),
        after: { imported: report.imported, skipped: report.skipped, foldersCreated: created },
      });
      return report;
    },
  );
}
