import { atom, expectCount } from '../arguments.js';
import { AUTHENTICATED, type ImapCommand } from '../command.js';
import { ImapSyntaxError } from '../parser/tokens.js';

/**
 * COMPRESS (RFC 4978): after the tagged OK, both directions are raw DEFLATE, above TLS where TLS
 * is on. Only after login: the RFC adds it to command-auth. An unknown mechanism is BAD; asked
 * again, it is NO [COMPRESSIONACTIVE] (as Dovecot answers), and nothing changes.
 */
export const compress: ImapCommand = {
  name: 'COMPRESS',
  states: AUTHENTICATED,
  run(session, args, { tag }) {
    expectCount(args, 1);
    const mechanism = atom(args[0], 'a compression mechanism').toUpperCase();
    if (mechanism !== 'DEFLATE') throw new ImapSyntaxError(`Unknown compression mechanism ${mechanism}`);
    if (session.connection.compressed) {
      session.write(`${tag} NO [COMPRESSIONACTIVE] DEFLATE is already active\r\n`);
      return null;
    }
    // The OK is the last thing sent uncompressed.
    session.write(`${tag} OK DEFLATE active\r\n`);
    session.connection.startCompression(() => session.bye('Compressed input could not be inflated'));
    return null;
  },
};
