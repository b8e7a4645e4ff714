import { InvalidError } from '../../core/errors.js';
import { DELIMITER, type FolderRow, type FolderTree, INBOX } from '../../core/mailstore/folders.js';
import { atom, listItems, text } from '../arguments.js';
import { AUTHENTICATED, type ImapCommand } from '../command.js';
import { folderName, renderFolderName } from '../folder-names.js';
import { ImapSyntaxError, type Token } from '../parser/tokens.js';
import type { ImapSession } from '../session.js';
import { needsCounts, sendStatus, statusItems } from './status.js';

/** One line of a LIST or LSUB answer. */
export interface Listed {
  name: string;
  attributes: string[];
  /** CHILDINFO (RFC 5258 §3.5): the selection options a name below this one meets. */
  childInfo?: string[];
  /** The folder, when it exists and meets the selection: what RETURN (STATUS) reports on. */
  folder?: FolderRow;
}

/** LIST-EXTENDED's selection and return options (RFC 5258 §3, RFC 6154 SPECIAL-USE, RFC 5819 STATUS). */
export interface ListOptions {
  /** Selection: only the names subscribed to, whether their folder exists or not. */
  subscribed: boolean;
  /** Selection: only the folders with a special use. */
  specialUse: boolean;
  /** Also the levels above names that meet the selection, with CHILDINFO. */
  recursiveMatch: boolean;
  /** \Subscribed on the names subscribed to (RETURN (SUBSCRIBED), implied by the selection). */
  returnSubscribed: boolean;
  /** RETURN (STATUS (…)): a STATUS answer after each folder listed. */
  status: string[] | null;
}

/** A plain LIST (RFC 3501 §6.3.8), as LIST () with no RETURN options. */
const PLAIN: ListOptions = { subscribed: false, specialUse: false, recursiveMatch: false, returnSubscribed: false, status: null };

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
export function ancestors(name: string): string[] {
  const levels = name.split(DELIMITER);
  return levels.slice(1).map((_, i) => levels.slice(0, i + 1).join(DELIMITER));
}

/**
 * LIST: the names that match and meet the selection (RFC 5258 §3.3), with their CHILDREN
 * (RFC 3348) and SPECIAL-USE (RFC 6154) attributes whatever the RETURN options (both RFCs allow
 * it), \NonExistent and \Noselect where no folder has the name. Without a selection, that is every
 * folder and the levels above folders (`a` when only `a/b` exists). With RECURSIVEMATCH, a
 * matching name that does not meet the selection is listed too when a name below it does and is
 * not matched itself; CHILDINFO then says so, as it does for any listed name with such a name
 * below. Sorted by name, INBOX first.
 */
export function listFolders(tree: FolderTree, matches: (name: string) => boolean, options: ListOptions): Listed[] {
  const existing = new Map(tree.folders.map((row) => [row.name, row]));
  const subscribed = new Set(tree.subscribed);
  const parents = new Set([...existing.keys()].flatMap(ancestors));
  const criteria = [...(options.subscribed ? ['SUBSCRIBED'] : []), ...(options.specialUse ? ['SPECIAL-USE'] : [])];
  const meets = (name: string) =>
    (!options.subscribed || subscribed.has(name)) && (!options.specialUse || Boolean(existing.get(name)?.specialUse));
  const candidates = new Set(criteria.length === 0 ? [...existing.keys(), ...parents] : []);
  // The levels with a name below that meets the selection, and those with one the patterns miss.
  const meetBelow = new Set<string>();
  const missedBelow = new Set<string>();
  if (criteria.length > 0) {
    for (const name of options.subscribed ? subscribed : existing.keys()) {
      if (!meets(name)) continue;
      candidates.add(name);
      if (!options.recursiveMatch) continue;
      for (const level of ancestors(name)) {
        candidates.add(level);
        meetBelow.add(level);
        if (!matches(name)) missedBelow.add(level);
      }
    }
  }
  const found: Listed[] = [];
  for (const name of [...candidates].filter(matches).sort(byName)) {
    const selected = meets(name);
    if (!selected && !missedBelow.has(name)) continue;
    const row = existing.get(name);
    const attributes = row ? [] : ['\\NonExistent', '\\Noselect'];
    attributes.push(parents.has(name) ? '\\HasChildren' : '\\HasNoChildren');
    if (row?.specialUse) attributes.push(row.specialUse);
    if (options.returnSubscribed && subscribed.has(name)) attributes.push('\\Subscribed');
    found.push({
      name,
      attributes,
      ...(meetBelow.has(name) ? { childInfo: criteria } : {}),
      ...(selected && row ? { folder: row } : {}),
    });
  }
  return found;
}

