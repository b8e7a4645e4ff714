import { DELIMITER, type FolderRow, INBOX } from '../../core/mailstore/folders.js';
import { expectCount, text } from '../arguments.js';
import { AUTHENTICATED, type ImapCommand } from '../command.js';
import { decodeFolderName, encodeFolderName } from '../mutf7.js';
import { ImapSyntaxError, type Token } from '../parser/tokens.js';
import type { ImapSession } from '../session.js';
import { nstring } from '../writer.js';

/** One line of a LIST or LSUB answer. */
export interface Listed {
  name: string;
  attributes: string[];
}

/** Longer patterns are refused: a folder name has at most 1,000 characters. */
const MAX_PATTERN = 1100;

/**
 * The names a LIST reference and pattern match (RFC 3501 §6.3.8): `*` matches anything, `%`
 * anything but the delimiter. INBOX is INBOX in any case, as a folder name is (§5.1).
 */
export function patternMatcher(reference: string, pattern: string): (name: string) => boolean {
  const full = (reference + pattern).replace(/^inbox(?=\/|$)/i, INBOX).replace(/[*%]*\*[*%]*/g, '*').replace(/%+/g, '%');
  if (full.length > MAX_PATTERN) throw new ImapSyntaxError('The folder name pattern is too long');
  const exact = [...full];
  const upper = [...full.toUpperCase()];
  return (name) => globMatch(exact, [...name]) || (name === INBOX && globMatch(upper, [...name]));
}

/**
 * Wildcard matching by walking the pattern positions reachable after each character: time in
 * pattern × name length whatever the pattern, where a regular expression could backtrack for ages.
 */
function globMatch(pattern: readonly string[], name: readonly string[]): boolean {
  let reachable = closure(pattern, new Set([0]));
  for (const c of name) {
    const next = new Set<number>();
    for (const i of reachable) {
      const p = pattern[i];
      if (p === '*' || (p === '%' && c !== DELIMITER)) next.add(i);
      else if (p === c) next.add(i + 1);
    }
    if (next.size === 0) return false;
    reachable = closure(pattern, next);
  }
  return reachable.has(pattern.length);
}

/** A wildcard may match nothing: the position after it is reachable too. */
function closure(pattern: readonly string[], positions: Set<number>): Set<number> {
  for (const i of [...positions].sort((a, b) => a - b)) {
    for (let j = i; pattern[j] === '*' || pattern[j] === '%'; j++) positions.add(j + 1);
  }
  return positions;
}

/** Every level above a name: "a/b/c" -> "a", "a/b". */
function ancestors(name: string): string[] {
  const levels = name.split(DELIMITER);
  return levels.slice(1).map((_, i) => levels.slice(0, i + 1).join(DELIMITER));
}

/**
 * LIST: folders with their CHILDREN (RFC 3348) and SPECIAL-USE (RFC 6154) attributes, plus the
 * levels above folders that do not exist themselves (`a` when only `a/b` does), which are
 * \NonExistent and \Noselect. Sorted by name, INBOX first.
 */
export function listFolders(rows: readonly FolderRow[], matches: (name: string) => boolean): Listed[] {
  const existing = new Map(rows.map((row) => [row.name, row]));
  const names = new Set(existing.keys());
  for (const name of existing.keys()) for (const level of ancestors(name)) names.add(level);
  const parents = new Set([...names].flatMap(ancestors));
  return [...names]
    .filter(matches)
    .sort(byName)
    .map((name) => {
      const row = existing.get(name);
      const attributes = row ? [] : ['\\NonExistent', '\\Noselect'];
      attributes.push(parents.has(name) ? '\\HasChildren' : '\\HasNoChildren');
      if (row?.specialUse) attributes.push(row.specialUse);
      return { name, attributes };
    });
}

/**
 * LSUB: the subscribed folders. A level above subscribed folders that is not subscribed itself
 * is listed, \Noselect, only when the pattern matches it and none of those below it (RFC 3501
 * §6.3.9: `%` must give "foo" when only "foo/bar" is subscribed).
 */
export function listSubscribed(rows: readonly FolderRow[], matches: (name: string) => boolean): Listed[] {
  const subscribed = rows.filter((row) => row.subscribed).map((row) => row.name);
  const found = new Map<string, Listed>();
  for (const name of subscribed) {
    if (matches(name)) found.set(name, { name, attributes: [] });
  }
  for (const name of subscribed) {
    for (const level of ancestors(name)) {
      if (found.has(level) || !matches(level)) continue;
      const below = subscribed.filter((other) => other.startsWith(`${level}${DELIMITER}`));
      if (!below.some(matches)) found.set(level, { name: level, attributes: ['\\Noselect'] });
    }
  }
  return [...found.values()].sort((a, b) => byName(a.name, b.name));
}

function byName(a: string, b: string): number {
  if (a === INBOX) return -1;
  if (b === INBOX) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** LIST and LSUB: the same reference and pattern rules. */
export function listing(session: ImapSession, args: Token[], kind: 'LIST' | 'LSUB'): Promise<string> | string {
  expectCount(args, 2);
  const reference = decodeFolderName(text(args[0], 'a reference name'));
  const pattern = decodeFolderName(text(args[1], 'a folder name pattern'));
  if (pattern === '') {
    // The hierarchy delimiter and the root name (RFC 3501 §6.3.8); there is one root, "".
    if (kind === 'LIST') session.untagged(`LIST (\\Noselect) "${DELIMITER}" ""`);
    return `${kind} completed`;
  }
  return (async () => {
    const rows = await session.services.mail.folders.list(session.account!.accountId);
    const matches = patternMatcher(reference, pattern);
    const found = kind === 'LIST' ? listFolders(rows, matches) : listSubscribed(rows, matches);
    for (const { name, attributes } of found) {
      session.untagged(`${kind} (${attributes.join(' ')}) "${DELIMITER}" ${nstring(encodeFolderName(name))}`);
    }
    return `${kind} completed`;
  })();
}

export const list: ImapCommand = {
  name: 'LIST',
  states: AUTHENTICATED,
  run: (session, args) => listing(session, args, 'LIST'),
};
