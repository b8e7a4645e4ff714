import { emptyEnvelope, readEnvelope } from './envelope.js';
import { type ContentFields, type DefaultType, type RawField, readContentFields } from './headers.js';
import { MIME_LIMITS } from './limits.js';
import type { BodyPart } from './types.js';

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const DASH = 0x2d;
const COLON = 0x3a;
const LF_DASH_DASH = Buffer.from('\n--', 'latin1');

/** A delimiter line of an enclosing multipart: `--boundary` or `--boundary--`, maybe padded. */
interface Delimiter {
  /** Its multipart's place on the boundary stack, 0 for the outermost. */
  level: number;
  close: boolean;
  /** Offset of the line's first "-". */
  lineStart: number;
  /** Offset just past the line (after its line feed), where the next part's header starts. */
  next: number;
}

interface HeaderRead {
  fields: RawField[];
  bodyStart: number;
  /** Set when a delimiter line cut the header short: the part has no body. */
  cut: Delimiter | null;
}

interface ParsedPart {
  part: BodyPart;
  fields: RawField[];
  /** The delimiter line that ended the part; null at the end of the message. */
  delimiter: Delimiter | null;
}

/** The MIME tree of a message with byte offsets, and the fields of its top-level header. */
export function parseStructure(raw: Buffer): { root: BodyPart; fields: RawField[] } {
  const { part, fields } = new StructureParser(raw).parsePart(0, 0, 'text');
  return { root: part, fields };
}

/** Lines in raw[start, end), counted as wantsLines explains. */
export function countLines(raw: Buffer, start: number, end: number): number {
  return countLineFeeds(raw, start, end) + (end > start && raw[end - 1] !== LF ? 1 : 0);
}

/**
 * One forward pass over the message, like Dovecot's message-parser: a stack of the open
 * multiparts' boundaries, and every line that starts with "--" checked against it, innermost
 * first. Each byte is looked at a bounded number of times whatever the nesting, and recursion
 * is bounded by maxDepth.
 */
class StructureParser {
  /** Boundaries of the enclosing multiparts, innermost last. */
  private readonly boundaries: Buffer[] = [];
  /** Boundary (latin1) -> the innermost level using it, for deep nesting: one lookup per line. */
  private readonly levels = new Map<string, number>();
  private longestBoundary = 0;
  private partCount = 0;
  // Line feeds counted up to lineFeedOffset, only while a text or message part is open.
  private lineFeedOffset = 0;
  private lineFeeds = 0;
  private openCounts = 0;
  private readonly addressBudget = { remaining: MIME_LIMITS.enclosedAddresses };

  constructor(private readonly raw: Buffer) {}

  /** Parses the part whose header starts at headerStart (a line start). */
  parsePart(headerStart: number, depth: number, defaultType: DefaultType): ParsedPart {
    this.partCount++;
    const header = this.readHeader(headerStart);
    const content = readContentFields(this.raw, header.fields, defaultType);
    const part = newPart(headerStart, header.bodyStart, content);

    let kind: 'multipart' | 'message' | 'leaf' =
      content.boundary !== null ? 'multipart' : isRfc822(part) ? 'message' : 'leaf';
    if (kind !== 'leaf' && (depth >= MIME_LIMITS.maxDepth || this.partCount >= MIME_LIMITS.maxParts)) {
      // Too deep or too many parts: keep the bytes, stop looking inside.
      part.type = 'application';
      part.subtype = 'octet-stream';
      part.params = {};
      kind = 'leaf';
    }

    if (header.cut) {
      // Dovecot and Python agree: a delimiter inside the header ends the part, body empty.
      if (kind === 'multipart') asPlainText(part);
      if (kind === 'message') part.message = { envelope: emptyEnvelope(), body: emptyPart(part.bodyStart) };
      return { part, fields: header.fields, delimiter: header.cut };
    }

    let delimiter: Delimiter | null;
    if (kind === 'multipart') delimiter = this.parseMultipart(part, content.boundary ?? '', depth);
    else if (kind === 'message') delimiter = this.parseEnclosedMessage(part, depth);
    else delimiter = this.parseLeaf(part);
    part.size = part.end - part.bodyStart;
    return { part, fields: header.fields, delimiter };
  }

