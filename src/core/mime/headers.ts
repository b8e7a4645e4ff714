import libmime from 'libmime';
import { MIME_LIMITS } from './limits.js';

/** One header field as byte offsets into the raw message; decoded only when someone asks. */
export interface RawField {
  /** First byte of the field name. */
  start: number;
  /** Offset of the colon that ends the name. */
  colon: number;
  /** Just past the field's last byte, before its final line break. */
  end: number;
}

/** The Content-* facts of one part, as BODYSTRUCTURE shows them. */
export interface ContentFields {
  type: string;
  subtype: string;
  params: Record<string, string>;
  id: string | null;
  description: string | null;
  encoding: string;
  md5: string | null;
  disposition: { type: string; params: Record<string, string> } | null;
  language: string[] | null;
  location: string | null;
  /** multipart/* only: the boundary as a latin1 string, to compare with raw bytes. */
  boundary: string | null;
}

export type DefaultType = 'text' | 'message';

// RFC 2045 token, lowercased.
const TOKEN = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
// Postgres jsonb refuses U+0000 and unpaired surrogates; everything we keep goes into jsonb.
const JSONB_UNSAFE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export function jsonSafe(text: string): string {
  return text.replace(JSONB_UNSAFE, '\ufffd');
}

export function fieldName(raw: Buffer, field: RawField): string {
  let end = field.colon;
  while (end > field.start && (raw[end - 1] === 0x20 || raw[end - 1] === 0x09)) end--;
  return raw.toString('latin1', field.start, end).toLowerCase();
}

/**
 * The field value unfolded (RFC 5322 §2.2.3: every line break inside a field precedes white
 * space, so removing the breaks is the whole job) and trimmed, not decoded. Header bytes are
 * read as UTF-8 (RFC 6532); anything else turns into U+FFFD rather than failing.
 */
export function fieldValue(raw: Buffer, field: RawField, maxChars = Infinity): string {
  const end = Math.min(field.end, field.colon + 1 + maxChars);
  const text = raw.toString('utf8', field.colon + 1, end);
  return jsonSafe(trimWhiteSpace(text.replace(/\r?\n/g, '')));
}

