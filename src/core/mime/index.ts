import { parseMessageDate } from './date.js';
import { emptyEnvelope, formatAddressList, readEnvelope } from './envelope.js';
import { decodeText, headerMap } from './headers.js';
import { sortKeys } from './sort-keys.js';
import { countLines, parseStructure } from './structure.js';
import type { MessageIndex } from './types.js';

export type { BodyPart, Envelope, EnvelopeAddress, MessageIndex } from './types.js';

/**
 * Parses a message once, at delivery, into what FETCH, SEARCH, SORT and THREAD need: ENVELOPE, the MIME tree
 * with byte offsets into `raw` for every part, top-level header fields, decoded search text and
 * sort keys.
 * Linear in the size of the message, JSON-safe (for jsonb) apart from sentDate, and it never
 * throws: whatever the bytes, the result describes them.
 */
export function indexMessage(raw: Buffer): MessageIndex {
  const bytes = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
  try {
    const { root, fields } = parseStructure(bytes);
    const { envelope, from, to } = readEnvelope(bytes, fields);
    const subject = envelope.subject === null ? null : decodeText(envelope.subject);
    return {
      envelope,
      structure: root,
      headers: headerMap(bytes, fields),
      subject,
      from: from.length > 0 ? formatAddressList(from) : null,
      to: to.length > 0 ? formatAddressList(to) : null,
      sentDate: parseMessageDate(envelope.date),
      sort: sortKeys(bytes, fields, envelope, subject),
    };
  } catch {
    // Not expected (the parser is total), but delivery must not fail over indexing:
    // describe the message as one plain-text body.
    return {
      envelope: emptyEnvelope(),
      structure: {
        headerStart: 0, bodyStart: 0, end: bytes.length,
        type: 'text', subtype: 'plain', params: { charset: 'us-ascii' },
        id: null, description: null, encoding: '7BIT', md5: null,
        disposition: null, language: null, location: null,
        size: bytes.length, lines: countLines(bytes, 0, bytes.length),
      },
      headers: {},
      subject: null,
      from: null,
      to: null,
      sentDate: null,
      sort: { subject: '', from: '', to: '', cc: '', replyOrForward: false, messageId: null, references: [] },
    };
  }
}
