import { DATE_TIME } from '../core/mailboxes/protocol-switches.js';

/** Readers for the values typed on the command line; each throws an Error whose message says what was expected. */

const UNITS: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
const MAX_COUNT = 2147483647;

/**
 * A size in bytes: plain bytes (`1048576`) or a number with a binary unit (`500K`, `20M`, `1.5G`,
 * `2T`; `20MB` and `20MiB` mean the same), case-insensitive. `unlimited` is null.
 */
export function parseSize(text: string): number | null {
  if (text.toLowerCase() === 'unlimited') return null;
  const match = /^(\d+(?:\.\d+)?)(?:([kmgt])(?:i?b)?|b)?$/i.exec(text.trim());
  const unit = match?.[2] === undefined ? 1 : UNITS[match[2].toLowerCase()]!;
  const bytes = match ? Math.round(Number(match[1]) * unit) : NaN;
  // A fraction of a byte (`1.5` with no unit) would be rounded silently; ask for a whole number.
  if (!match || (unit === 1 && match[1]!.includes('.')) || !Number.isSafeInteger(bytes)) {
    throw new Error(`expected bytes or a size like 500K, 20M, 1G, 2T, or 'unlimited', got '${text}'`);
  }
  return bytes;
}

/** A whole number from 0 to 2147483647; with allowUnlimited, `unlimited` is null. */
export function parseCount(text: string, allowUnlimited: boolean): number | null {
  if (allowUnlimited && text.toLowerCase() === 'unlimited') return null;
  if (!/^\d+$/.test(text) || Number(text) > MAX_COUNT) {
    throw new Error(`expected a whole number${allowUnlimited ? " or 'unlimited'" : ''}, got '${text}'`);
  }
  return Number(text);
}

export function parseChoice<T extends string>(text: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(text)) throw new Error(`expected ${choices.join(', ')}, got '${text}'`);
  return text as T;
}

/** An RFC 3339 time with its offset (`2027-01-01T00:00:00Z`), as the API takes it; answered as given. */
export function parseTime(text: string): string {
  if (!DATE_TIME.test(text) || Number.isNaN(Date.parse(text))) {
    throw new Error(`expected a time such as 2027-01-01T00:00:00Z, got '${text}'`);
  }
  return text;
}

/** Longer than any password the core accepts; stops a stray pipe from filling memory. */
const MAX_LINE = 64 * 1024;

/** The first line of stdin without its line ending; the rest is left unread. */
export async function readFirstLine(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  stream.setEncoding('utf8');
  for await (const chunk of stream) {
    text += chunk as string;
    // Leaving the loop destroys the stream, so nothing keeps the process waiting on stdin.
    if (text.includes('\n') || text.length > MAX_LINE) break;
  }
  return text.split('\n', 1)[0]!.replace(/\r$/, '');
}

/** A batch file's worth: far more than 1,000 operations take. */
const MAX_INPUT = 64 * 1024 * 1024;

/** All of stdin as text; more than MAX_INPUT is refused rather than held. */
export async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  stream.setEncoding('utf8');
  for await (const chunk of stream) {
    text += chunk as string;
    if (text.length > MAX_INPUT) throw new Error(`more than ${MAX_INPUT} bytes`);
  }
  return text;
}
