import { positionOf } from './search-keys.js';
import { compactSet } from './sequence.js';
import type { ImapSession } from './session.js';

/**
 * Tells the client that these messages are gone and drops them from the session's view: one
 * `* n EXPUNGE` per message in UID order, each numbered after the ones before it (RFC 3501
 * §7.4.1), or with QRESYNC enabled one `* VANISHED uid-set` for them all (RFC 7162 §3.2.10).
 */
export function announceExpunged(session: ImapSession, uids: readonly number[]): void {
  const selected = session.selected!;
  const vanished: number[] = [];
  for (const uid of [...uids].sort((a, b) => a - b)) {
    const position = positionOf(selected.uids, uid);
    if (position === -1) continue;
    selected.uids.splice(position, 1);
    selected.flags.delete(uid);
    selected.recent.delete(uid);
    if (session.enabled.has('QRESYNC')) vanished.push(uid);
    else session.untagged(`${position + 1} EXPUNGE`);
  }
  if (vanished.length > 0) session.untagged(`VANISHED ${compactSet(vanished)}`);
}
