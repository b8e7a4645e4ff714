import { expectCount, listItems, atom, text } from '../arguments.js';
import { AUTHENTICATED, type ImapCommand } from '../command.js';
import { decodeFolderName, encodeFolderName } from '../mutf7.js';
import { ImapSyntaxError } from '../parser/tokens.js';
import { nstring } from '../writer.js';

const ITEMS = new Set(['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'HIGHESTMODSEQ', 'SIZE']);

/**
 * STATUS (RFC 3501 §6.3.10) with HIGHESTMODSEQ (RFC 7162) and SIZE (RFC 9208 §4.3), read from
 * the folder's counters; UNSEEN is counted only when asked for.
 */
export const status: ImapCommand = {
  name: 'STATUS',
  states: AUTHENTICATED,
  async run(session, args) {
    expectCount(args, 2);
    const name = decodeFolderName(text(args[0], 'a folder name'));
    const items = listItems(args[1], 'a list of status items').map((item) => atom(item, 'a status item').toUpperCase());
    if (items.length === 0) throw new ImapSyntaxError('Name at least one status item');
    for (const item of items) if (!ITEMS.has(item)) throw new ImapSyntaxError(`Unknown status item ${item}`);
    const { accountId } = session.account!;
    const folder = await session.services.mail.folders.get(accountId, name);
    let unseen = 0;
    if (items.includes('UNSEEN')) {
      const usage = await session.services.mail.folders.usage(accountId);
      unseen = usage.find((row) => row.name === folder.name)?.unseen ?? 0;
    }
    // What the next SELECT would claim, and what this session holds if the folder is its own.
    let recent = 0;
    if (items.includes('RECENT')) {
      const own = session.selected?.id === folder.id && !session.selected.readOnly ? session.selected.recent.size : 0;
      recent = own + (await session.services.mail.folders.unclaimedRecent(accountId, folder.id));
    }
    const values: Record<string, number> = {
      MESSAGES: folder.messageCount,
      RECENT: recent,
      UIDNEXT: folder.uidNext,
      UIDVALIDITY: folder.uidValidity,
      UNSEEN: unseen,
      HIGHESTMODSEQ: folder.highestModseq,
      SIZE: folder.storageBytes,
    };
    const answer = [...new Set(items)].map((item) => `${item} ${values[item]}`).join(' ');
    session.untagged(`STATUS ${nstring(encodeFolderName(folder.name))} (${answer})`);
    return 'STATUS completed';
  },
};
