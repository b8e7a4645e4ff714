import { atom, expectCount } from '../arguments.js';
import { type ImapCommand, SELECTED } from '../command.js';
import { parseFetchRequest } from '../fetch/attributes.js';
import { ImapSyntaxError } from '../parser/tokens.js';
import { streamFetch } from '../fetch/stream.js';
import { positionOf } from '../search-keys.js';
import { compactSet, inSet, parseSequenceSet, resolveSet, SAVED } from '../sequence.js';
import type { ImapSession } from '../session.js';

/** `*` in the set: the highest UID there ever was, which may be expunged by now. */
const MAX_UID = 4294967295;

/** UID FETCH … (CHANGEDSINCE m VANISHED): the UIDs of `set` expunged since m (RFC 7162 §3.2.6). */
async function tellVanished(session: ImapSession, set: string, modseq: number): Promise<void> {
  if (!session.enabled.has('QRESYNC')) throw new ImapSyntaxError('VANISHED needs ENABLE QRESYNC first');
  const selected = session.selected!;
  const ranges = set === SAVED ? selected.saved.map((uid) => ({ from: uid, to: uid })) : parseSequenceSet(set);
  const expunged = await session.services.mail.expungedSince(session.account!.accountId, selected.id, modseq);
  // Still in the view: expunged meanwhile, told by the sync after the command.
  const vanished = expunged.filter((uid) => inSet(ranges, uid, MAX_UID) && positionOf(selected.uids, uid) === -1);
  if (vanished.length > 0) session.untagged(`VANISHED (EARLIER) ${compactSet(vanished)}`);
}

/**
 * FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8; CHANGEDSINCE, MODSEQ and VANISHED from RFC 7162).
 * Everything is answered from the index stored at delivery and byte-range reads; see fetch/.
 * A message another session expunged meanwhile is left out and the command still succeeds,
 * with EXPUNGEISSUED (RFC 5530) so the client knows to NOOP; a part that does not exist is
 * answered with an empty string, as Dovecot does.
 */
export const fetch: ImapCommand = {
  name: 'FETCH',
  states: SELECTED,
  uidVariant: true,
  expungesAfter: false,
  async run(session, args, { uid }) {
    expectCount(args, 2, 3);
    const set = atom(args[0], 'a sequence set');
    const request = parseFetchRequest(args.slice(1), uid);
    // `*` names no message in an empty folder (resolveSet would answer an undefined UID).
    if (!uid && session.selected!.uids.length === 0) throw new ImapSyntaxError('No such message');
    const uids = resolveSet(session.selected!, set, uid);
    if (request.enablesCondstore || request.changedSince !== null) session.enabled.add('CONDSTORE');
    if (request.vanished) await tellVanished(session, set, request.changedSince!);
    const { expungeIssued } = await streamFetch(session, uids, request);
    return expungeIssued ? '[EXPUNGEISSUED] Some messages were expunged meanwhile; FETCH completed' : 'FETCH completed';
  },
};
