import { expectCount } from '../arguments.js';
import { AUTHENTICATED, type ImapCommand } from '../command.js';
import { folderName } from '../folder-names.js';
import type { Token } from '../parser/tokens.js';
import type { ImapSession } from '../session.js';

async function setSubscribed(session: ImapSession, args: Token[], subscribed: boolean): Promise<string> {
  expectCount(args, 1);
  const name = folderName(session, args[0]);
  await session.services.mail.folders.subscribe(session.account!.accountId, name, subscribed);
  return `${subscribed ? 'SUBSCRIBE' : 'UNSUBSCRIBE'} completed`;
}

/** SUBSCRIBE (RFC 3501 §6.3.6): only folders that exist can be subscribed. */
export const subscribe: ImapCommand = {
  name: 'SUBSCRIBE',
  states: AUTHENTICATED,
  run: (session, args) => setSubscribed(session, args, true),
};

/** UNSUBSCRIBE (RFC 3501 §6.3.7). */
export const unsubscribe: ImapCommand = {
  name: 'UNSUBSCRIBE',
  states: AUTHENTICATED,
  run: (session, args) => setSubscribed(session, args, false),
};