// By hand: a /[ \t]+$/ regex backtracks quadratically over a long inner run of spaces.
function trimWhiteSpace(text: string): string {
  const isSpace = (code: number) => code === 0x20 || code === 0x09 || code === 0x0d;
  let start = 0;
  let end = text.length;
  while (start < end && isSpace(text.charCodeAt(start))) start++;
  while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

/** RFC 2047 encoded-words decoded to Unicode; the input back when it cannot be decoded. */
export function decodeText(text: string): string {
  if (!text.includes('=?')) return text;
  try {
    return jsonSafe(libmime.decodeWords(text));
  } catch {
    return text;
  }
}

/** Reads the Content-* fields of a part; the first of each counts, as in Dovecot and Python. */
export function readContentFields(raw: Buffer, fields: RawField[], defaultType: DefaultType): ContentFields {
  const values = new Map<string, string>();
  for (const field of fields) {
    // Cheap filter before decoding the name: every field we want starts with "content-".
    if (field.colon - field.start < 10) continue;
    const first = raw[field.start];
    if (first !== 0x43 && first !== 0x63) continue;
    const name = fieldName(raw, field);
    if (name.startsWith('content-') && !values.has(name)) {
      values.set(name, fieldValue(raw, field, MIME_LIMITS.parsedFieldChars));
    }
  }

  let type = defaultType === 'message' ? 'message' : 'text';
  let subtype = defaultType === 'message' ? 'rfc822' : 'plain';
  let params: Record<string, string> = defaultType === 'message' ? {} : { charset: 'us-ascii' };
  let boundary: string | null = null;
  const contentType = values.get('content-type');
  if (contentType !== undefined) {
    const parsed = parseParameterized(contentType);
    const slash = parsed.value.indexOf('/');
    const declaredType = parsed.value.slice(0, slash).trim().toLowerCase();
    const declaredSubtype = parsed.value.slice(slash + 1).trim().toLowerCase();
    // RFC 2045 §5.2: a syntactically invalid Content-Type means text/plain; charset=us-ascii.
    // So does a multipart without a usable boundary: it cannot be split.
    boundary = declaredType === 'multipart' ? multipartBoundary(parsed.params.boundary) : null;
    const valid = slash > 0 && TOKEN.test(declaredType) && TOKEN.test(declaredSubtype);
    if (valid && (declaredType !== 'multipart' || boundary !== null)) {
      type = declaredType;
      subtype = declaredSubtype;
      params = parsed.params;
    } else {
      type = 'text';
      subtype = 'plain';
      params = { charset: 'us-ascii' };
      boundary = null;
    }
  }

  // One literal, no spread: V8 makes a spread of a conditional object ~50x slower here.
  return {
    type,
    subtype,
    params,
    id: nonEmpty(values.get('content-id')),
    description: nonEmpty(values.get('content-description')),
    encoding: transferEncoding(values.get('content-transfer-encoding')),
    md5: nonEmpty(values.get('content-md5')),
    disposition: disposition(values.get('content-disposition')),
    language: language(values.get('content-language')),
    location: nonEmpty(values.get('content-location')),
    boundary,
  };
}

function multipartBoundary(param: string | undefined): string | null {
  if (param === undefined) return null;
  // Delimiter lines are compared with trailing white space removed, so the boundary is too.
  const boundary = Buffer.from(trimWhiteSpace(param), 'utf8').toString('latin1');
  return boundary.length > 0 && boundary.length <= MIME_LIMITS.maxBoundaryLength ? boundary : null;
}

/** `value; name=value …` with RFC 2231 continuations and charsets joined by libmime. */
function parseParameterized(text: string): { value: string; params: Record<string, string> } {
  try {
    const parsed = libmime.parseHeaderValue(text, { stripComments: true });
    const params = new Map<string, string>();
    for (const [name, value] of Object.entries(parsed.params)) {
      params.set(jsonSafe(name.toLowerCase()), jsonSafe(String(value)));
    }
    // fromEntries defines own properties, so a parameter called __proto__ stays a parameter.
    return { value: parsed.value, params: Object.fromEntries(params) };
  } catch {
    return { value: '', params: {} };
  }
}

function nonEmpty(value: string | undefined): string | null {
  return value ? value : null;
}

function transferEncoding(value: string | undefined): string {
  const token = value?.match(/^"?([^\s();"]+)/)?.[1];
  return token ? token.toUpperCase() : '7BIT';
}

function disposition(value: string | undefined): ContentFields['disposition'] {
  if (value === undefined) return null;
  const parsed = parseParameterized(value);
  const type = parsed.value.trim().toLowerCase();
  return TOKEN.test(type) ? { type, params: parsed.params } : null;
}

function language(value: string | undefined): string[] | null {
  if (value === undefined) return null;
  const tags = withoutComments(value)
    .split(',')
    .map((tag) => tag.trim())
    .filter((tag) => tag.length > 0);
  return tags.length > 0 ? tags : null;
}

/**
 * Top-level fields for SEARCH HEADER: lowercase name -> decoded values, in order. Bounded so a
 * message with thousands of fields cannot bloat the row: each value is cut at headerValueChars,
 * and a field that no longer fits the total is left out.
 */
export function headerMap(raw: Buffer, fields: RawField[]): Record<string, string[]> {
  const map = new Map<string, string[]>();
  let budget = MIME_LIMITS.headerMapChars;
  for (const field of fields) {
    if (budget < 64) break; // nothing useful fits any more
    const name = jsonSafe(fieldName(raw, field));
    if (name === '' || name.length >= budget) continue;
    const value = decodeText(fieldValue(raw, field, MIME_LIMITS.headerValueChars));
    const chars = name.length + value.length;
    if (chars > budget) continue;
    budget -= chars;
    const values = map.get(name);
    if (values) values.push(value);
    else map.set(name, [value]);
  }
  return Object.fromEntries(map);
}

/** Drops RFC 5322 comments, e.g. the "(CEST)" many mailers add after a date's zone. */
export function withoutComments(text: string): string {
  if (!text.includes('(')) return text;
  let out = '';
  let depth = 0;
  for (const char of text) {
    if (char === '(') depth++;
    else if (char === ')' && depth > 0) depth--;
    else if (depth === 0) out += char;
  }
  return out;
}
