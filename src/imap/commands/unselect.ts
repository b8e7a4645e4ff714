import { expectCount } from '../arguments.js';
import { type ImapCommand, SELECTED } from '../command.js';

/** UNSELECT (RFC 3691): deselects without expunging. */
export const unselect: ImapCommand = {
  name: 'UNSELECT',
  states: SELECTED,
  run(session, args) {
    expectCount(args, 0);
    session.unselect();
    return 'UNSELECT completed';
  },
};
