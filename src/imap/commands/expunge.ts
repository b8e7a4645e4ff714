import { atom, expectCount } from '../arguments.js';
import { type ImapCommand, SELECTED } from '../command.js';
import { announceExpunged } from '../expunges.js';
import { resolveSet } from '../sequence.js';
import type { ImapSession } from '../session.js';

/** NO for a change to a folder opened with EXAMINE; true when answered so. */
export function refuseReadOnly(session: ImapSession, tag: string): boolean {
  if (!session.selected!.readOnly) return false;
  session.write(`${tag} NO The folder is open read-only (EXAMINE); select it to change it\r\n`);
  return true;
}

/** EXPUNGE, and UID EXPUNGE (UIDPLUS): only the \Deleted messages among the given UIDs. */
export const expunge: ImapCommand = {
  name: 'EXPUNGE',
  states: SELECTED,
  uidVariant: true,
  async run(session, args, { tag, uid }) {
    expectCount(args, uid ? 1 : 0);
    const selected = session.selected!;
    const uids = uid ? resolveSet(selected, atom(args[0], 'a UID set'), true) : undefined;
    if (refuseReadOnly(session, tag)) return null;
    if (uids?.length !== 0) {
      const gone = await session.services.mail.expunge(session.account!.accountId, selected.id, uids);
      announceExpunged(session, gone);
    }
    return `${uid ? 'UID EXPUNGE' : 'EXPUNGE'} completed`;
  },
};
