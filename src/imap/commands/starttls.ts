import { expectCount } from '../arguments.js';
import { type ImapCommand, NOT_AUTHENTICATED } from '../command.js';
import { ImapSyntaxError } from '../parser/tokens.js';

export const starttls: ImapCommand = {
  name: 'STARTTLS',
  states: NOT_AUTHENTICATED,
  async run(session, args, { tag }) {
    expectCount(args, 0);
    if (session.connection.secure) throw new ImapSyntaxError('TLS is already active');
    session.write(`${tag} OK Begin TLS negotiation now\r\n`);
    // Anything pipelined after STARTTLS is discarded by the upgrade (RFC 2595 §3.1).
    await session.connection.upgradeToTls(session.context.tls.context).catch(() => session.connection.destroy());
    return null;
  },
};
