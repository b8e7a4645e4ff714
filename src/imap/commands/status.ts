import type { FolderCounts, FolderRow } from '../../core/mailstore/folders.js';
import { atom, expectCount, listItems } from '../arguments.js';
import { AUTHENTICATED, type ImapCommand } from '../command.js';
import { folderName, renderFolderName } from '../folder-names.js';
import { ImapSyntaxError, type Token } from '../parser/tokens.js';
import type { ImapSession } from '../session.js';

const ITEMS = new Set(['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'HIGHESTMODSEQ', 'SIZE']);

/** The items of STATUS, or of LIST's RETURN (STATUS (…)) (RFC 5819): known ones, at least one, each once. */
export function statusItems(token: Token | undefined): string[] {
  const items = listItems(token, 'a list of status items').map((item) => atom(item, 'a status item').toUpperCase());
  if (items.length === 0) throw new ImapSyntaxError('Name at least one status item');
  for (const item of items) if (!ITEMS.has(item)) throw new ImapSyntaxError(`Unknown status item ${item.slice(0, 40)}`);
  return [...new Set(items)];
}

/** Whether the items need messages counted (FolderService.counts), beyond what the folder row holds. */
export function needsCounts(items: readonly string[]): boolean {
  return items.includes('UNSEEN') || items.includes('RECENT');
}

/**
 * One `* STATUS` answer. RECENT is what the next SELECT would claim, plus what this session holds
 * if the folder is its own.
 */
export function sendStatus(session: ImapSession, folder: FolderRow, counts: FolderCounts | undefined, items: readonly string[]): void {
  const own = session.selected?.id === folder.id && !session.selected.readOnly ? session.selected.recent.size : 0;
  const values: Record<string, number> = {
    MESSAGES: folder.messageCount,
    RECENT: own + (counts?.recent ?? 0),
    UIDNEXT: folder.uidNext,
    UIDVALIDITY: folder.uidValidity,
    UNSEEN: counts?.unseen ?? 0,
    HIGHESTMODSEQ: folder.highestModseq,
    SIZE: folder.storageBytes,
  };
  session.untagged(`STATUS ${renderFolderName(session, folder.name)} (${items.map((item) => `${item} ${values[item]}`).join(' ')})`);
}

/**
 * STATUS (RFC 3501 §6.3.10) with HIGHESTMODSEQ (RFC 7162) and SIZE (RFC 9208 §4.3), read from
 * the folder's counters; messages are counted only for UNSEEN and RECENT.
 */
export const status: ImapCommand = {
  name: 'STATUS',
  states: AUTHENTICATED,
  async run(session, args) {
    expectCount(args, 2);
    const name = folderName(session, args[0]);
    const items = statusItems(args[1]);
    const { accountId } = session.account!;
    const { folders } = session.services.mail;
    const folder = await folders.get(accountId, name);
    const counts = needsCounts(items) ? (await folders.counts(accountId, [folder.id])).get(folder.id) : undefined;
    sendStatus(session, folder, counts, items);
    return 'STATUS completed';
  },
};
