/** Rendering of IMAP data items (RFC 3501 §4, §9): strings, lists, NIL. */

const QUOTABLE = /^[\x20-\x7e]*$/;
/** After ENABLE UTF8=ACCEPT a quoted string may hold UTF-8 too (RFC 6855 §3), still no controls. */
const QUOTABLE_UTF8 = /^[^\x00-\x1f\x7f-\x9f]*$/;

/** A string as a quoted string when it can be one, else as a literal. Null is NIL. */
export function nstring(value: string | null | undefined): string {
  if (value === null || value === undefined) return 'NIL';
  return quotedOrLiteral(value, QUOTABLE);
}

/** A string for a client that ENABLEd UTF8=ACCEPT: quoted even when it holds UTF-8. */
export function utf8String(value: string): string {
  return quotedOrLiteral(value, QUOTABLE_UTF8);
}

function quotedOrLiteral(value: string, quotable: RegExp): string {
  if (quotable.test(value) && value.length <= 1000) return `"${value.replace(/[\\"]/g, '\\$&')}"`;
  return `{${Buffer.byteLength(value)}}\r\n${value}`;
}

/** An astring (RFC 3501): a bare atom when it is one, else quoted or literal. */
export function astring(value: string): string {
  return /^[^\x00-\x20\x7f-\uffff(){%*"\\\]]+$/.test(value) ? value : nstring(value);
}

export function list(items: readonly string[]): string {
  return `(${items.join(' ')})`;
}

/** A literal of raw bytes (message data): the marker as text, the bytes as they are. */
export function literal(bytes: Buffer): [string, Buffer] {
  return [`{${bytes.length}}\r\n`, bytes];
}
