import { DELIMITER } from '../../core/mailstore/folders.js';
import { expectCount } from '../arguments.js';
import { AUTHENTICATED, type ImapCommand } from '../command.js';
import { folderName } from '../folder-names.js';
import type { Token } from '../parser/tokens.js';
import type { ImapSession } from '../session.js';

/**
 * A folder name argument in UTF-8. A trailing delimiter, which says the client means to create
 * folders below (RFC 3501 §6.3.3), is dropped: any folder here may have folders below it.
 */
export function folderArgument(session: ImapSession, token: Token | undefined): string {
  const name = folderName(session, token);
  return name.length > 1 && name.endsWith(DELIMITER) ? name.slice(0, -1) : name;
}

/** CREATE (RFC 3501 §6.3.3): only the folder named; the levels above it are not made. */
export const create: ImapCommand = {
  name: 'CREATE',
  states: AUTHENTICATED,
  async run(session, args) {
    expectCount(args, 1);
    await session.services.mail.folders.create(session.account!.accountId, folderArgument(session, args[0]));
    return 'CREATE completed';
  },
};
