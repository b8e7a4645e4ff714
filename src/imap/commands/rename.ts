import { DELIMITER, INBOX, normalizeFolderName } from '../../core/mailstore/folders.js';
import { expectCount } from '../arguments.js';
import { AUTHENTICATED, type ImapCommand } from '../command.js';
import { folderName } from '../folder-names.js';
import { folderArgument } from './create.js';

/**
 * RENAME (RFC 3501 §6.3.5): the folders below follow, UIDVALIDITY and messages stay. Renaming
 * INBOX moves its messages into a new folder and leaves INBOX empty, its own folders in place.
 */
export const rename: ImapCommand = {
  name: 'RENAME',
  states: AUTHENTICATED,
  async run(session, args) {
    expectCount(args, 2);
    const from = folderName(session, args[0]);
    const to = folderArgument(session, args[1]);
    const { accountId } = session.account!;
    const { folders } = session.services.mail;
    if (from.toUpperCase() === INBOX) {
      await folders.renameInbox(accountId, to);
      return 'RENAME completed';
    }
    const source = await folders.get(accountId, from);
    await folders.rename(accountId, source.name, to);
    const selected = session.selected;
    if (selected && (selected.name === source.name || selected.name.startsWith(`${source.name}${DELIMITER}`))) {
      selected.name = normalizeFolderName(to) + selected.name.slice(source.name.length);
    }
    return 'RENAME completed';
  },
};
