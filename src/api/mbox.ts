import { InvalidError } from '../core/errors.js';

/**
 * mboxrd as the export and import routes write and read it. Lines in a message that match
 * /^>*From / get one more '>' on the way out and lose one on the way in, so any message survives
 * a round trip byte for byte (plain mboxo files read the same way, as most readers do).
 */

export interface MboxMeta {
  folder: string;
  flags: string[];
  internalDate: Date;
}

/** One entry as read: the text after `From ` on its separator line, and its bytes, unquoted. */
export interface MboxEntry {
  index: number;
  separator: string;
  raw: Buffer;
}

export const META_HEADER = 'X-Mailroom-Meta';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const LF = 0x0a;
const CR = 0x0d;
const GT = 0x3e;
const QUOTE = Buffer.from('>');
const BLANK_LINE = Buffer.from('\n');

const two = (n: number) => String(n).padStart(2, '0');

/** C asctime() in UTC, e.g. `Thu Nov  5 09:03:00 2026`: what mbox separator lines carry. */
export function asctime(date: Date): string {
  const time = `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}`;
  const day = String(date.getUTCDate()).padStart(2, ' ');
  return `${DAYS[date.getUTCDay()]} ${MONTHS[date.getUTCMonth()]} ${day} ${time} ${date.getUTCFullYear()}`;
}

/**
 * The date on a separator line (`From sender Thu Nov  5 09:03:00 2026`, optionally with a zone
 * before the year); null when there is none. Without a zone it is taken as UTC.
 */
export function separatorDate(separator: string): Date | null {
  const match =
    /(?:Sun|Mon|Tue|Wed|Thu|Fri|Sat) +(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d{1,2}) +(\d{1,2}):(\d{2})(?::(\d{2}))? +(?:([+-])(\d{2})(\d{2}) +|[A-Z]{3,4} +)?(\d{4})\s*$/.exec(
      separator,
    );
  if (!match) return null;
  const [, month, day, hour, minute, second, sign, zoneHours, zoneMinutes, year] = match;
  const utc = Date.UTC(Number(year), MONTHS.indexOf(month!), Number(day), Number(hour), Number(minute), Number(second ?? 0));
  const offset = sign === undefined ? 0 : (sign === '-' ? -1 : 1) * (Number(zoneHours) * 60 + Number(zoneMinutes)) * 60_000;
  return new Date(utc - offset);
}

/** The message's line ending, judged by its first line, so the header line we add matches it. */
function lineEnding(raw: Buffer): string {
  const lf = raw.indexOf(LF);
  return lf > 0 && raw[lf - 1] === CR ? '\r\n' : '\n';
}

export function metaLine(meta: MboxMeta, eol = '\n'): string {
  return `${META_HEADER}: folder=${encodeURIComponent(meta.folder)}; flags=${meta.flags.join(' ')}; internaldate=${meta.internalDate.toISOString()}${eol}`;
}

/** Does a line starting at `at` read `>*From `? */
function fromLine(raw: Buffer, at: number): boolean {
  let i = at;
  while (raw[i] === GT) i++;
  return raw[i] === 0x46 && raw.toString('latin1', i, i + 5) === 'From ';
}

/** The message's bytes with one '>' before each line matching /^>*From /, as slices of it. */
export function* quoteFromLines(raw: Buffer): Generator<Buffer> {
  let start = 0;
  for (let line = 0; line < raw.length; ) {
    if (fromLine(raw, line)) {
      if (line > start) yield raw.subarray(start, line);
      yield QUOTE;
      start = line;
    }
    const lf = raw.indexOf(LF, line);
    if (lf < 0) break;
    line = lf + 1;
  }
  if (start < raw.length) yield raw.subarray(start);
}

/**
 * One mbox entry: separator line, our meta header line, the quoted message, and the blank line
 * that ends an entry (the reader takes exactly that one newline off again).
 */
export function* mboxEntry(raw: Buffer, meta: MboxMeta): Generator<Buffer> {
  yield Buffer.from(`From MAILER-DAEMON ${asctime(meta.internalDate)}\n${metaLine(meta, lineEnding(raw))}`, 'utf8');
  yield* quoteFromLines(raw);
  yield BLANK_LINE;
}

/** Takes one '>' off each line matching /^>+From /: the reverse of quoteFromLines. */
export function unquoteFromLines(content: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  for (let line = 0; line < content.length; ) {
    if (content[line] === GT && fromLine(content, line)) {
      parts.push(content.subarray(start, line));
      start = line + 1;
    }
    const lf = content.indexOf(LF, line);
    if (lf < 0) break;
    line = lf + 1;
  }
  if (start === 0) return content;
  parts.push(content.subarray(start));
  return Buffer.concat(parts);
}

