import type { ImapCommand } from '../command.js';
import { authenticate } from './authenticate.js';
import { capability } from './capability.js';
import { login } from './login.js';
import { logout } from './logout.js';
import { noop } from './noop.js';
import { examine, select } from './select.js';
import { starttls } from './starttls.js';

/** Every IMAP command the server knows; dispatch.ts looks them up here by name. */
export const COMMANDS: readonly ImapCommand[] = [
  authenticate,
  capability,
  examine,
  login,
  logout,
  noop,
  select,
  starttls,
];
