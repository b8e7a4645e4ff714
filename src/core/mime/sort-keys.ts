import { fieldName, fieldValue, type RawField, withoutComments } from './headers.js';
import { MIME_LIMITS } from './limits.js';
import type { Envelope, EnvelopeAddress, SortKeys } from './types.js';

const ASCII = /^[\x00-\x7f]*$/;
/** A msg-id (RFC 5322 §3.6.4) as mailers write it; the brackets are not part of the ID. */
const MESSAGE_ID = /<([^<>@\s]+@[^<>\s]+)>/g;

/**
 * RFC 5051 i;unicode-casemap, closely enough: each character's simple titlecase (its uppercase
 * when that is one character), then NFKD. The database then compares the results byte by byte.
 */
export function casemap(text: string): string {
  if (ASCII.test(text)) return text.toUpperCase();
  let out = '';
  for (const char of text) {
    const upper = char.toUpperCase();
    out += upper.length === char.length ? upper : char;
  }
  return out.normalize('NFKD');
}

const isSpace = (code: number | undefined) => code === 0x20;
const BLOB_OPEN = 0x5b;
const BLOB_CLOSE = 0x5d;

/** The end of the subj-blob (RFC 5256 §5: "[" *BLOBCHAR "]" *WSP) at `at`, or -1. */
function blobEnd(text: string, at: number, end: number): number {
  if (text.charCodeAt(at) !== BLOB_OPEN) return -1;
  let i = at + 1;
  while (i < end && text.charCodeAt(i) !== BLOB_CLOSE && text.charCodeAt(i) !== BLOB_OPEN) i++;
  if (i >= end || text.charCodeAt(i) !== BLOB_CLOSE) return -1;
  i++;
  while (i < end && isSpace(text.charCodeAt(i))) i++;
  return i;
}

/** The end of the subj-refwd ("re" / "fw" / "fwd", *WSP, [subj-blob], ":") at `at`, or -1. */
function refwdEnd(text: string, at: number, end: number): number {
  const word = /^(re|fwd|fw)/i.exec(text.slice(at, Math.min(end, at + 3)));
  if (!word) return -1;
  let i = at + word[0].length;
  while (i < end && isSpace(text.charCodeAt(i))) i++;
  const blob = blobEnd(text, i, end);
  if (blob !== -1) i = blob;
  return i < end && text.charCodeAt(i) === 0x3a ? i + 1 : -1;
}

/**
 * The base subject (RFC 5256 §2.1), casemapped, and whether extracting it removed a reply or
 * forward marker ("Re:", "Fwd:", "(fwd)", "[fwd: …]"), which THREAD=REFERENCES asks. Works on
 * offsets into the subject, so a hostile one (thousands of "Re: " or "[x]") costs linear time.
 */
export function baseSubject(subject: string | null): { subject: string; replyOrForward: boolean } {
  // (1) Encoded-words are decoded already; tabs become spaces and runs of spaces one.
  const text = (subject ?? '').replace(/[ \t]+/g, ' ');
  let start = 0;
  let end = text.length;
  let replyOrForward = false;
  for (;;) {
    // (2) Trailing white space and "(fwd)".
    for (;;) {
      if (end > start && isSpace(text.charCodeAt(end - 1))) end--;
      else if (end - start >= 5 && text.slice(end - 5, end).toLowerCase() === '(fwd)') {
        end -= 5;
        replyOrForward = true;
      } else break;
    }
    // (3)-(5) Leading white space and *subj-blob subj-refwd, and blobs that leave something after them.
    for (;;) {
      if (start < end && isSpace(text.charCodeAt(start))) {
        start++;
        continue;
      }
      let blobs = start;
      let last = -1;
      for (let next = blobEnd(text, blobs, end); next !== -1; next = blobEnd(text, blobs, end)) {
        last = blobs;
        blobs = next;
      }
      const refwd = refwdEnd(text, blobs, end);
      if (refwd !== -1) {
        start = refwd;
        replyOrForward = true;
      } else if (last === -1) {
        break;
      } else if (blobs < end) {
        start = blobs;
      } else {
        // Only blobs are left: each may go while another comes after it, so the last one stays.
        start = last;
        break;
      }
    }
    // (6) "[fwd: " … "]" around the rest.
    if (end - start >= 6 && text.slice(start, start + 5).toLowerCase() === '[fwd:' && text.charCodeAt(end - 1) === BLOB_CLOSE) {
      start += 5;
      end -= 1;
      replyOrForward = true;
      continue;
    }
    return { subject: casemap(text.slice(start, end)), replyOrForward };
  }
}

/** The valid Message IDs in a header value, in order, without their brackets. */
export function messageIds(value: string | null): string[] {
  if (value === null) return [];
  return [...withoutComments(value).matchAll(MESSAGE_ID)].map((match) => match[1]!);
}

/** SORT's FROM, TO and CC: the mailbox (local part) of the list's first address, not a group marker. */
function firstMailbox(list: EnvelopeAddress[] | null): string {
  const address = list?.find((a) => a.host !== null && a.mailbox !== null);
  return address ? casemap(address.mailbox!) : '';
}

/** The first field of that (lowercase) name in the header, unfolded; null when there is none. */
function firstField(raw: Buffer, fields: RawField[], name: string): string | null {
  for (const field of fields) {
    if (field.colon - field.start === name.length && fieldName(raw, field) === name) {
      return fieldValue(raw, field, MIME_LIMITS.parsedFieldChars);
    }
  }
  return null;
}

/**
 * What SORT and THREAD (RFC 5256) read of a message. References: the References field's IDs (the
 * last MIME_LIMITS.referencesKept of them, the nearest ancestors), or else In-Reply-To's first.
 */
export function sortKeys(raw: Buffer, fields: RawField[], envelope: Envelope, decodedSubject: string | null): SortKeys {
  const { subject, replyOrForward } = baseSubject(decodedSubject);
  const references = messageIds(firstField(raw, fields, 'references'));
  return {
    subject,
    from: firstMailbox(envelope.from),
    to: firstMailbox(envelope.to),
    cc: firstMailbox(envelope.cc),
    replyOrForward,
    messageId: messageIds(envelope.messageId)[0] ?? null,
    references: references.length > 0 ? references.slice(-MIME_LIMITS.referencesKept) : messageIds(envelope.inReplyTo).slice(0, 1),
  };
}
