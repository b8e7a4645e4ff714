import { loggable } from '../../core/errors.js';
import { LINE_TOO_LONG } from '../../net/connection.js';
import { expectCount } from '../arguments.js';
import { AUTHENTICATED, type ImapCommand } from '../command.js';
import { ImapSyntaxError } from '../parser/tokens.js';

/**
 * IDLE (RFC 2177): until the client sends DONE, changes to the selected folder are pushed as the
 * change feed reports them (EXISTS, EXPUNGE, FETCH FLAGS), not at the next command. The
 * autologout timer keeps running; a client re-issues IDLE well within it.
 */
export const idle: ImapCommand = {
  name: 'IDLE',
  states: AUTHENTICATED,
  async run(session, args) {
    expectCount(args, 0);
    // One sync at a time: two at once would both tell the client of the same new messages.
    let pushing = Promise.resolve();
    const push = () => {
      pushing = pushing
        .then(() => session.sync({ expunges: true }))
        .catch((error: unknown) => session.log.warn({ err: loggable(error) }, 'imap idle update failed'));
    };
    session.write('+ idling\r\n');
    session.idling = push;
    let line: Awaited<ReturnType<typeof session.connection.readLine>>;
    try {
      // What changed between the last command and now is owed at once.
      push();
      line = await session.connection.readLine();
    } finally {
      session.idling = null;
      await pushing;
    }
    // The client has gone, or the session was ended (BYE) while idling.
    if (line === null) return null;
    if (line === LINE_TOO_LONG || line.toUpperCase() !== 'DONE') throw new ImapSyntaxError('Expected DONE to end IDLE');
    return 'IDLE terminated';
  },
};
