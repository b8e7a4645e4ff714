import type { SortCriterion, SortKey } from '../../core/mailstore/sort.js';
import { atom, listItems } from '../arguments.js';
import { type ImapCommand, SELECTED } from '../command.js';
import { ImapSyntaxError, type Token } from '../parser/tokens.js';
import { checkCharset, parseSearchKeys, positionOf, viewKey } from '../search-keys.js';

const SORT_KEYS = new Set(['ARRIVAL', 'CC', 'DATE', 'FROM', 'SIZE', 'SUBJECT', 'TO']);

/** sort-criteria (RFC 5256 §5): "(" ["REVERSE" SP] sort-key *(SP ["REVERSE" SP] sort-key) ")". */
function sortCriteria(token: Token | undefined): SortCriterion[] {
  const items = listItems(token, 'sort criteria in parentheses, such as (REVERSE DATE)');
  if (items.length === 0) throw new ImapSyntaxError('Name at least one sort criterion');
  const criteria: SortCriterion[] = [];
  for (let i = 0; i < items.length; i++) {
    let name = atom(items[i], 'a sort key').toUpperCase();
    const reverse = name === 'REVERSE';
    if (reverse) name = atom(items[++i], 'a sort key after REVERSE').toUpperCase();
    if (!SORT_KEYS.has(name)) throw new ImapSyntaxError(`Unknown sort key ${name.slice(0, 40)}`);
    criteria.push({ key: name.toLowerCase() as SortKey, reverse });
  }
  return criteria;
}

/**
 * SORT and UID SORT (RFC 5256): sort criteria, a charset and SEARCH keys. The store sorts on
 * columns filled at delivery; the answer names only messages this session knows, and carries
 * (MODSEQ n) when a MODSEQ key was used (RFC 7162 §3.1.5). By sequence number it leaves
 * expunges for later (RFC 3501 §7.4.1), as SEARCH does.
 */
export const sort: ImapCommand = {
  name: 'SORT',
  states: SELECTED,
  uidVariant: true,
  expungesAfter: false,
  async run(session, args, { uid }) {
    const selected = session.selected!;
    const criteria = sortCriteria(args[0]);
    checkCharset(args[1]);
    const parsed = parseSearchKeys(args.slice(2), selected);
    const sorted = await session.services.mail.sort(session.account!.accountId, selected.id, criteria, {
      and: [parsed.key, viewKey(selected)],
    });
    let answer = 'SORT';
    for (const messageUid of sorted.uids) {
      const position = positionOf(selected.uids, messageUid);
      if (position !== -1) answer += ` ${uid ? messageUid : position + 1}`;
    }
    if (parsed.modseq) {
      // Using MODSEQ turns CONDSTORE on for the session (RFC 7162 §3.1).
      session.enabled.add('CONDSTORE');
      if (sorted.uids.length > 0) answer += ` (MODSEQ ${sorted.highestModseq})`;
    }
    session.untagged(answer);
    return `${uid ? 'UID SORT' : 'SORT'} completed`;
  },
};
