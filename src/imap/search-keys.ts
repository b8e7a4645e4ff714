import { normalizeFlags } from '../core/mailstore/flags.js';
import type { SearchKey, UidRange } from '../core/mailstore/search.js';
import { atom, number } from './arguments.js';
import { ImapSyntaxError, type Token } from './parser/tokens.js';
import { parseSequenceSet, SAVED } from './sequence.js';

/** What of the session's view a search needs: sequence numbers are positions in `uids`. */
export interface SearchView {
  uids: readonly number[];
  recent: ReadonlySet<number>;
  saved: readonly number[];
}

/** The charsets SEARCH, SORT and THREAD understand (RFC 3501 §6.4.4); answered in [BADCHARSET (…)]. */
export const SEARCH_CHARSETS = ['UTF-8', 'US-ASCII'] as const;

/** A CHARSET other than SEARCH_CHARSETS: NO [BADCHARSET], not BAD. */
export class BadCharsetError extends Error {
  constructor(readonly charset: string) {
    super(`The charset ${charset} is not supported`);
    this.name = 'BadCharsetError';
  }
}

export interface ParsedSearch {
  key: SearchKey;
  /** Whether a MODSEQ key was used (RFC 7162 §3.1.5): the answer then carries (MODSEQ n). */
  modseq: boolean;
  /** The lowest MODSEQ a matching message can have, as far as the key tells (0: any). */
  modseqFloor: number;
}

const NEVER: SearchKey = { not: { all: true } };
const FLAG_KEYS = new Map<string, [string, boolean]>([
  ['ANSWERED', ['\\Answered', true]],
  ['DELETED', ['\\Deleted', true]],
  ['DRAFT', ['\\Draft', true]],
  ['FLAGGED', ['\\Flagged', true]],
  ['SEEN', ['\\Seen', true]],
  ['UNANSWERED', ['\\Answered', false]],
  ['UNDELETED', ['\\Deleted', false]],
  ['UNDRAFT', ['\\Draft', false]],
  ['UNFLAGGED', ['\\Flagged', false]],
  ['UNSEEN', ['\\Seen', false]],
]);
const HEADER_KEYS = new Map([['BCC', 'bcc'], ['CC', 'cc'], ['FROM', 'from'], ['SUBJECT', 'subject'], ['TO', 'to']]);
const DATE_KEYS = new Map<string, ['internalDate' | 'sentDate', 'before' | 'on' | 'since']>([
  ['BEFORE', ['internalDate', 'before']],
  ['ON', ['internalDate', 'on']],
  ['SINCE', ['internalDate', 'since']],
  ['SENTBEFORE', ['sentDate', 'before']],
  ['SENTON', ['sentDate', 'on']],
  ['SENTSINCE', ['sentDate', 'since']],
]);
/** Nesting of NOT, OR and parentheses: deeper is refused before it reaches the parser's or SQL's stack. */
const MAX_DEPTH = 256;
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const SEQUENCE_SET = /^[\d*][\d*:,]*$/;

/** The position of `uid` in the ascending `uids` (sequence number - 1), or -1. */
export function positionOf(uids: readonly number[], uid: number): number {
  let low = 0;
  let high = uids.length - 1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    const value = uids[middle]!;
    if (value === uid) return middle;
    if (value < uid) low = middle + 1;
    else high = middle - 1;
  }
  return -1;
}

