import { DELIMITER } from '../../core/mailstore/folders.js';
import { expectCount } from '../arguments.js';
import { AUTHENTICATED, type ImapCommand } from '../command.js';

/** NAMESPACE (RFC 2342): one personal namespace, no prefix; no other users' or shared folders. */
export const namespace: ImapCommand = {
  name: 'NAMESPACE',
  states: AUTHENTICATED,
  run(session, args) {
    expectCount(args, 0);
    session.untagged(`NAMESPACE (("" "${DELIMITER}")) NIL NIL`);
    return 'NAMESPACE completed';
  },
};
