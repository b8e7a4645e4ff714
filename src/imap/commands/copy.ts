import { DomainError } from '../../core/errors.js';
import { normalizeFolderName } from '../../core/mailstore/folders.js';
import { atom, expectCount } from '../arguments.js';
import { type CommandRun, type ImapCommand, SELECTED } from '../command.js';
import { folderName } from '../folder-names.js';
import type { Token } from '../parser/tokens.js';
import { compactSet, resolveSet } from '../sequence.js';
import type { ImapSession } from '../session.js';

/** The COPYUID code (RFC 4315): source and new UIDs, in corresponding order. */
export function copyUid(uidValidity: number, pairs: readonly (readonly [number, number])[]): string {
  return `COPYUID ${uidValidity} ${compactSet(pairs.map(([from]) => from))} ${compactSet(pairs.map(([, to]) => to))}`;
}

/**
 * Runs a store call that names a target folder; a missing folder answers NO [TRYCREATE]
 * (RFC 3501 §6.3.11, §6.4.7) so the client can create it and retry. Null: already answered.
 */
export async function intoFolder<T>(session: ImapSession, tag: string, folder: string, work: () => Promise<T>): Promise<T | null> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof DomainError) || error.code !== 'folder_not_found') throw error;
    session.write(`${tag} NO [TRYCREATE] There is no folder ${folder}\r\n`);
    return null;
  }
}

/** Whether `folder` names the selected folder, whose new messages the next sync announces. */
export function isSelected(session: ImapSession, folder: string): boolean {
  try {
    return session.selected !== null && normalizeFolderName(folder) === session.selected.name;
  } catch {
    return false;
  }
}

/** The message UIDs and target folder of COPY and MOVE. */
export function transferArguments(session: ImapSession, args: Token[], { uid }: CommandRun): { uids: number[]; folder: string } {
  expectCount(args, 2);
  const set = atom(args[0], 'a sequence set');
  const folder = folderName(session, args[1]);
  return { uids: resolveSet(session.selected!, set, uid), folder };
}

/** COPY and UID COPY (RFC 3501 §6.4.7, UIDPLUS): the copies count against the quota, all or none. */
export const copy: ImapCommand = {
  name: 'COPY',
  states: SELECTED,
  uidVariant: true,
  async run(session, args, run) {
    const { uids, folder } = transferArguments(session, args, run);
    const { accountId } = session.account!;
    const result = await intoFolder(session, run.tag, folder, () =>
      session.services.mail.copy(accountId, session.selected!.id, uids, folder),
    );
    if (result === null) return null;
    // Copies into the selected folder show as EXISTS at this command's sync, not the next one's.
    if (result.pairs.length > 0 && isSelected(session, folder)) session.folderChanged = true;
    const code = result.pairs.length > 0 ? `[${copyUid(result.uidValidity, result.pairs)}] ` : '';
    return `${code}${run.uid ? 'UID COPY' : 'COPY'} completed`;
  },
};
