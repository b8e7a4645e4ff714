import type { ImapCommand } from '../command.js';
import { authenticate } from './authenticate.js';
import { capability } from './capability.js';
import { compress } from './compress.js';
import { login } from './login.js';
import { logout } from './logout.js';
import { noop } from './noop.js';
import { examine, select } from './select.js';
import { starttls } from './starttls.js';
import { append } from './append.js';
import { check } from './check.js';
import { close } from './close.js';
import { copy } from './copy.js';
import { expunge } from './expunge.js';
import { move } from './move.js';
import { search } from './search.js';
import { sort } from './sort.js';
import { store } from './store.js';
import { unselect } from './unselect.js';
import { create } from './create.js';
import { deleteFolder } from './delete.js';
import { enable } from './enable.js';
import { id } from './id.js';
import { idle } from './idle.js';
import { list } from './list.js';
import { lsub } from './lsub.js';
import { namespace } from './namespace.js';
import { getQuota, getQuotaRoot, setQuota } from './quota.js';
import { rename } from './rename.js';
import { status } from './status.js';
import { subscribe, unsubscribe } from './subscribe.js';
import { fetch } from './fetch.js';
import { thread } from './thread.js';

/** Every IMAP command the server knows; dispatch.ts looks them up here by name. */
export const COMMANDS: readonly ImapCommand[] = [
  authenticate,
  capability,
  compress,
  examine,
  login,
  logout,
  noop,
  select,
  starttls,
  append,
  check,
  close,
  copy,
  expunge,
  move,
  search,
  sort,
  store,
  unselect,
  create,
  deleteFolder,
  enable,
  id,
  idle,
  list,
  lsub,
  namespace,
  getQuota,
  getQuotaRoot,
  setQuota,
  rename,
  status,
  subscribe,
  unsubscribe,
  fetch,
  thread,
];
