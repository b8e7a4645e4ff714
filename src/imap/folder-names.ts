import { text } from './arguments.js';
import { decodeFolderName, encodeFolderName } from './mutf7.js';
import { ImapSyntaxError, type Token } from './parser/tokens.js';
import type { ImapSession } from './session.js';
import { nstring, utf8String } from './writer.js';

/** Once ENABLEd (RFC 6855), folder names travel as UTF-8 both ways instead of modified UTF-7. */
export const UTF8_ACCEPT = 'UTF8=ACCEPT';

/** A folder name argument (or a LIST reference or pattern) as the session spells it, in UTF-8. */
export function folderName(session: ImapSession, token: Token | undefined, what = 'a folder name'): string {
  const name = text(token, what);
  if (!session.enabled.has(UTF8_ACCEPT)) return decodeFolderName(name);
  // Bytes that are not UTF-8 were read as U+FFFD; RFC 6855 §3 wants them refused with BAD.
  if (name.includes('\uFFFD')) throw new ImapSyntaxError(`Expected ${what} in UTF-8`);
  return name;
}

/** A folder name in an answer: UTF-8 for a session that ENABLEd UTF8=ACCEPT, else modified UTF-7. */
export function renderFolderName(session: ImapSession, name: string): string {
  return session.enabled.has(UTF8_ACCEPT) ? utf8String(name) : nstring(encodeFolderName(name));
}
