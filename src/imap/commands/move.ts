import { type ImapCommand, SELECTED } from '../command.js';
import { copyUid, intoFolder, transferArguments } from './copy.js';
import { announceExpunged } from '../expunges.js';
import { refuseReadOnly } from './expunge.js';

/**
 * MOVE and UID MOVE (RFC 6851): the COPYUID goes in an untagged OK before the EXPUNGEs of the
 * moved messages; usage does not change, so no quota applies.
 */
export const move: ImapCommand = {
  name: 'MOVE',
  states: SELECTED,
  uidVariant: true,
  async run(session, args, run) {
    const { uids, folder } = transferArguments(session, args, run);
    if (refuseReadOnly(session, run.tag)) return null;
    const { accountId } = session.account!;
    const result = await intoFolder(session, run.tag, folder, () =>
      session.services.mail.move(accountId, session.selected!.id, uids, folder),
    );
    if (result === null) return null;
    if (result.pairs.length > 0) {
      session.untagged(`OK [${copyUid(result.uidValidity, result.pairs)}] Moved`);
      announceExpunged(session, result.pairs.map(([from]) => from));
    }
    return `${run.uid ? 'UID MOVE' : 'MOVE'} completed`;
  },
};
