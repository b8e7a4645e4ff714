import { SYSTEM_FLAGS } from '../../core/mailstore/flags.js';
import type { MessageSummary } from '../../core/mailstore/service.js';
import { atom, expectCount, listItems, number } from '../arguments.js';
import { AUTHENTICATED, type ImapCommand } from '../command.js';
import { folderName } from '../folder-names.js';
import { ImapSyntaxError, type Token } from '../parser/tokens.js';
import { positionOf } from '../search-keys.js';
import { compactSet, inSet, parseSequenceSet } from '../sequence.js';
import type { ImapSession } from '../session.js';

type SetRanges = ReturnType<typeof parseSequenceSet>;

/** QRESYNC (RFC 7162 §3.2.5): what the client last knew of the folder. */
interface Resync {
  uidValidity: number;
  modseq: number;
  /** Null: every UID below UIDNEXT. */
  knownUids: SetRanges | null;
}

/** A UID set without `*` (RFC 7162 known-uids). */
function uidSet(token: Token | undefined): SetRanges {
  const value = atom(token, 'a UID set');
  if (value.includes('*')) throw new ImapSyntaxError('A known UID set cannot hold *');
  return parseSequenceSet(value);
}

/**
 * QRESYNC (uidvalidity modseq [known-uids [(known-sequence-set known-uid-set)]]). The sequence
 * match data is checked and not needed: every tombstone is kept, so VANISHED is always exact.
 */
function resyncParameter(token: Token | undefined): Resync {
  const items = listItems(token, 'QRESYNC parameters in parentheses');
  expectCount(items, 2, 4);
  const uidValidity = number(items[0], 'a UIDVALIDITY');
  const modseq = number(items[1], 'a mod-sequence value');
  if (uidValidity === 0 || modseq === 0) throw new ImapSyntaxError('UIDVALIDITY and the mod-sequence must be positive');
  const knownUids = items[2] === undefined ? null : uidSet(items[2]);
  if (items[3] !== undefined) {
    const match = listItems(items[3], 'sequence match data in parentheses');
    expectCount(match, 2);
    parseSequenceSet(atom(match[0], 'a sequence set'));
    uidSet(match[1]);
  }
  return { uidValidity, modseq, knownUids };
}

/** SELECT parameters (RFC 4466 §2.4): CONDSTORE (RFC 7162 §3.1.8) and QRESYNC (§3.2.5). */
function selectParameters(session: ImapSession, token: Token | undefined): { condstore: boolean; resync: Resync | null } {
  const parameters = { condstore: false, resync: null as Resync | null };
  if (token === undefined) return parameters;
  const items = listItems(token, 'SELECT parameters in parentheses');
  if (items.length === 0) throw new ImapSyntaxError('Name at least one SELECT parameter');
  for (let i = 0; i < items.length; i++) {
    const name = atom(items[i], 'a SELECT parameter').toUpperCase();
    if (name === 'CONDSTORE') parameters.condstore = true;
    else if (name === 'QRESYNC') {
      if (!session.enabled.has('QRESYNC')) throw new ImapSyntaxError('QRESYNC must be enabled first (ENABLE QRESYNC)');
      parameters.resync = resyncParameter(items[++i]);
    } else throw new ImapSyntaxError(`Unknown SELECT parameter ${name.slice(0, 40)}`);
  }
  return parameters;
}

/**
 * What changed since the client's MODSEQ, if its UIDVALIDITY still holds: the expunged UIDs it
 * knew as VANISHED (EARLIER), then the changed messages as FETCH (RFC 7162 §3.2.5.1).
 */
async function resynchronize(session: ImapSession, messages: MessageSummary[], resync: Resync): Promise<void> {
  const selected = session.selected!;
  if (resync.uidValidity !== selected.uidValidity) return;
  const known = (uid: number) => resync.knownUids === null || inSet(resync.knownUids, uid, 0);
  const expunged = await session.services.mail.expungedSince(session.account!.accountId, selected.id, resync.modseq);
  // One expunged after the view was read is told by the next sync instead.
  const vanished = expunged.filter((uid) => known(uid) && positionOf(selected.uids, uid) === -1);
  if (vanished.length > 0) session.untagged(`VANISHED (EARLIER) ${compactSet(vanished)}`);
  messages.forEach((message, index) => {
    if (message.modseq <= resync.modseq || !known(message.uid)) return;
    session.untagged(`${index + 1} FETCH (UID ${message.uid} ${session.flagsItem(message.uid)} MODSEQ (${message.modseq}))`);
  });
}

async function open(session: ImapSession, args: Token[], readOnly: boolean): Promise<string> {
  expectCount(args, 1, 2);
  const name = folderName(session, args[0]);
  const { condstore, resync } = selectParameters(session, args[1]);
  // A failed SELECT leaves no folder selected (RFC 3501 §6.3.1); with QRESYNC the client is told (§3.2.11).
  if (session.selected && session.enabled.has('QRESYNC')) session.untagged('OK [CLOSED] Previous folder closed');
  session.unselect();
  const folder = await session.services.mail.folders.get(session.account!.accountId, name);
  const { messages, highestModseq, uidNext } = await session.openFolder(folder, readOnly);
  if (condstore || resync) session.enabled.add('CONDSTORE');
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
  if (resync) await resynchronize(session, messages, resync);
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
