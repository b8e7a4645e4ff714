import { atom } from '../arguments.js';
import { type ImapCommand } from '../command.js';
import { UTF8_ACCEPT } from '../folder-names.js';
import { ImapSyntaxError } from '../parser/tokens.js';

/** The extensions a client can ENABLE here. */
const ENABLEABLE = new Set(['CONDSTORE', 'QRESYNC', UTF8_ACCEPT]);

/**
 * ENABLE (RFC 5161): only before a folder is selected. Unknown extensions are ignored; the
 * ENABLED answer names only those newly enabled. QRESYNC turns CONDSTORE on too (RFC 7162 §3.2.3);
 * UTF8=ACCEPT (RFC 6855) switches folder names from modified UTF-7 to UTF-8.
 */
export const enable: ImapCommand = {
  name: 'ENABLE',
  states: ['authenticated'],
  run(session, args) {
    if (args.length === 0) throw new ImapSyntaxError('Name at least one extension');
    const enabled: string[] = [];
    for (const arg of args) {
      const name = atom(arg, 'an extension name').toUpperCase();
      if (!ENABLEABLE.has(name) || session.enabled.has(name)) continue;
      session.enabled.add(name);
      enabled.push(name);
      if (name === 'QRESYNC') session.enabled.add('CONDSTORE');
    }
    session.untagged(['ENABLED', ...enabled].join(' '));
    return 'ENABLE completed';
  },
};