/** The first position whose UID is at least `uid` (uids.length when none is). */
function firstAtLeast(uids: readonly number[], uid: number): number {
  let low = 0;
  let high = uids.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (uids[middle]! < uid) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * Position intervals of the view as UID ranges for the store: each run of consecutive positions
 * is one range, so a set costs as many ranges as it has pieces, not as many UIDs.
 */
function rangesOf(uids: readonly number[], intervals: [number, number][]): UidRange[] {
  const sorted = intervals.filter(([a, b]) => a <= b).sort((x, y) => x[0] - y[0]);
  const merged: [number, number][] = [];
  for (const [a, b] of sorted) {
    const last = merged.at(-1);
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  return merged.map(([a, b]) => ({ from: uids[a]!, to: uids[b]! }));
}

/** A sequence set by message number; numbers past the last message match nothing. */
function sequenceKey(view: SearchView, value: string): SearchKey {
  const count = view.uids.length;
  const intervals = parseSequenceSet(value).map(({ from, to }): [number, number] => {
    const a = from ?? count;
    const b = to ?? count;
    return [Math.min(a, b) - 1, Math.min(Math.max(a, b), count) - 1];
  });
  return { uids: rangesOf(view.uids, intervals.filter(([a]) => a >= 0)) };
}

/** A UID set; `*` is the highest UID the session knows (RFC 3501 §9), in either order. */
function uidKey(view: SearchView, value: string): SearchKey {
  if (value === SAVED) return uidsKey(view, view.saved);
  const highest = view.uids.at(-1) ?? 0;
  const intervals = parseSequenceSet(value).map(({ from, to }): [number, number] => {
    const a = from ?? highest;
    const b = to ?? highest;
    return [firstAtLeast(view.uids, Math.min(a, b)), firstAtLeast(view.uids, Math.max(a, b) + 1) - 1];
  });
  return { uids: rangesOf(view.uids, intervals) };
}

/** Messages of the view among `uids` (\Recent, or `$` of SEARCHRES). */
function uidsKey(view: SearchView, uids: Iterable<number>): SearchKey {
  const positions = [...uids].map((uid) => positionOf(view.uids, uid)).filter((p) => p !== -1);
  return { uids: rangesOf(view.uids, positions.map((p): [number, number] => [p, p])) };
}

/** A search date (RFC 3501 date: `1-Feb-1994`, quoted or not) as YYYY-MM-DD. */
export function parseSearchDate(token: Token | undefined): string {
  const value = astringText(token, 'a date such as 1-Feb-1994');
  const match = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(value);
  const month = match ? MONTHS.indexOf(match[2]!.toLowerCase()) : -1;
  if (!match || month === -1) throw new ImapSyntaxError(`'${value.slice(0, 40)}' is not a date such as 1-Feb-1994`);
  const day = Number(match[1]);
  const year = Number(match[3]);
  const date = new Date(Date.UTC(year, month, day));
  if (day === 0 || date.getUTCDate() !== day || date.getUTCMonth() !== month) {
    throw new ImapSyntaxError(`'${value}' is not a day of the calendar`);
  }
  return `${match[3]}-${String(month + 1).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/** An astring argument as text (UTF-8 and US-ASCII alike: ASCII is a subset). */
function astringText(token: Token | undefined, what: string): string {
  if (token?.kind === 'atom') return token.value;
  if (token?.kind === 'string') return token.value.toString('utf8');
  throw new ImapSyntaxError(`Expected ${what}`);
}

/** KEYWORD/UNKEYWORD: a flag the store cannot hold is on no message. */
function keywordKey(flag: string, set: boolean): SearchKey {
  try {
    const [normalized] = normalizeFlags([flag]);
    return { flag: normalized!, set };
  } catch {
    return set ? NEVER : { all: true };
  }
}

class KeyReader {
  modseq = false;
  modseqFloor = Number.POSITIVE_INFINITY;
  /** Depth inside NOT or OR, where a MODSEQ key no longer bounds what matches. */
  private loose = 0;
  private depth = 0;

  constructor(private readonly view: SearchView) {}

  /** Keys until the end of `tokens`, ANDed (RFC 3501: juxtaposed keys must all match). */
  all(tokens: Token[]): SearchKey {
    if (tokens.length === 0) throw new ImapSyntaxError('Expected a search key');
    const keys: SearchKey[] = [];
    const cursor = { tokens, at: 0 };
    while (cursor.at < tokens.length) keys.push(this.one(cursor));
    return keys.length === 1 ? keys[0]! : { and: keys };
  }

  private one(cursor: { tokens: Token[]; at: number }): SearchKey {
    if (this.depth >= MAX_DEPTH) throw new ImapSyntaxError('Search keys nested too deeply');
    this.depth += 1;
    try {
      return this.key(cursor);
    } finally {
      this.depth -= 1;
    }
  }

  private key(cursor: { tokens: Token[]; at: number }): SearchKey {
    const next = () => cursor.tokens[cursor.at++];
    const token = next();
    if (token === undefined) throw new ImapSyntaxError('Expected a search key');
    if (token.kind === 'list') return this.all(token.items);
    if (token.kind !== 'atom') throw new ImapSyntaxError('Expected a search key, not a string');
    const name = token.value.toUpperCase();
    if (SEQUENCE_SET.test(name)) return sequenceKey(this.view, name);
    if (name === SAVED) return uidsKey(this.view, this.view.saved);
    const flag = FLAG_KEYS.get(name);
    if (flag) return { flag: flag[0], set: flag[1] };
    const header = HEADER_KEYS.get(name);
    if (header) return { header, contains: astringText(next(), `a string after ${name}`) };
    const date = DATE_KEYS.get(name);
    if (date) {
      const day = parseSearchDate(next());
      return date[0] === 'internalDate' ? { internalDate: date[1], day } : { sentDate: date[1], day };
    }
    switch (name) {
      case 'ALL':
        return { all: true };
      case 'RECENT':
        return uidsKey(this.view, this.view.recent);
      case 'NEW':
        return { and: [uidsKey(this.view, this.view.recent), { flag: '\\Seen', set: false }] };
      case 'OLD':
        return { not: uidsKey(this.view, this.view.recent) };
      case 'KEYWORD':
      case 'UNKEYWORD':
        return keywordKey(atom(next(), `a keyword after ${name}`), name === 'KEYWORD');
      case 'HEADER': {
        const field = astringText(next(), 'a header field name');
        if (!/^[\x21-\x39\x3b-\x7e]+$/.test(field)) throw new ImapSyntaxError(`'${field.slice(0, 40)}' is not a header field name`);
        return { header: field, contains: astringText(next(), 'a string to look for') };
      }
      case 'BODY':
        return { body: astringText(next(), 'a string after BODY') };
      case 'TEXT':
        return { text: astringText(next(), 'a string after TEXT') };
      case 'LARGER':
        return { larger: number(next(), 'a size after LARGER') };
      case 'SMALLER':
        return { smaller: number(next(), 'a size after SMALLER') };
      case 'UID':
        return uidKey(this.view, atom(next(), 'a UID set'));
      case 'NOT':
        return { not: this.loosely(() => this.one(cursor)) };
      case 'OR':
        return this.loosely(() => ({ or: [this.one(cursor), this.one(cursor)] }));
      case 'MODSEQ':
        return this.modseqKey(cursor);
      default:
        throw new ImapSyntaxError(`Unknown search key ${token.value.slice(0, 40)}`);
    }
  }

  private loosely(read: () => SearchKey): SearchKey {
    this.loose += 1;
    try {
      return read();
    } finally {
      this.loose -= 1;
    }
  }

  /** MODSEQ [entry-name entry-type-req] mod-sequence-valzer (RFC 7162 §3.1.5); flags share one MODSEQ here. */
  private modseqKey(cursor: { tokens: Token[]; at: number }): SearchKey {
    let token = cursor.tokens[cursor.at++];
    if (token?.kind === 'string') {
      const type = cursor.tokens[cursor.at++];
      if (type?.kind !== 'atom' || !/^(priv|shared|all)$/i.test(type.value)) {
        throw new ImapSyntaxError('Expected priv, shared or all after the MODSEQ entry name');
      }
      token = cursor.tokens[cursor.at++];
    }
    const value = number(token, 'a mod-sequence after MODSEQ');
    this.modseq = true;
    // Under NOT or in an OR a match may lie below the value; only a plain MODSEQ bounds it.
    this.modseqFloor = this.loose > 0 ? 0 : Math.min(this.modseqFloor, value);
    return { modseqAtLeast: value };
  }
}

/** The charset of SEARCH, SORT and THREAD: one of SEARCH_CHARSETS, or BadCharsetError (NO [BADCHARSET]). */
export function checkCharset(token: Token | undefined): void {
  const charset = astringText(token, 'a charset name').toUpperCase();
  if (!(SEARCH_CHARSETS as readonly string[]).includes(charset)) throw new BadCharsetError(charset);
}

/**
 * Search keys (RFC 3501 §6.4.4, RFC 7162 MODSEQ) as a store search key: what SEARCH takes after
 * its optional CHARSET, and SORT and THREAD after theirs. Sequence numbers, `*` and RECENT come
 * from the session's view and reach the store as UID ranges.
 */
export function parseSearchKeys(keys: Token[], view: SearchView): ParsedSearch {
  const reader = new KeyReader(view);
  const key = reader.all(keys);
  const floor = reader.modseqFloor === Number.POSITIVE_INFINITY ? 0 : reader.modseqFloor;
  return { key, modseq: reader.modseq, modseqFloor: floor };
}

/** SEARCH arguments: [CHARSET name] keys. */
export function parseSearch(args: Token[], view: SearchView): ParsedSearch {
  const first = args[0];
  if (first?.kind !== 'atom' || first.value.toUpperCase() !== 'CHARSET') return parseSearchKeys(args, view);
  checkCharset(args[1]);
  return parseSearchKeys(args.slice(2), view);
}

/**
 * The messages the view holds: mail that arrived since the client last heard has no sequence
 * number yet, so SORT and THREAD leave it out (UIDs are given in commit order: none is missing below).
 */
export function viewKey(view: SearchView): SearchKey {
  const first = view.uids[0];
  return first === undefined ? { uids: [] } : { uids: [{ from: first, to: view.uids.at(-1)! }] };
}
