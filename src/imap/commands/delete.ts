import { expectCount } from '../arguments.js';
import { AUTHENTICATED, type ImapCommand } from '../command.js';
import { folderName } from '../folder-names.js';

/**
 * DELETE (RFC 3501 §6.3.4): the folder and its messages. INBOX, and a folder with folders below
 * it, are refused, as Dovecot does. Deleting the selected folder closes it.
 */
export const deleteFolder: ImapCommand = {
  name: 'DELETE',
  states: AUTHENTICATED,
  async run(session, args) {
    expectCount(args, 1);
    const name = folderName(session, args[0]);
    const { accountId } = session.account!;
    const folder = await session.services.mail.folders.get(accountId, name);
    await session.services.mail.folders.delete(accountId, folder.name);
    if (session.selected?.id === folder.id) {
      session.unselect();
      session.untagged('OK [CLOSED] The selected folder was deleted');
    }
    return 'DELETE completed';
  },
};
