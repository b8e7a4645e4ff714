import { AUTHENTICATED, type ImapCommand } from '../command.js';
import { listing } from './list.js';

/** LSUB (RFC 3501 §6.3.9): LIST's rules over the subscribed folders. */
export const lsub: ImapCommand = {
  name: 'LSUB',
  states: AUTHENTICATED,
  run: (session, args) => listing(session, args, 'LSUB'),
};
