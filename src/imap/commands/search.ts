import { type ImapCommand, SELECTED } from '../command.js';
import { UTF8_ACCEPT } from '../folder-names.js';
import { ImapSyntaxError, type Token } from '../parser/tokens.js';
import { parseSearch, positionOf } from '../search-keys.js';
import { compactSet } from '../sequence.js';
import type { ImapSession } from '../session.js';

type ReturnOption = 'MIN' | 'MAX' | 'COUNT' | 'ALL' | 'SAVE';
const RETURN_OPTIONS = new Set<string>(['MIN', 'MAX', 'COUNT', 'ALL', 'SAVE']);

/** RETURN (…) before the keys (RFC 4731 §3, SAVE from RFC 5182): null for a plain SEARCH; RETURN () means ALL. */
function returnOptions(args: Token[]): { options: Set<ReturnOption> | null; keys: Token[] } {
  const [first, list] = args;
  if (first?.kind !== 'atom' || first.value.toUpperCase() !== 'RETURN') return { options: null, keys: args };
  if (list?.kind !== 'list') throw new ImapSyntaxError('Expected RETURN options in parentheses');
  const options = new Set<ReturnOption>();
  for (const item of list.items) {
    const name = item.kind === 'atom' ? item.value.toUpperCase() : '';
    if (!RETURN_OPTIONS.has(name)) throw new ImapSyntaxError('RETURN takes MIN, MAX, COUNT, ALL and SAVE');
    options.add(name as ReturnOption);
  }
  if (options.size === 0) options.add('ALL');
  return { options, keys: args.slice(2) };
}

/** `* ESEARCH (TAG "t") [UID] MIN n MAX n COUNT n ALL set`: an empty result leaves out all but COUNT. */
function esearch(tag: string, uid: boolean, options: Set<ReturnOption>, matches: number[], modseq: number | null): string {
  const parts = [`ESEARCH (TAG "${tag}")`];
  if (uid) parts.push('UID');
  if (matches.length > 0) {
    if (options.has('MIN')) parts.push(`MIN ${matches[0]}`);
    if (options.has('MAX')) parts.push(`MAX ${matches.at(-1)}`);
  }
  if (options.has('COUNT')) parts.push(`COUNT ${matches.length}`);
  if (matches.length > 0 && options.has('ALL')) parts.push(`ALL ${compactSet(matches)}`);
  if (modseq !== null) parts.push(`MODSEQ ${modseq}`);
  return parts.join(' ');
}

/** The highest MODSEQ among `uids`, which all have one at least `floor`. */
async function highestModseq(session: ImapSession, uids: number[], floor: number): Promise<number> {
  const selected = session.selected!;
  const { changed } = await session.services.mail.changesSince(session.account!.accountId, selected.id, floor - 1);
  const wanted = new Set(uids);
  return changed.reduce((max, m) => (wanted.has(m.uid) ? Math.max(max, m.modseq) : max), 0);
}

/**
 * SEARCH and UID SEARCH (RFC 3501 §6.4.4, RFC 7162 §3.1.5 MODSEQ, RFC 4731 ESEARCH, RFC 5182 SEARCHRES). The store
 * matches; the answer names only messages this session knows, by sequence number or UID. SEARCH
 * by sequence number leaves expunges for later (§7.4.1), since they would renumber what it answered.
 */
export const search: ImapCommand = {
  name: 'SEARCH',
  states: SELECTED,
  uidVariant: true,
  expungesAfter: false,
  async run(session, args, { tag, uid }) {
    const selected = session.selected!;
    const { options, keys } = returnOptions(args);
    // A SEARCH that saves and fails leaves `$` empty (RFC 5182 §2.1).
    if (options?.has('SAVE')) selected.saved = [];
    // After ENABLE UTF8=ACCEPT every string is UTF-8: a CHARSET would contradict it (RFC 6855 §3).
    if (session.enabled.has(UTF8_ACCEPT) && keys[0]?.kind === 'atom' && keys[0].value.toUpperCase() === 'CHARSET') {
      throw new ImapSyntaxError('SEARCH takes no CHARSET after ENABLE UTF8=ACCEPT');
    }
    const parsed = parseSearch(keys, selected);
    const found = await session.services.mail.search(session.account!.accountId, selected.id, parsed.key);
    const matches: number[] = [];
    const known: number[] = [];
    for (const messageUid of found) {
      const position = positionOf(selected.uids, messageUid);
      if (position === -1) continue;
      known.push(messageUid);
      matches.push(uid ? messageUid : position + 1);
    }
    // With only MIN and MAX asked for, MODSEQ (RFC 4731 §3.2) and SAVE (RFC 5182 §2.4) are about those alone.
    const onlyEnds = options !== null && (options.has('MIN') || options.has('MAX')) && !options.has('ALL') && !options.has('COUNT');
    const told = onlyEnds ? known.filter((_, i) => (options.has('MIN') && i === 0) || (options.has('MAX') && i === known.length - 1)) : known;
    if (options?.has('SAVE')) selected.saved = told;
    let modseq: number | null = null;
    if (parsed.modseq) {
      // Using MODSEQ turns CONDSTORE on for the session (RFC 7162 §3.1).
      session.enabled.add('CONDSTORE');
      if (told.length > 0) modseq = await highestModseq(session, told, parsed.modseqFloor);
    }
    // SAVE alone answers nothing but the tag (RFC 5182 §2.1).
    if (options) {
      if (options.size > 1 || !options.has('SAVE')) session.untagged(esearch(tag, uid, options, matches, modseq));
    } else session.untagged(`SEARCH${matches.map((n) => ` ${n}`).join('')}${modseq === null ? '' : ` (MODSEQ ${modseq})`}`);
    return `${uid ? 'UID SEARCH' : 'SEARCH'} completed`;
  },
};
