import { type ImapCommand, SELECTED } from '../command.js';
import { BadCharsetError, parseSearch, positionOf, SEARCH_CHARSETS } from '../search-keys.js';

/**
 * SEARCH and UID SEARCH (RFC 3501 §6.4.4, RFC 7162 §3.1.5 MODSEQ). The store matches; the answer
 * names only messages this session knows, by sequence number or UID. SEARCH by sequence number
 * leaves expunges for later (§7.4.1), since they would renumber what it just answered.
 */
export const search: ImapCommand = {
  name: 'SEARCH',
  states: SELECTED,
  uidVariant: true,
  expungesAfter: false,
  async run(session, args, { tag, uid }) {
    const selected = session.selected!;
    let parsed;
    try {
      parsed = parseSearch(args, selected);
    } catch (error) {
      if (!(error instanceof BadCharsetError)) throw error;
      session.write(`${tag} NO [BADCHARSET (${SEARCH_CHARSETS.join(' ')})] ${error.message}\r\n`);
      return null;
    }
    const { accountId } = session.account!;
    const found = await session.services.mail.search(accountId, selected.id, parsed.key);
    const matches: number[] = [];
    const known: number[] = [];
    for (const messageUid of found) {
      const position = positionOf(selected.uids, messageUid);
      if (position === -1) continue;
      known.push(messageUid);
      matches.push(uid ? messageUid : position + 1);
    }
    let modseq = '';
    if (parsed.modseq) {
      // Using MODSEQ turns CONDSTORE on for the session (RFC 7162 §3.1).
      session.enabled.add('CONDSTORE');
      if (known.length > 0) {
        const { changed } = await session.services.mail.changesSince(accountId, selected.id, parsed.modseqFloor - 1);
        const wanted = new Set(known);
        const highest = changed.reduce((max, m) => (wanted.has(m.uid) ? Math.max(max, m.modseq) : max), 0);
        modseq = ` (MODSEQ ${highest})`;
      }
    }
    session.untagged(`SEARCH${matches.map((n) => ` ${n}`).join('')}${modseq}`);
    return `${uid ? 'UID SEARCH' : 'SEARCH'} completed`;
  },
};
