import { ForbiddenError, NotFoundError } from '../../core/errors.js';
import { expectCount, listItems, text } from '../arguments.js';
import { AUTHENTICATED, type ImapCommand } from '../command.js';
import { folderName, renderFolderName } from '../folder-names.js';
import type { ImapSession } from '../session.js';

/** Every folder of a mailbox shares one quota root, named "". */
const ROOT = '';

/**
 * The root's resources (RFC 9208 §5.1): STORAGE in KiB, rounded up, and MESSAGE, from the same
 * counters as the API's usage. An unlimited resource is not listed.
 */
async function sendQuota(session: ImapSession): Promise<void> {
  const quota = await session.services.mail.folders.quota(session.account!.accountId);
  const resources: string[] = [];
  if (quota.quotaBytes !== null) resources.push(`STORAGE ${Math.ceil(quota.usedBytes / 1024)} ${Math.ceil(quota.quotaBytes / 1024)}`);
  if (quota.quotaMessages !== null) resources.push(`MESSAGE ${quota.usedMessages} ${quota.quotaMessages}`);
  session.untagged(`QUOTA "${ROOT}" (${resources.join(' ')})`);
}

/** GETQUOTAROOT (RFC 9208 §4.3): the folder must exist; its root is always "". */
export const getQuotaRoot: ImapCommand = {
  name: 'GETQUOTAROOT',
  states: AUTHENTICATED,
  async run(session, args) {
    expectCount(args, 1);
    const name = folderName(session, args[0]);
    const folder = await session.services.mail.folders.get(session.account!.accountId, name);
    session.untagged(`QUOTAROOT ${renderFolderName(session, folder.name)} "${ROOT}"`);
    await sendQuota(session);
    return 'GETQUOTAROOT completed';
  },
};

/** GETQUOTA (RFC 9208 §4.2). */
export const getQuota: ImapCommand = {
  name: 'GETQUOTA',
  states: AUTHENTICATED,
  async run(session, args) {
    expectCount(args, 1);
    if (text(args[0], 'a quota root') !== ROOT) throw new NotFoundError('quota_root_not_found', 'The only quota root is ""');
    await sendQuota(session);
    return 'GETQUOTA completed';
  },
};

/** SETQUOTA (RFC 9208 §4.1): refused; quotas are set through the API. */
export const setQuota: ImapCommand = {
  name: 'SETQUOTA',
  states: AUTHENTICATED,
  run(_session, args) {
    expectCount(args, 2);
    text(args[0], 'a quota root');
    listItems(args[1], 'a list of resource limits');
    throw new ForbiddenError('quota_read_only', 'Quotas are managed by the administrator');
  },
};
