import addressparser from 'addressparser';
import { decodeText, fieldName, fieldValue, jsonSafe, type RawField } from './headers.js';
import { MIME_LIMITS } from './limits.js';
import type { Envelope, EnvelopeAddress } from './types.js';

export interface Mailbox {
  /** The display name as written, quotes removed, encoded-words kept; '' when none. */
  name: string;
  address: string;
}

/** One entry of an address list: a mailbox, or an RFC 5322 group of mailboxes. */
export type AddressItem = Mailbox | { group: string; members: Mailbox[] };

/** What ENVELOPE needs, plus the parsed From and To so SEARCH strings need no second parse. */
export interface EnvelopeRead {
  envelope: Envelope;
  from: AddressItem[];
  to: AddressItem[];
}

const STRING_FIELDS = ['date', 'subject', 'in-reply-to', 'message-id'] as const;
const ADDRESS_FIELDS = ['from', 'sender', 'reply-to', 'to', 'cc', 'bcc'] as const;
const WANTED = new Set<string>([...STRING_FIELDS, ...ADDRESS_FIELDS]);

/** RFC 3501 ENVELOPE of a message header: the first of each field, unfolded, not decoded. */
export function readEnvelope(raw: Buffer, fields: RawField[], budget?: AddressBudget): EnvelopeRead {
  const values = new Map<string, string>();
  for (const field of fields) {
    if (field.colon - field.start > 16) continue; // far longer than "in-reply-to": not ours
    const name = fieldName(raw, field);
    if (WANTED.has(name) && !values.has(name)) {
      values.set(name, fieldValue(raw, field, MIME_LIMITS.parsedFieldChars));
    }
  }

  const list = (name: string) => parseAddressList(values.get(name) ?? '', budget);
  const from = list('from');
  const to = list('to');
  const fromAddresses = envelopeAddresses(from);
  return {
    envelope: {
      date: values.get('date') ?? null,
      subject: values.get('subject') ?? null,
      from: fromAddresses,
      // RFC 3501 §7.4.2: an absent or empty Sender or Reply-To takes the value of From.
      sender: envelopeAddresses(list('sender')) ?? copy(fromAddresses),
      replyTo: envelopeAddresses(list('reply-to')) ?? copy(fromAddresses),
      to: envelopeAddresses(to),
      cc: envelopeAddresses(list('cc')),
      bcc: envelopeAddresses(list('bcc')),
      inReplyTo: values.get('in-reply-to') ?? null,
      messageId: values.get('message-id') ?? null,
    },
    from,
    to,
  };
}

// Separate objects, so a caller changing one field of the envelope does not change three.
const copy = (list: EnvelopeAddress[] | null) => list && list.map((address) => ({ ...address }));

export function emptyEnvelope(): Envelope {
  return {
    date: null, subject: null, from: null, sender: null, replyTo: null,
    to: null, cc: null, bcc: null, inReplyTo: null, messageId: null,
  };
}

/** How many more addresses may be parsed; the enclosed messages of one message share one. */
export interface AddressBudget {
  remaining: number;
}

/**
 * Parses an address list, at most addressesPerList entries (group markers included) and at most
 * what the budget has left. The list and group structure is split here and each single address
 * goes to addressparser: addressparser on a whole list is quadratic in the number of addresses
 * (it concatenates arrays), which a hostile header would exploit.
 */
export function parseAddressList(value: string, budget: AddressBudget = { remaining: Infinity }): AddressItem[] {
  const limit = Math.min(MIME_LIMITS.addressesPerList, budget.remaining);
  const items: AddressItem[] = [];
  let count = 0;
  const mailboxes = (text: string) => {
    const found = parseMailboxes(text).slice(0, Math.max(0, limit - count));
    count += found.length;
    return found;
  };
  for (const piece of splitAddressList(value)) {
    if (count >= limit) break;
    if (typeof piece === 'string') {
      items.push(...mailboxes(piece));
    } else {
      count += 2; // the group's start and end markers in ENVELOPE
      const members: Mailbox[] = [];
      for (const text of piece.members) {
        if (count >= limit) break;
        members.push(...mailboxes(text));
      }
      items.push({ group: groupName(piece.name), members });
    }
  }
  budget.remaining -= count;
  return items;
}

