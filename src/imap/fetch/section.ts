import type { BodyPart } from '../../core/mime/types.js';
import { ImapSyntaxError } from '../parser/tokens.js';
import { astring } from '../writer.js';

/** What follows the part numbers in a section (RFC 3501 §6.4.5 BODY[<section>]). */
export type SectionText = 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';

export interface Section {
  /** Part numbers; empty for the message itself. */
  path: number[];
  /** Null: the whole message (empty path) or the part's body. */
  text: SectionText | null;
  /** HEADER.FIELDS(.NOT): field names, uppercase. */
  fields: string[];
}

/** Where a section's bytes are in the stored message. */
export type SectionRange =
  /** [start, end) of the message; end null means to its end. */
  | { kind: 'bytes'; start: number; end: number | null }
  /** The header at [start, end), filtered by field name. */
  | { kind: 'fields'; start: number; end: number; names: ReadonlySet<string>; exclude: boolean }
  /** No such part, or HEADER/TEXT of a part that is not a message: an empty string (as Dovecot). */
  | { kind: 'empty' };

const PART_NUMBER = /([1-9]\d{0,8})(\.|$)/y;
const FIELDS = /^HEADER\.FIELDS(\.NOT)?\s+\((.*)\)$/is;
/** More part numbers than any stored structure nests (MIME_LIMITS.maxDepth) can address nothing. */
const MAX_PATH = 64;

/** Parses what stands between the brackets of BODY[…]; throws ImapSyntaxError (BAD). */
export function parseSection(spec: string): Section {
  const invalid = () => new ImapSyntaxError(`Invalid section [${spec.slice(0, 100)}]`);
  const path: number[] = [];
  let at = 0;
  for (;;) {
    PART_NUMBER.lastIndex = at;
    const match = PART_NUMBER.exec(spec);
    if (!match) break;
    path.push(Number(match[1]));
    at = PART_NUMBER.lastIndex;
    if (match[2] === '') break;
    if (at === spec.length || path.length > MAX_PATH) throw invalid();
  }
  const rest = spec.slice(at);
  const upper = rest.toUpperCase();
  if (upper === '') return { path, text: null, fields: [] };
  if (upper === 'HEADER' || upper === 'TEXT') return { path, text: upper, fields: [] };
  if (upper === 'MIME' && path.length > 0) return { path, text: 'MIME', fields: [] };
  const fields = FIELDS.exec(rest);
  if (fields) {
    return { path, text: fields[1] ? 'HEADER.FIELDS.NOT' : 'HEADER.FIELDS', fields: headerList(fields[2]!, spec) };
  }
  throw invalid();
}

/** header-list = "(" header-fld-name *(SP header-fld-name) ")"; names are astrings. */
function headerList(inner: string, spec: string): string[] {
  const names: string[] = [];
  // Sticky: each name must follow the previous one, separated by white space; linear.
  const item = /\s*(?:"((?:[^"\\]|\\.)*)"|([^\s"(){%*\\\]]+))(?=\s|$)/y;
  const end = /\s*$/y;
  for (;;) {
    end.lastIndex = item.lastIndex;
    if (end.test(inner)) break;
    const match = item.exec(inner);
    if (!match) throw new ImapSyntaxError(`Invalid header list in [${spec.slice(0, 100)}]`);
    const name = match[1] !== undefined ? match[1].replace(/\\(.)/g, '$1') : match[2]!;
    if (name === '' || /[\x00-\x20\x7f:]/.test(name)) throw new ImapSyntaxError(`Invalid header field name '${name.slice(0, 50)}'`);
    names.push(name.toUpperCase());
  }
  if (names.length === 0) throw new ImapSyntaxError('A header list names at least one field');
  return names;
}

/** The section as the response names it: `1.2.HEADER.FIELDS (FROM TO)`. */
export function sectionName(section: Section): string {
  const parts: string[] = [];
  if (section.path.length > 0) parts.push(section.path.join('.'));
  if (section.text !== null) {
    const fields = section.text.startsWith('HEADER.FIELDS') ? ` (${section.fields.map(astring).join(' ')})` : '';
    parts.push(`${section.text}${fields}`);
  }
  return parts.join('.');
}

