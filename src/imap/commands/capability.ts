import { ANY, type ImapCommand } from '../command.js';
import { expectCount } from '../arguments.js';

export const capability: ImapCommand = {
  name: 'CAPABILITY',
  states: ANY,
  run(session, args) {
    expectCount(args, 0);
    session.untagged(`CAPABILITY ${session.capabilities().join(' ')}`);
    return 'CAPABILITY completed';
  },
};
