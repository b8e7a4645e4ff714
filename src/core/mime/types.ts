/** An address as IMAP's ENVELOPE gives it; a group start has host null, a group end mailbox null too. */
export interface EnvelopeAddress {
  name: string | null;
  mailbox: string | null;
  host: string | null;
}

/** RFC 3501 ENVELOPE fields; strings as they stand in the header (unfolded, not decoded). */
export interface Envelope {
  date: string | null;
  subject: string | null;
  from: EnvelopeAddress[] | null;
  sender: EnvelopeAddress[] | null;
  replyTo: EnvelopeAddress[] | null;
  to: EnvelopeAddress[] | null;
  cc: EnvelopeAddress[] | null;
  bcc: EnvelopeAddress[] | null;
  inReplyTo: string | null;
  messageId: string | null;
}

/**
 * One MIME part with byte offsets into the raw message, so FETCH BODY[1.2], BODY[1.MIME] or
 * BODY[2.HEADER] is a byte range read, never a re-parse.
 */
export interface BodyPart {
  /** Offset of the part's header (its MIME header; for the root, the message header). */
  headerStart: number;
  /** Offset of the first body byte, after the blank line. */
  bodyStart: number;
  /** Offset just past the part's last body byte. */
  end: number;
  /** Lowercase, e.g. 'text' / 'plain'; defaults per RFC 2045 (text/plain, or message/rfc822 in multipart/digest). */
  type: string;
  subtype: string;
  /** Content-Type parameters, names lowercase, RFC 2231 continuations joined. */
  params: Record<string, string>;
  id: string | null;
  description: string | null;
  /** Content-Transfer-Encoding, uppercase as IMAP shows it; '7BIT' by default. */
  encoding: string;
  md5: string | null;
  disposition: { type: string; params: Record<string, string> } | null;
  language: string[] | null;
  location: string | null;
  /** Body octets (end - bodyStart). */
  size: number;
  /** Body lines, for text/* and message/rfc822 parts. */
  lines: number;
  /** multipart/*: the children, in order. */
  parts?: BodyPart[];
  /** message/rfc822: the enclosed message's envelope and root part (offsets still into the outer raw). */
  message?: { envelope: Envelope; body: BodyPart };
}

/** What SORT and THREAD (RFC 5256) compare; strings casemapped (i;unicode-casemap), '' when absent. */
export interface SortKeys {
  /** The base subject (RFC 5256 §2.1). */
  subject: string;
  /** The mailbox (local part) of the first From, To and Cc address. */
  from: string;
  to: string;
  cc: string;
  /** Whether the base subject extraction removed a reply or forward marker. */
  replyOrForward: boolean;
  /** The first valid Message-ID, without brackets. */
  messageId: string | null;
  /** The parents' Message-IDs, the nearest last: References, or else In-Reply-To's first. */
  references: string[];
}

/** What the store keeps of a message at delivery, so FETCH, SEARCH and SORT never re-parse it. */
export interface MessageIndex {
  envelope: Envelope;
  structure: BodyPart;
  /** Top-level header fields for SEARCH HEADER: lowercase name -> decoded values (size-capped). */
  headers: Record<string, string[]>;
  /** Decoded, for SEARCH SUBJECT/FROM/TO and listings. */
  subject: string | null;
  from: string | null;
  to: string | null;
  /** The Date header when it parses; SEARCH SENTBEFORE/SENTON/SENTSINCE use it. */
  sentDate: Date | null;
  sort: SortKeys;
}
