import { DELIMITER } from '../../core/mailstore/folders.js';
import { expectCount } from '../arguments.js';
import { AUTHENTICATED, type ImapCommand } from '../command.js';
import { folderName, renderFolderName } from '../folder-names.js';
import { ancestors, byName, type Listed, patternMatcher } from './list.js';

/**
 * The subscribed names LSUB shows, whether their folder exists or not. A level above subscribed
 * names that is not subscribed itself is listed, \Noselect, only when the pattern matches it and
 * none of those below it (RFC 3501 §6.3.9: `%` must give "foo" when only "foo/bar" is subscribed).
 */
export function listSubscribed(subscribed: readonly string[], matches: (name: string) => boolean): Listed[] {
  const found = new Map<string, Listed>();
  for (const name of subscribed) {
    if (matches(name)) found.set(name, { name, attributes: [] });
  }
  for (const name of subscribed) {
    for (const level of ancestors(name)) {
      if (found.has(level) || !matches(level)) continue;
      const below = subscribed.filter((other) => other.startsWith(`${level}${DELIMITER}`));
      if (!below.some(matches)) found.set(level, { name: level, attributes: ['\\Noselect'] });
    }
  }
  return [...found.values()].sort((a, b) => byName(a.name, b.name));
}

/** LSUB (RFC 3501 §6.3.9): LIST's reference and pattern rules over the subscribed names. */
export const lsub: ImapCommand = {
  name: 'LSUB',
  states: AUTHENTICATED,
  async run(session, args) {
    expectCount(args, 2);
    const reference = folderName(session, args[0], 'a reference name');
    const pattern = folderName(session, args[1], 'a folder name pattern');
    if (pattern === '') return 'LSUB completed';
    const { subscribed } = await session.services.mail.folders.tree(session.account!.accountId);
    for (const { name, attributes } of listSubscribed(subscribed, patternMatcher(reference, pattern))) {
      session.untagged(`LSUB (${attributes.join(' ')}) "${DELIMITER}" ${renderFolderName(session, name)}`);
    }
    return 'LSUB completed';
  },
};
