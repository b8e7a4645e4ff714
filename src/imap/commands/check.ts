import { expectCount } from '../arguments.js';
import { type ImapCommand, SELECTED } from '../command.js';

/** CHECK (RFC 3501 §6.4.1): every change is committed already; the sync after it is the point. */
export const check: ImapCommand = {
  name: 'CHECK',
  states: SELECTED,
  run(_session, args) {
    expectCount(args, 0);
    return 'CHECK completed';
  },
};