/** Whether the section is the whole message, which is read without the index. */
export function isWholeMessage(section: Section): boolean {
  return section.path.length === 0 && section.text === null;
}

function isMessage(part: BodyPart): part is BodyPart & { message: NonNullable<BodyPart['message']> } {
  return part.type === 'message' && part.subtype === 'rfc822' && part.message !== undefined;
}

/**
 * The part a path names (RFC 3501 §6.4.5), as Dovecot finds it: in a multipart the n-th child;
 * a part that is not multipart has only part 1, itself; numbers after a message/rfc822 part go
 * into the enclosed message's body.
 */
export function findPart(root: BodyPart, path: readonly number[]): BodyPart | null {
  let part = root;
  for (let i = 0; i < path.length; i++) {
    const n = path[i]!;
    const more = i < path.length - 1;
    if (part.parts) {
      const child = part.parts[n - 1];
      if (!child) return null;
      part = child;
    } else if (n !== 1 || (more && !isMessage(part))) {
      return null;
    }
    if (more && isMessage(part)) part = part.message.body;
  }
  return part;
}

/** Where the section is, from the stored structure alone. */
export function locateSection(root: BodyPart, section: Section): SectionRange {
  // HEADER, HEADER.FIELDS and TEXT belong to a message: the top one, or an enclosed one.
  let message: BodyPart;
  if (section.path.length === 0) {
    message = root;
  } else {
    const part = findPart(root, section.path);
    if (part === null) return { kind: 'empty' };
    if (section.text === null) return { kind: 'bytes', start: part.bodyStart, end: part.end };
    if (section.text === 'MIME') return { kind: 'bytes', start: part.headerStart, end: part.bodyStart };
    if (!isMessage(part)) return { kind: 'empty' };
    message = part.message.body;
  }
  switch (section.text) {
    case null:
      return { kind: 'bytes', start: 0, end: null };
    case 'HEADER':
      return { kind: 'bytes', start: message.headerStart, end: message.bodyStart };
    case 'TEXT':
      return { kind: 'bytes', start: message.bodyStart, end: section.path.length === 0 ? null : message.end };
    case 'HEADER.FIELDS':
    case 'HEADER.FIELDS.NOT':
      return {
        kind: 'fields',
        start: message.headerStart,
        end: message.bodyStart,
        names: new Set(section.fields),
        exclude: section.text === 'HEADER.FIELDS.NOT',
      };
    default:
      return { kind: 'empty' }; // MIME has a path; handled above
  }
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;
const CRLF = Buffer.from('\r\n');

/**
 * The fields of a header whose names are (or, with `exclude`, are not) in `names`, as their
 * original bytes with their continuation lines, followed by the blank line (RFC 3501 §6.4.5).
 * `header` runs from the first field to the blank line or the end of the header.
 */
export function filterHeaderFields(header: Buffer, names: ReadonlySet<string>, exclude: boolean): Buffer {
  const out: Buffer[] = [];
  let keep = false;
  let line = 0;
  while (line < header.length) {
    const lineFeed = header.indexOf(LF, line);
    const next = lineFeed < 0 ? header.length : lineFeed + 1;
    const contentEnd = lineFeed < 0 ? header.length : lineFeed > line && header[lineFeed - 1] === CR ? lineFeed - 1 : lineFeed;
    if (contentEnd === line) break; // the blank line that ends the header
    const first = header[line];
    if (first !== SP && first !== HT) {
      const colon = header.indexOf(COLON, line);
      const name = colon >= 0 && colon < contentEnd ? header.toString('latin1', line, colon).trim().toUpperCase() : null;
      keep = (name !== null && names.has(name)) !== exclude;
    }
    if (keep) {
      out.push(header.subarray(line, next));
      // A header that ends without a line break still gets one before the blank line.
      if (lineFeed < 0) out.push(CRLF);
    }
    line = next;
  }
  out.push(CRLF);
  return Buffer.concat(out);
}
