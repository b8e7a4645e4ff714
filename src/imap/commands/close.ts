import { expectCount } from '../arguments.js';
import { type ImapCommand, SELECTED } from '../command.js';

/** CLOSE (RFC 3501 §6.4.2): expunges without telling (unless read-only), then deselects. */
export const close: ImapCommand = {
  name: 'CLOSE',
  states: SELECTED,
  async run(session, args) {
    expectCount(args, 0);
    const selected = session.selected!;
    if (!selected.readOnly) await session.services.mail.expunge(session.account!.accountId, selected.id);
    session.unselect();
    return 'CLOSE completed';
  },
};
