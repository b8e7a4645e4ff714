import type { BodyPart, Envelope, EnvelopeAddress } from '../../core/mime/types.js';
import { nstring } from '../writer.js';

/** FETCH data items built from the stored index (RFC 3501 §7.4.2), never from the message bytes. */

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');

/** date-time, e.g. "17-Jul-1996 09:44:25 +0000"; the store keeps an instant, so it is told in UTC. */
export function internalDate(date: Date): string {
  const d = new Date(date);
  const day = `${pad(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()}`;
  return `"${day} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000"`;
}

function addresses(list: EnvelopeAddress[] | null): string {
  if (list === null || list.length === 0) return 'NIL';
  // 1*address: the grammar puts no space between them.
  return `(${list.map((a) => `(${nstring(a.name)} NIL ${nstring(a.mailbox)} ${nstring(a.host)})`).join('')})`;
}

export function envelope(value: Envelope): string {
  return `(${[
    nstring(value.date),
    nstring(value.subject),
    addresses(value.from),
    addresses(value.sender),
    addresses(value.replyTo),
    addresses(value.to),
    addresses(value.cc),
    addresses(value.bcc),
    nstring(value.inReplyTo),
    nstring(value.messageId),
  ].join(' ')})`;
}

/** body-fld-param: ("name" "value" …) or NIL. */
function params(values: Record<string, string> | null | undefined): string {
  const entries = Object.entries(values ?? {});
  if (entries.length === 0) return 'NIL';
  return `(${entries.map(([name, value]) => `${nstring(name)} ${nstring(value)}`).join(' ')})`;
}

function disposition(value: BodyPart['disposition']): string {
  return value ? `(${nstring(value.type)} ${params(value.params)})` : 'NIL';
}

/** body-fld-lang: one language as a string, several as a list. */
function language(value: string[] | null): string {
  if (!value || value.length === 0) return 'NIL';
  return value.length === 1 ? nstring(value[0]) : `(${value.map(nstring).join(' ')})`;
}

const EMPTY_ENVELOPE: Envelope = {
  date: null, subject: null, from: null, sender: null, replyTo: null,
  to: null, cc: null, bcc: null, inReplyTo: null, messageId: null,
};

/**
 * BODYSTRUCTURE (`extended`) or BODY: multipart as its parts then its subtype; a message/rfc822
 * part with the enclosed message's envelope, body and lines; text parts with lines. Extension
 * data: for a multipart its parameters, disposition, language and location; for others MD5,
 * disposition, language and location.
 */
export function bodyStructure(part: BodyPart, extended: boolean): string {
  if (part.parts && part.parts.length > 0) {
    const children = part.parts.map((child) => bodyStructure(child, extended)).join('');
    const extension = extended
      ? ` ${params(part.params)} ${disposition(part.disposition)} ${language(part.language)} ${nstring(part.location)}`
      : '';
    return `(${children} ${nstring(part.subtype)}${extension})`;
  }
  const fields = [
    nstring(part.type),
    nstring(part.subtype),
    params(part.params),
    nstring(part.id),
    nstring(part.description),
    nstring(part.encoding),
    String(part.size),
  ];
  if (part.type === 'message' && part.subtype === 'rfc822') {
    // The grammar requires envelope and body here; an index without them describes an empty message.
    const enclosed = part.message;
    fields.push(
      envelope(enclosed?.envelope ?? EMPTY_ENVELOPE),
      enclosed ? bodyStructure(enclosed.body, extended) : emptyBody(extended),
      String(part.lines),
    );
  } else if (part.type === 'text') {
    fields.push(String(part.lines));
  }
  if (extended) fields.push(nstring(part.md5), disposition(part.disposition), language(part.language), nstring(part.location));
  return `(${fields.join(' ')})`;
}

function emptyBody(extended: boolean): string {
  return `("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 0 0${extended ? ' NIL NIL NIL NIL' : ''})`;
}
