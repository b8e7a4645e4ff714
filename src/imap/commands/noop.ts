import { ANY, type ImapCommand } from '../command.js';
import { expectCount } from '../arguments.js';

/** Does nothing; the sync after every command is what a client polling with NOOP wants. */
export const noop: ImapCommand = {
  name: 'NOOP',
  states: ANY,
  run(_session, args) {
    expectCount(args, 0);
    return 'NOOP completed';
  },
};
