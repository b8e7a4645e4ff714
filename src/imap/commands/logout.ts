import { ANY, type ImapCommand } from '../command.js';
import { expectCount } from '../arguments.js';

export const logout: ImapCommand = {
  name: 'LOGOUT',
  states: ANY,
  run(session, args) {
    expectCount(args, 0);
    session.untagged('BYE Logging out');
    session.state = 'logout';
    return 'LOGOUT completed';
  },
};