  private parseLeaf(part: BodyPart): Delimiter | null {
    const counting = wantsLines(part) ? this.startLines(part.bodyStart) : null;
    const delimiter = this.findDelimiter(part.bodyStart);
    part.end = delimiter ? this.endBefore(delimiter.lineStart, part.bodyStart) : this.raw.length;
    if (counting !== null) part.lines = this.finishLines(counting, part);
    return delimiter;
  }

  private parseMultipart(part: BodyPart, boundary: string, depth: number): Delimiter | null {
    const level = this.pushBoundary(boundary);
    const childType: DefaultType = part.subtype === 'digest' ? 'message' : 'text';
    const children: BodyPart[] = [];
    // The preamble runs to the first delimiter; it is not a part.
    let delimiter = this.findDelimiter(part.bodyStart);
    while (delimiter !== null && delimiter.level === level && !delimiter.close) {
      if (this.partCount >= MIME_LIMITS.maxParts) break;
      const child = this.parsePart(delimiter.next, depth + 1, childType);
      children.push(child.part);
      delimiter = child.delimiter;
    }
    this.popBoundary(level);
    // After our close delimiter comes the epilogue, up to an enclosing delimiter or the end.
    // A missing close delimiter ends us where the enclosing part ends.
    if (delimiter !== null && delimiter.level === level) delimiter = this.findDelimiter(delimiter.next);
    part.end = delimiter ? this.endBefore(delimiter.lineStart, part.bodyStart) : this.raw.length;
    if (children.length > 0) {
      part.parts = children;
    } else {
      // No delimiter line at all: unusable as a multipart, so text/plain (RFC 2045 §5.2).
      asPlainText(part);
      part.lines = countLines(this.raw, part.bodyStart, part.end);
    }
    return delimiter;
  }

  private parseEnclosedMessage(part: BodyPart, depth: number): Delimiter | null {
    const counting = this.startLines(part.bodyStart);
    const inner = this.parsePart(part.bodyStart, depth + 1, 'text');
    part.end = inner.part.end;
    part.lines = this.finishLines(counting, part);
    part.message = { envelope: readEnvelope(this.raw, inner.fields, this.addressBudget).envelope, body: inner.part };
    return inner.delimiter;
  }

  /**
   * Header fields up to the blank line. Like Python's email parser, a line that is neither a
   * field nor a continuation starts the body without a blank line; a delimiter line of an
   * enclosing multipart ends the part, and the line break before it belongs to the delimiter.
   */
  private readHeader(start: number): HeaderRead {
    const raw = this.raw;
    const fields: RawField[] = [];
    let field: RawField | null = null;
    let line = start;
    while (line < raw.length) {
      if (raw[line] === DASH && raw[line + 1] === DASH && this.boundaries.length > 0) {
        const delimiter = this.delimiterAt(line);
        if (delimiter) return { fields, bodyStart: this.endBefore(line, start), cut: delimiter };
      }
      const lineFeed = indexOfLineFeed(raw, line);
      const next = lineFeed < 0 ? raw.length : lineFeed + 1;
      let contentEnd = lineFeed < 0 ? raw.length : lineFeed;
      if (contentEnd > line && raw[contentEnd - 1] === CR) contentEnd--;
      if (contentEnd === line) return { fields, bodyStart: next, cut: null };

      const first = raw[line];
      if (first === SP || first === HT) {
        if (field) field.end = contentEnd;
      } else {
        const colon = this.colonOf(line, contentEnd);
        if (colon < 0) return { fields, bodyStart: line, cut: null };
        // Past the cap the header still runs to its end, but its fields are not kept.
        field = fields.length < MIME_LIMITS.fieldsPerHeader ? { start: line, colon, end: contentEnd } : null;
        if (field) fields.push(field);
      }
      line = next;
    }
    return { fields, bodyStart: raw.length, cut: null };
  }

