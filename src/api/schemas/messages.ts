import { Type } from '@sinclair/typebox';

/** A folder's full name, '/' between levels, e.g. `Archive/2026`; INBOX in any case is INBOX. */
const folderName = (description: string) => Type.String({ minLength: 1, maxLength: 1000, description });

export const DeliverQuery = Type.Object(
  { folder: Type.Optional(folderName('The folder to deliver to; INBOX when left out')) },
  { additionalProperties: false },
);

export const ExportQuery = Type.Object(
  { folder: Type.Optional(folderName('Export only this folder; every folder when left out')) },
  { additionalProperties: false },
);

export const ImportQuery = Type.Object(
  {
    folder: Type.Optional(
      folderName('Where messages without an X-Mailroom-Meta line go (made if missing); INBOX when left out'),
    ),
  },
  { additionalProperties: false },
);

/** Raw bytes: documented as binary, checked by their content type, never by Ajv. */
export const RawMessage = Type.Unsafe<Buffer>({
  type: 'string',
  format: 'binary',
  description: 'The message exactly as it is to be stored (RFC 5322, CRLF or LF line endings)',
});

export const MboxFile = Type.Unsafe<Buffer>({
  type: 'string',
  format: 'binary',
  description:
    'An mbox (mboxrd; mboxo reads the same). Each entry may start with an X-Mailroom-Meta line as the export writes it',
});

export const Delivered = Type.Object(
  {
    uid: Type.Integer({ description: 'The message’s UID in the folder' }),
    size: Type.Integer({ description: 'Bytes stored; what counts against the quota' }),
    folder: Type.String({ description: 'The folder it went to' }),
  },
  { description: 'The message is stored' },
);

export const ImportReport = Type.Object(
  {
    imported: Type.Integer({ description: 'Messages stored' }),
    skipped: Type.Integer({ description: 'Entries not stored, including those after the mailbox ran full' }),
    errors: Type.Array(
      Type.Object({
        index: Type.Integer({ description: 'The entry’s position in the mbox, from 0' }),
        code: Type.String({ description: 'e.g. message_too_large, invalid_meta, invalid_flag, quota_exceeded' }),
        detail: Type.String(),
      }),
      { description: 'Why entries were skipped, in mbox order: the first 1000, then where storing stopped if the mailbox ran full' },
    ),
  },
  { description: 'What the import did; it stops storing when the mailbox is full' },
);