/**
 * Splits an mbox into its entries, lazily. Any line starting with `From ` begins an entry (as in
 * Python's mailbox module); an entry's last newline is the separating blank line and is dropped.
 * Refuses at once bytes that do not start like an mbox: nothing in them could be split right.
 */
export function readMbox(data: Buffer): Iterable<MboxEntry> {
  if (data.length > 0 && data.toString('latin1', 0, 5) !== 'From ') {
    throw new InvalidError('invalid_mbox', 'An mbox starts with a "From " separator line');
  }
  return entries(data);
}

function* entries(data: Buffer): Generator<MboxEntry> {
  let start = 0;
  for (let index = 0; start < data.length; index++) {
    const next = data.indexOf('\nFrom ', start);
    const end = next < 0 ? data.length : next + 1;
    // Before `end`: the next separator follows a newline.
    const lf = data.indexOf(LF, start);
    const lineEnd = lf < 0 ? end : lf;
    const crlf = lineEnd > start && data[lineEnd - 1] === CR;
    const separator = data.toString('latin1', start + 5, crlf ? lineEnd - 1 : lineEnd);
    let content = data.subarray(Math.min(lineEnd + 1, end), end);
    // The blank line before the next separator uses the separator's own line ending.
    if (crlf && content.length >= 2 && content[content.length - 2] === CR && content[content.length - 1] === LF) {
      content = content.subarray(0, content.length - 2);
    } else if (content.length >= 1 && content[content.length - 1] === LF) {
      content = content.subarray(0, content.length - 1);
    }
    yield { index, separator, raw: unquoteFromLines(content) };
    start = end;
  }
}

/**
 * Takes our meta line off the top of an imported message. Answers null when there is none,
 * and throws when there is one but it does not parse.
 */
export function takeMeta(raw: Buffer): { meta: MboxMeta; raw: Buffer } | null {
  if (raw.toString('latin1', 0, META_HEADER.length + 1).toLowerCase() !== `${META_HEADER.toLowerCase()}:`) return null;
  const lf = raw.indexOf(LF);
  const lineEnd = lf < 0 ? raw.length : lf;
  const line = raw.toString('utf8', 0, raw[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd);
  const match = /^[^:]+: folder=([^;\s]+); flags=(.*?); internaldate=(\S+)$/.exec(line);
  if (!match) throw new Error(`The ${META_HEADER} line does not read folder=...; flags=...; internaldate=...`);
  let folder: string;
  try {
    folder = decodeURIComponent(match[1]!);
  } catch {
    throw new Error(`The ${META_HEADER} folder is not percent-encoded UTF-8`);
  }
  const internalDate = new Date(match[3]!);
  if (!/^\d{4}-\d\d-\d\dT/.test(match[3]!) || Number.isNaN(internalDate.getTime())) {
    throw new Error(`The ${META_HEADER} internaldate is not an ISO 8601 date`);
  }
  const flags = match[2]!.split(' ').filter((flag) => flag.length > 0);
  return { meta: { folder, flags, internalDate }, raw: raw.subarray(lf < 0 ? raw.length : lf + 1) };
}

/** The header fields of a message (names lowercase, continuation lines unfolded). */
function headerFields(raw: Buffer): { name: string; value: string }[] {
  const blank = /\r?\n\r?\n/.exec(raw.toString('latin1', 0, Math.min(raw.length, 256 * 1024)));
  const text = raw.toString('latin1', 0, blank ? blank.index : Math.min(raw.length, 256 * 1024));
  const fields: { name: string; value: string }[] = [];
  for (const line of text.split(/\r?\n/)) {
    const last = fields[fields.length - 1];
    if (/^[ \t]/.test(line) && last) {
      last.value += line;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon > 0) fields.push({ name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1) });
  }
  return fields;
}

const X_STATUS_FLAGS: Record<string, string> = { A: '\\Answered', F: '\\Flagged', D: '\\Deleted', T: '\\Draft' };

/**
 * Flags other mail programs leave in mbox files: `Status: R` (seen), `X-Status: AFDT` (answered,
 * flagged, deleted, draft; Dovecot, mutt) and `X-Keywords:` (keywords, comma or space separated).
 * Keywords that are not valid IMAP atoms are up to the caller to drop.
 */
export function flagsFromHeaders(raw: Buffer): string[] {
  const flags = new Set<string>();
  for (const { name, value } of headerFields(raw)) {
    if (name === 'status' && value.includes('R')) flags.add('\\Seen');
    if (name === 'x-status') {
      for (const letter of value.trim()) if (X_STATUS_FLAGS[letter]) flags.add(X_STATUS_FLAGS[letter]!);
    }
    if (name === 'x-keywords') {
      for (const keyword of value.split(/[\s,]+/)) if (keyword.length > 0) flags.add(keyword);
    }
  }
  return [...flags];
}