  /**
   * RFC 5322 field name (printable ASCII but ":"), optional obsolete white space, then ":".
   * An empty name still makes a (useless) field, as in Dovecot and Python.
   */
  private colonOf(start: number, end: number): number {
    const raw = this.raw;
    let i = start;
    while (i < end && raw[i] !== COLON && raw[i]! > 0x20 && raw[i]! < 0x7f) i++;
    if (i > start) while (i < end && (raw[i] === SP || raw[i] === HT)) i++;
    return i < end && raw[i] === COLON ? i : -1;
  }

  /** The next delimiter line of any open multipart at or after `from` (a line start). */
  private findDelimiter(from: number): Delimiter | null {
    if (this.boundaries.length === 0) return null;
    const raw = this.raw;
    let line = from;
    while (line < raw.length) {
      if (raw[line] === DASH && raw[line + 1] === DASH) {
        const delimiter = this.delimiterAt(line);
        if (delimiter) return delimiter;
      }
      const found = indexOfDashLine(raw, line);
      if (found < 0) return null;
      line = found + 1;
    }
    return null;
  }

  /**
   * Whether the line at `line` (starting "--") is a delimiter: RFC 2046 allows only transport
   * padding (white space) after the boundary, so the rest of the line must match exactly.
   * Reads at most the longest boundary's worth of bytes unless the rest is padding.
   */
  private delimiterAt(line: number): Delimiter | null {
    const raw = this.raw;
    const start = line + 2;
    const cap = Math.min(raw.length, start + this.longestBoundary + 2);
    let end = start;
    while (end < cap && raw[end] !== LF) end++;
    let next: number;
    if (end < raw.length && raw[end] !== LF) {
      // Longer than any delimiter: only padding may follow.
      let i = end;
      while (i < raw.length && isPadding(raw[i]!)) i++;
      if (i < raw.length && raw[i] !== LF) return null;
      next = Math.min(raw.length, i + 1);
    } else {
      next = Math.min(raw.length, end + 1);
    }
    while (end > start && isPadding(raw[end - 1]!)) end--;
    const length = end - start;
    const closing = length >= 2 && raw[end - 1] === DASH && raw[end - 2] === DASH;
    let open = -1;
    let close = -1;
    if (this.boundaries.length <= FEW_BOUNDARIES) {
      // Comparing bytes in place beats building a string when there are only a few to try.
      for (let level = this.boundaries.length - 1; level >= 0 && open < 0 && close < 0; level--) {
        const boundary = this.boundaries[level]!;
        if (length === boundary.length && sameBytes(raw, start, boundary)) open = level;
        else if (closing && length === boundary.length + 2 && sameBytes(raw, start, boundary)) close = level;
      }
    } else {
      const text = raw.toString('latin1', start, end);
      open = this.levels.get(text) ?? -1;
      close = closing ? (this.levels.get(text.slice(0, -2)) ?? -1) : -1;
    }
    // Innermost wins, so a nested multipart that reuses its parent's boundary still works.
    if (close > open) return { level: close, close: true, lineStart: line, next };
    return open < 0 ? null : { level: open, close: false, lineStart: line, next };
  }

  /** Where content ends before the line at `line`: the [CR]LF before a delimiter is the delimiter's. */
  private endBefore(line: number, floor: number): number {
    let end = line;
    if (end > floor && this.raw[end - 1] === LF) {
      end--;
      if (end > floor && this.raw[end - 1] === CR) end--;
    }
    return end;
  }

  private pushBoundary(boundary: string): number {
    const level = this.boundaries.push(Buffer.from(boundary, 'latin1')) - 1;
    this.levels.set(boundary, level);
    this.longestBoundary = Math.max(this.longestBoundary, boundary.length);
    return level;
  }

  private popBoundary(level: number): void {
    this.boundaries.length = level;
    this.levels.clear();
    this.longestBoundary = 0;
    this.boundaries.forEach((boundary, outer) => {
      this.levels.set(boundary.toString('latin1'), outer);
      this.longestBoundary = Math.max(this.longestBoundary, boundary.length);
    });
  }

