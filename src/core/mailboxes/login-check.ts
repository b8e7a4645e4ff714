import { eq } from 'drizzle-orm';
import type { Database } from '../../db/client.js';
import { accounts, domains } from '../../db/schema/index.js';
import type { Actor } from '../actor.js';
import { type FailedLogin, recentFailedLogins } from '../auth/failed-logins.js';
import type { MailProtocol } from '../auth/login.js';
import type { LockoutView, LoginThrottle } from '../auth/throttle.js';
import { NotFoundError } from '../errors.js';
import type { QuotaLimits, Status } from '../limits.js';
import { MAIL_PROTOCOLS, type ProtocolSwitch, switchOf } from './protocol-switches.js';
import { type QuotaState, quotaState } from './quota-preview.js';
import type { MailboxService } from './service.js';

export type BlockerCode = 'mailbox_suspended' | 'domain_suspended' | 'protocol_disabled' | 'mailbox_locked' | 'client_address_locked';

export interface LoginCheck {
  address: string;
  /** Whether the right password gets in over each protocol now, from a client address that is not locked out. */
  canLogIn: Record<MailProtocol, boolean>;
  /** Everything that refuses logins now, in plain words. */
  blockers: { code: BlockerCode; detail: string }[];
  status: Status;
  domain: { name: string; status: Status };
  protocols: Record<MailProtocol, ProtocolSwitch & { lastLogin: { at: string; ip: string | null } | null }>;
  lockout: LockoutView;
  /** The client addresses of the recent failures and last logins, with their own lockouts. */
  clientAddresses: (Omit<LockoutView, 'recentFailures'> & { address: string; recentFailures: number | null })[];
  failedLogins: FailedLogin[];
  quota: QuotaState & { limits: QuotaLimits; usage: { storageBytes: number; messages: number } };
  password: { changedAt: string; ageDays: number };
  checkedAt: string;
}

const DAY_MS = 86_400_000;

/** "Why can't this user log in?" in one answer: every rule a POP3 or IMAP login goes through, as it stands. */
export function createLoginCheck(db: Database, mailboxes: MailboxService, throttle: LoginThrottle) {
  return {
    async check(address: string, actor: Actor): Promise<LoginCheck> {
      const { id } = await mailboxes.find(address, actor);
      const [found] = await db
        .select({ account: accounts, domain: { name: domains.name, status: domains.status } })
        .from(accounts)
        .innerJoin(domains, eq(domains.id, accounts.domainId))
        .where(eq(accounts.id, id));
      if (!found) throw new NotFoundError('mailbox_not_found', `There is no mailbox ${address}`);
      const { account, domain } = found;
      const now = Date.now();
      const lastLogins = {
        imap: account.imapLastLoginAt && { at: account.imapLastLoginAt.toISOString(), ip: account.imapLastLoginIp },
        pop3: account.pop3LastLoginAt && { at: account.pop3LastLoginAt.toISOString(), ip: account.pop3LastLoginIp },
      };
      const [failedLogins, lockout] = await Promise.all([recentFailedLogins(db, id), throttle.get(account.address, actor)]);
      const ips = [...failedLogins.map((failure) => failure.ip), ...MAIL_PROTOCOLS.flatMap((p) => lastLogins[p]?.ip ?? [])];
      const clients = await throttle.clients(ips);
      const protocols = {
        imap: { ...switchOf(account, 'imap', now), lastLogin: lastLogins.imap },
        pop3: { ...switchOf(account, 'pop3', now), lastLogin: lastLogins.pop3 },
      };

      const blockers: LoginCheck['blockers'] = [];
      if (account.status === 'suspended') blockers.push({ code: 'mailbox_suspended', detail: 'The mailbox is suspended: every login is refused' });
      if (domain.status === 'suspended') {
        blockers.push({ code: 'domain_suspended', detail: `The domain ${domain.name} is suspended: every login to its mailboxes is refused` });
      }
      for (const protocol of MAIL_PROTOCOLS) {
        const { enabled, reason, until } = protocols[protocol];
        if (enabled) continue;
        const why = reason === null ? '' : ` (${reason})`;
        const back = until === null ? '' : `; it comes back by itself at ${until}`;
        blockers.push({ code: 'protocol_disabled', detail: `${protocol.toUpperCase()} is switched off${why}${back}` });
      }
      if (lockout.locked) {
        blockers.push({
          code: 'mailbox_locked',
          detail: `Too many failed logins locked the mailbox until ${lockout.lockedUntil}, even for its right password; clearing the lockout lets it in again`,
        });
      }
      for (const client of clients.filter((c) => c.locked)) {
        blockers.push({
          code: 'client_address_locked',
          detail: `Too many failed logins locked the client address ${client.address} out of every mailbox until ${client.lockedUntil}`,
        });
      }
      const open = account.status === 'active' && domain.status === 'active' && !lockout.locked;
      return {
        address: account.address,
        canLogIn: { imap: open && protocols.imap.enabled, pop3: open && protocols.pop3.enabled },
        blockers,
        status: account.status,
        domain,
        protocols,
        lockout,
        // Failures of a client address count every tenant's mailboxes: a confined key sees the lock, not the count.
        clientAddresses: clients.map((client) => ({ ...client, recentFailures: actor.domains === null ? client.recentFailures : null })),
        failedLogins,
        quota: {
          limits: { storageBytes: account.quotaBytes, messages: account.quotaMessages },
          usage: { storageBytes: account.usedBytes, messages: account.usedMessages },
          ...quotaState({ storageBytes: account.quotaBytes, messages: account.quotaMessages }, { storageBytes: account.usedBytes, messages: account.usedMessages }),
        },
        password: {
          changedAt: account.passwordChangedAt.toISOString(),
          ageDays: Math.floor((now - account.passwordChangedAt.getTime()) / DAY_MS),
        },
        checkedAt: new Date(now).toISOString(),
      };
    },
  };
}

export type LoginCheckService = ReturnType<typeof createLoginCheck>;
