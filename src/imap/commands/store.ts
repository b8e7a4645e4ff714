import { SYSTEM_FLAGS } from '../../core/mailstore/flags.js';
import type { FlagChange } from '../../core/mailstore/service.js';
import { atom, number } from '../arguments.js';
import { type ImapCommand, SELECTED } from '../command.js';
import { ImapSyntaxError, type Token } from '../parser/tokens.js';
import { positionOf } from '../search-keys.js';
import { compactSet, resolveSet } from '../sequence.js';
import { refuseReadOnly } from './expunge.js';

const SYSTEM = new Map(SYSTEM_FLAGS.map((flag) => [flag.toLowerCase(), flag]));
const ITEM = /^([+-]?)FLAGS(\.SILENT)?$/i;

/**
 * Flags a client asks to store (STORE, APPEND): atoms; system flags are the five of RFC 3501
 * (\Recent belongs to the server and cannot be stored). Keywords are checked by the store.
 */
export function storableFlags(tokens: readonly Token[]): string[] {
  return tokens.map((token) => {
    const flag = atom(token, 'a flag');
    if (!flag.startsWith('\\')) return flag;
    const system = SYSTEM.get(flag.toLowerCase());
    if (system) return system;
    throw new ImapSyntaxError(flag.toLowerCase() === '\\recent' ? '\\Recent cannot be stored' : `${flag.slice(0, 40)} is not a flag that can be stored`);
  });
}

function parseModifiers(token: Token | undefined): number | undefined {
  if (token?.kind !== 'list') return undefined;
  const [name, value, ...rest] = token.items;
  if (rest.length > 0 || atom(name, 'UNCHANGEDSINCE').toUpperCase() !== 'UNCHANGEDSINCE') {
    throw new ImapSyntaxError('The only STORE modifier is UNCHANGEDSINCE');
  }
  return number(value, 'a mod-sequence after UNCHANGEDSINCE');
}

/**
 * STORE and UID STORE (RFC 3501 §6.4.6, RFC 7162 UNCHANGEDSINCE). The client hears of each
 * message whose flags really changed (unless .SILENT; with CONDSTORE, MODSEQ is told even then),
 * and the view is updated first so the sync does not tell it again. No EXPUNGE during STORE.
 */
export const store: ImapCommand = {
  name: 'STORE',
  states: SELECTED,
  uidVariant: true,
  expungesAfter: false,
  async run(session, args, { tag, uid }) {
    const set = atom(args[0], 'a sequence set');
    const unchangedSince = parseModifiers(args[1]);
    const rest = args.slice(unchangedSince === undefined ? 1 : 2);
    const item = ITEM.exec(atom(rest[0], 'FLAGS, +FLAGS or -FLAGS'));
    if (!item) throw new ImapSyntaxError('Expected FLAGS, +FLAGS or -FLAGS, optionally .SILENT');
    const values = rest.slice(1);
    if (values.length === 0) throw new ImapSyntaxError('Expected flags');
    const flags = storableFlags(values.length === 1 && values[0]!.kind === 'list' ? values[0]!.items : values);
    const change: FlagChange = item[1] === '+' ? 'add' : item[1] === '-' ? 'remove' : 'set';
    const silent = item[2] !== undefined;
    const selected = session.selected!;
    const uids = resolveSet(selected, set, uid);
    if (unchangedSince !== undefined) session.enabled.add('CONDSTORE');
    if (refuseReadOnly(session, tag)) return null;
    if (uids.length === 0) return `${uid ? 'UID STORE' : 'STORE'} completed`;

    const result = await session.services.mail.changeFlags(session.account!.accountId, selected.id, uids, change, flags, unchangedSince);
    const condstore = session.enabled.has('CONDSTORE');
    for (const message of result.changed) {
      const position = positionOf(selected.uids, message.uid);
      if (position === -1) continue;
      selected.flags.set(message.uid, message.flags);
      const items = [
        ...(silent ? [] : [session.flagsItem(message.uid)]),
        ...(uid ? [`UID ${message.uid}`] : []),
        ...(condstore ? [`MODSEQ (${message.modseq})`] : []),
      ];
      if (!silent || condstore) session.untagged(`${position + 1} FETCH (${items.join(' ')})`);
    }
    const conflicts = uid
      ? result.conflicts
      : result.conflicts.map((conflict) => positionOf(selected.uids, conflict) + 1).filter((seq) => seq > 0);
    if (conflicts.length > 0) return `[MODIFIED ${compactSet(conflicts)}] Conditional STORE failed`;
    return `${uid ? 'UID STORE' : 'STORE'} completed`;
  },
};