export function byName(a: string, b: string): number {
  if (a === INBOX) return -1;
  if (b === INBOX) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

const SELECTION_OPTIONS = new Set(['SUBSCRIBED', 'REMOTE', 'RECURSIVEMATCH', 'SPECIAL-USE']);

/** LIST's selection options; REMOTE asks for other servers' folders as well, and there are none. */
function selectionOptions(items: Token[]): ListOptions {
  const options = { ...PLAIN };
  for (const item of items) {
    const name = atom(item, 'a LIST selection option').toUpperCase();
    if (!SELECTION_OPTIONS.has(name)) throw new ImapSyntaxError(`Unknown LIST selection option ${name.slice(0, 40)}`);
    if (name === 'SUBSCRIBED') options.subscribed = options.returnSubscribed = true;
    else if (name === 'SPECIAL-USE') options.specialUse = true;
    else if (name === 'RECURSIVEMATCH') options.recursiveMatch = true;
  }
  if (options.recursiveMatch && !options.subscribed && !options.specialUse) {
    throw new ImapSyntaxError('RECURSIVEMATCH needs SUBSCRIBED or SPECIAL-USE beside it (RFC 5258 §3.1)');
  }
  return options;
}

/** RETURN (…): CHILDREN and SPECIAL-USE attributes come anyway; SUBSCRIBED and STATUS (…) add to them. */
function returnOptions(word: Token, token: Token | undefined, options: ListOptions): void {
  if (atom(word, 'RETURN').toUpperCase() !== 'RETURN') throw new ImapSyntaxError('Expected RETURN after the patterns');
  const items = listItems(token, 'RETURN options in parentheses');
  for (let i = 0; i < items.length; i++) {
    const name = atom(items[i], 'a LIST return option').toUpperCase();
    if (name === 'SUBSCRIBED') options.returnSubscribed = true;
    else if (name === 'STATUS') options.status = [...new Set([...(options.status ?? []), ...statusItems(items[++i])])];
    else if (name !== 'CHILDREN' && name !== 'SPECIAL-USE') throw new ImapSyntaxError(`Unknown LIST return option ${name.slice(0, 40)}`);
  }
}

/**
 * A pattern as a matcher. An extended LIST ignores a pattern it does not take (RFC 5258 §3): one
 * not in modified UTF-7, too long, or empty; a plain LIST refuses the first two.
 */
function matcherFor(session: ImapSession, reference: string, token: Token, extended: boolean): ((name: string) => boolean) | null {
  let pattern: string;
  try {
    pattern = folderName(session, token, 'a folder name pattern');
  } catch (error) {
    if (extended && error instanceof InvalidError) return null;
    throw error;
  }
  if (pattern === '') return null;
  try {
    return patternMatcher(reference, pattern);
  } catch (error) {
    if (extended && error instanceof ImapSyntaxError) return null;
    throw error;
  }
}

/**
 * LIST (RFC 3501 §6.3.8) and its extended form (RFC 5258): `LIST [(selection)] reference
 * (pattern | (pattern …)) [RETURN (…)]`, with RETURN (STATUS (…)) (RFC 5819) counted for all the
 * folders listed at once. A plain LIST with an empty pattern asks for the delimiter instead.
 */
export const list: ImapCommand = {
  name: 'LIST',
  states: AUTHENTICATED,
  async run(session, args) {
    const selection = args[0]?.kind === 'list' ? args[0] : null;
    const rest = selection ? args.slice(1) : args;
    const [referenceToken, patternToken, returnWord, returnToken] = rest;
    if (patternToken === undefined || rest.length > 4) throw new ImapSyntaxError('Expected a reference, a pattern and RETURN options if any');
    const options = selection ? selectionOptions(selection.items) : { ...PLAIN };
    if (returnWord) returnOptions(returnWord, returnToken, options);
    const extended = selection !== null || patternToken.kind === 'list' || returnWord !== undefined;
    const reference = folderName(session, referenceToken, 'a reference name');
    const patterns = patternToken.kind === 'list' ? patternToken.items : [patternToken];
    if (!extended && text(patternToken, 'a folder name pattern') === '') {
      // The hierarchy delimiter and the root name (RFC 3501 §6.3.8); there is one root, "".
      session.untagged(`LIST (\\Noselect) "${DELIMITER}" ""`);
      return 'LIST completed';
    }
    const matchers = patterns.flatMap((token) => matcherFor(session, reference, token, extended) ?? []);
    if (matchers.length === 0) return 'LIST completed';
    const { accountId } = session.account!;
    const { folders } = session.services.mail;
    const found = listFolders(await folders.tree(accountId), (name) => matchers.some((matches) => matches(name)), options);
    const items = options.status;
    const listed = found.flatMap(({ folder }) => (folder ? [folder.id] : []));
    const counts = items && needsCounts(items) ? await folders.counts(accountId, listed) : null;
    for (const { name, attributes, childInfo, folder } of found) {
      const data = childInfo ? ` ("CHILDINFO" (${childInfo.map((option) => `"${option}"`).join(' ')}))` : '';
      session.untagged(`LIST (${attributes.join(' ')}) "${DELIMITER}" ${renderFolderName(session, name)}${data}`);
      if (items && folder) sendStatus(session, folder, counts?.get(folder.id), items);
    }
    return 'LIST completed';
  },
};