/** IMAP's form: a group is (NIL NIL name NIL) … (NIL NIL NIL NIL); null for an empty list. */
function envelopeAddresses(items: AddressItem[]): EnvelopeAddress[] | null {
  const out: EnvelopeAddress[] = [];
  for (const item of items) {
    if ('group' in item) {
      out.push({ name: null, mailbox: item.group, host: null });
      for (const member of item.members) out.push(envelopeAddress(member));
      out.push({ name: null, mailbox: null, host: null });
    } else {
      out.push(envelopeAddress(item));
    }
  }
  return out.length > 0 ? out : null;
}

// A host of NIL would mark a group, so a missing part is named the way Dovecot names it.
function envelopeAddress({ name, address }: Mailbox): EnvelopeAddress {
  const at = address.lastIndexOf('@');
  const mailbox = at < 0 ? address : address.slice(0, at);
  const host = at < 0 ? '' : address.slice(at + 1);
  return { name: name || null, mailbox: mailbox || 'MISSING_MAILBOX', host: host || 'MISSING_DOMAIN' };
}

/** The list as one decoded string for SEARCH FROM/TO: `Ann <ann@example.com>, team: bob@x.test;`. */
export function formatAddressList(items: AddressItem[]): string {
  const mailbox = ({ name, address }: Mailbox) => {
    const decoded = decodeText(name);
    return decoded && address ? `${decoded} <${address}>` : decoded || address;
  };
  return items
    .map((item) => ('group' in item ? `${decodeText(item.group)}: ${item.members.map(mailbox).join(', ')};` : mailbox(item)))
    .join(', ');
}

function parseMailboxes(text: string): Mailbox[] {
  let entries: addressparser.Entry[];
  try {
    entries = addressparser(text);
  } catch {
    return [];
  }
  const out: Mailbox[] = [];
  const add = (entry: addressparser.Entry) => {
    if ('group' in entry) {
      for (const member of entry.group ?? []) add(member);
      return;
    }
    const name = jsonSafe(String(entry.name ?? '').trim());
    const address = jsonSafe(String(entry.address ?? '').trim());
    if (name || address) out.push({ name, address });
  };
  for (const entry of entries) add(entry);
  return out;
}

function groupName(text: string): string {
  const name = text.trim();
  return name.length >= 2 && name.startsWith('"') && name.endsWith('"')
    ? name.slice(1, -1).replace(/\\(.)/g, '$1')
    : name;
}

/**
 * Splits a list at the commas (and, as addressparser does, semicolons) that stand outside quoted
 * strings, comments and angle brackets, keeping `name: a, b;` groups together. Linear.
 */
function splitAddressList(value: string): (string | { name: string; members: string[] })[] {
  const pieces: (string | { name: string; members: string[] })[] = [];
  let group: { name: string; members: string[] } | null = null;
  let start = 0;
  let closer = ''; // the character that ends the quoted string, comment or <address> we are in
  const take = (end: number) => {
    const text = value.slice(start, end);
    start = end + 1;
    if (text.trim() === '') return;
    if (group) group.members.push(text);
    else pieces.push(text);
  };
  for (let i = 0; i < value.length; i++) {
    const char = value[i];
    if (char === '\\') {
      i++; // the escaped character is literal wherever it stands
    } else if (closer) {
      if (char === closer) closer = '';
    } else if (char === '"') {
      closer = '"';
    } else if (char === '(') {
      closer = ')';
    } else if (char === '<') {
      closer = '>';
    } else if (char === ',') {
      take(i);
    } else if (char === ':' && !group) {
      group = { name: value.slice(start, i), members: [] };
      start = i + 1;
    } else if (char === ';') {
      take(i);
      if (group) pieces.push(group);
      group = null;
    }
  }
  take(value.length);
  if (group) pieces.push(group);
  return pieces;
}
