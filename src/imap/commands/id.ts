import { expectCount } from '../arguments.js';
import { ANY, type ImapCommand } from '../command.js';
import { ImapSyntaxError } from '../parser/tokens.js';

/** What the server says of itself; RFC 2971 asks for nothing that helps an attacker. */
const SERVER_ID = '("name" "Mailroom" "vendor" "Mailroom")';

/**
 * ID (RFC 2971): the client's list is checked against the RFC's limits (at most 30 pairs, field
 * names of at most 30 octets, values of at most 1024) and otherwise not used.
 */
export const id: ImapCommand = {
  name: 'ID',
  states: ANY,
  run(session, args) {
    expectCount(args, 1);
    const [given] = args;
    if (given?.kind === 'atom') {
      if (given.value.toUpperCase() !== 'NIL') throw new ImapSyntaxError('Expected a list of field and value pairs or NIL');
    } else if (given?.kind === 'list') {
      const { items } = given;
      if (items.length % 2 !== 0 || items.length > 60) throw new ImapSyntaxError('Expected at most 30 field and value pairs');
      items.forEach((item, i) => {
        const isNil = item.kind === 'atom' && item.value.toUpperCase() === 'NIL';
        if (i % 2 === 0 ? item.kind !== 'string' || item.value.length > 30 : !isNil && (item.kind !== 'string' || item.value.length > 1024)) {
          throw new ImapSyntaxError('ID fields are strings of at most 30 octets, values strings of at most 1024 or NIL');
        }
      });
    } else {
      throw new ImapSyntaxError('Expected a list of field and value pairs or NIL');
    }
    session.untagged(`ID ${SERVER_ID}`);
    return 'ID completed';
  },
};
