import { SYSTEM_FLAGS } from '../../core/mailstore/flags.js';
import { atom, expectCount, listItems, text } from '../arguments.js';
import { AUTHENTICATED, type ImapCommand } from '../command.js';
import { decodeFolderName } from '../mutf7.js';
import { ImapSyntaxError, type Token } from '../parser/tokens.js';
import type { ImapSession } from '../session.js';

/** SELECT parameters (RFC 4466 §2.4): only CONDSTORE (RFC 7162 §3.1.8) is known. */
function selectParameters(token: Token | undefined): { condstore: boolean } {
  if (token === undefined) return { condstore: false };
  const items = listItems(token, 'SELECT parameters in parentheses');
  if (items.length === 0) throw new ImapSyntaxError('Name at least one SELECT parameter');
  for (const item of items) {
    const name = atom(item, 'a SELECT parameter');
    if (name.toUpperCase() !== 'CONDSTORE') throw new ImapSyntaxError(`Unknown SELECT parameter ${name.slice(0, 40)}`);
  }
  return { condstore: true };
}

async function open(session: ImapSession, args: Token[], readOnly: boolean): Promise<string> {
  expectCount(args, 1, 2);
  const name = decodeFolderName(text(args[0], 'a folder name'));
  const { condstore } = selectParameters(args[1]);
  // A failed SELECT leaves no folder selected (RFC 3501 §6.3.1).
  session.unselect();
  const folder = await session.services.mail.folders.get(session.account!.accountId, name);
  const { messages, highestModseq, uidNext } = await session.openFolder(folder, readOnly);
  if (condstore) session.enabled.add('CONDSTORE');
  const keywords = [...new Set(messages.flatMap((m) => m.flags.filter((f) => !f.startsWith('\\'))))].sort();
  const flags = [...SYSTEM_FLAGS, ...keywords].join(' ');
  session.untagged(`FLAGS (${flags})`);
  session.untagged(`OK [PERMANENTFLAGS (${readOnly ? '' : `${flags} \\*`})] Flags the client may change`);
  session.untagged(`${messages.length} EXISTS`);
  session.untagged(`${session.selected!.recent.size} RECENT`);
  const firstUnseen = messages.findIndex((m) => !m.flags.includes('\\Seen'));
  if (firstUnseen !== -1) session.untagged(`OK [UNSEEN ${firstUnseen + 1}] First unseen message`);
  session.untagged(`OK [UIDVALIDITY ${folder.uidValidity}] UIDs valid`);
  session.untagged(`OK [UIDNEXT ${uidNext}] Predicted next UID`);
  session.untagged(`OK [HIGHESTMODSEQ ${highestModseq}] Highest`);
  return `[${readOnly ? 'READ-ONLY' : 'READ-WRITE'}] ${readOnly ? 'EXAMINE' : 'SELECT'} completed`;
}

export const select: ImapCommand = {
  name: 'SELECT',
  states: AUTHENTICATED,
  run: (session, args) => open(session, args, false),
};

export const examine: ImapCommand = {
  name: 'EXAMINE',
  states: AUTHENTICATED,
  run: (session, args) => open(session, args, true),
};