  // Lines of text and message parts. Their ranges nest (a message holds its parts) and are
  // opened and closed in offset order, so one running count of line feeds serves all of them
  // and each byte is counted once; outside any of them the count just jumps ahead.
  private startLines(offset: number): number {
    if (this.openCounts === 0) {
      this.lineFeedOffset = offset;
      this.lineFeeds = 0;
    }
    this.openCounts++;
    return this.lineFeedsAt(offset);
  }

  private finishLines(started: number, part: BodyPart): number {
    const lineFeeds = this.lineFeedsAt(part.end) - started;
    this.openCounts--;
    return lineFeeds + (part.end > part.bodyStart && this.raw[part.end - 1] !== LF ? 1 : 0);
  }

  /** Offsets asked for only grow: parts start and end in document order. */
  private lineFeedsAt(offset: number): number {
    this.lineFeeds += countLineFeeds(this.raw, this.lineFeedOffset, offset);
    this.lineFeedOffset = Math.max(this.lineFeedOffset, offset);
    return this.lineFeeds;
  }
}

// The next two look at a short stretch in JavaScript before calling the native search: a native
// call costs about as much as scanning a short line, and hostile input can have millions of them.
const SHORT_STRETCH = 256;

function indexOfLineFeed(raw: Buffer, from: number): number {
  const stop = Math.min(raw.length, from + SHORT_STRETCH);
  for (let i = from; i < stop; i++) if (raw[i] === LF) return i;
  return stop < raw.length ? raw.indexOf(LF, stop) : -1;
}

/** Offset of the next "\n--" at or after `from`, or -1. */
function indexOfDashLine(raw: Buffer, from: number): number {
  const stop = Math.max(from, Math.min(raw.length - 2, from + SHORT_STRETCH));
  for (let i = from; i < stop; i++) if (raw[i] === LF && raw[i + 1] === DASH && raw[i + 2] === DASH) return i;
  return raw.indexOf(LF_DASH_DASH, stop);
}

// Up to this many open multiparts a delimiter candidate is compared byte by byte with each.
const FEW_BOUNDARIES = 2;

function sameBytes(raw: Buffer, offset: number, expected: Buffer): boolean {
  for (let i = 0; i < expected.length; i++) if (raw[offset + i] !== expected[i]) return false;
  return true;
}

function isPadding(byte: number): boolean {
  return byte === SP || byte === HT || byte === CR;
}

function countLineFeeds(raw: Buffer, start: number, end: number): number {
  let count = 0;
  for (let i = start; i < end; i++) if (raw[i] === LF) count++;
  return count;
}

function newPart(headerStart: number, bodyStart: number, content: ContentFields): BodyPart {
  return {
    headerStart,
    bodyStart,
    end: bodyStart,
    type: content.type,
    subtype: content.subtype,
    params: content.params,
    id: content.id,
    description: content.description,
    encoding: content.encoding,
    md5: content.md5,
    disposition: content.disposition,
    language: content.language,
    location: content.location,
    size: 0,
    lines: 0,
  };
}

function emptyPart(offset: number): BodyPart {
  return newPart(offset, offset, readContentFields(Buffer.alloc(0), [], 'text'));
}

function asPlainText(part: BodyPart): void {
  part.type = 'text';
  part.subtype = 'plain';
  part.params = { charset: 'us-ascii' };
}

function isRfc822(part: BodyPart): boolean {
  return part.type === 'message' && part.subtype === 'rfc822';
}

/**
 * RFC 3501 asks for "the size of the body in text lines" for text/* and message/rfc822. We count
 * line feeds plus a last line without one: a part's final CRLF belongs to the next delimiter, so
 * "Hello\r\nWorld" is two lines, not one. (Dovecot counts line feeds only.)
 */
function wantsLines(part: BodyPart): boolean {
  return part.type === 'text' || isRfc822(part);
}
