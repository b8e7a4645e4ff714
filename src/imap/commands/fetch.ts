import { atom, expectCount } from '../arguments.js';
import { type ImapCommand, SELECTED } from '../command.js';
import { parseFetchRequest } from '../fetch/attributes.js';
import { ImapSyntaxError } from '../parser/tokens.js';
import { streamFetch } from '../fetch/stream.js';
import { resolveSet } from '../sequence.js';

/**
 * FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8; CHANGEDSINCE and MODSEQ from RFC 7162).
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
    const { expungeIssued } = await streamFetch(session, uids, request);
    return expungeIssued ? '[EXPUNGEISSUED] Some messages were expunged meanwhile; FETCH completed' : 'FETCH completed';
  },
};
