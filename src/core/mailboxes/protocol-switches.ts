import { type SQL, sql } from 'drizzle-orm';
import type { Database, Executor } from '../../db/client.js';
import { accounts } from '../../db/schema/index.js';
import type { Actor } from '../actor.js';
import type { AuditService } from '../audit/service.js';
import type { MailProtocol } from '../auth/login.js';
import { InvalidError } from '../errors.js';
import { publishChange } from '../events/changes.js';

export const MAIL_PROTOCOLS: readonly MailProtocol[] = ['imap', 'pop3'];

/** Why a protocol was switched, and when the switch flips back by itself (null: it stays). */
export interface SwitchNote {
  reason: string | null;
  until: string | null;
}

/** A protocol's switch as the API shows it; changedAt is null while it is as the mailbox was created. */
export interface ProtocolSwitch extends SwitchNote {
  enabled: boolean;
  changedAt: string | null;
}

/** A plain boolean switches and forgets any reason and expiry; the object form sets them. */
export type SwitchInput = boolean | { enabled: boolean; reason?: string | null; until?: string | null };

type AccountRow = typeof accounts.$inferSelect;

const COLUMNS = {
  imap: { enabled: accounts.imapEnabled, reason: accounts.imapReason, until: accounts.imapUntil, changedAt: accounts.imapChangedAt },
  pop3: { enabled: accounts.pop3Enabled, reason: accounts.pop3Reason, until: accounts.pop3Until, changedAt: accounts.pop3ChangedAt },
} as const;

/**
 * Whether the protocol is on now, in SQL: a switch whose `until` has passed counts as flipped
 * even before the sweep stores the flip, so logins follow the expiry to the second.
 */
export function enabledNow(protocol: MailProtocol): SQL<boolean> {
  const { enabled, until } = COLUMNS[protocol];
  return sql<boolean>`(${enabled} <> coalesce(${until} <= now(), false))`;
}

/** The switch as it stands at `now`, an expired one already flipped. */
export function switchOf(row: AccountRow, protocol: MailProtocol, now = Date.now()): ProtocolSwitch {
  const stored =
    protocol === 'imap'
      ? { enabled: row.imapEnabled, reason: row.imapReason, until: row.imapUntil, changedAt: row.imapChangedAt }
      : { enabled: row.pop3Enabled, reason: row.pop3Reason, until: row.pop3Until, changedAt: row.pop3ChangedAt };
  if (stored.until !== null && stored.until.getTime() <= now) {
    return { enabled: !stored.enabled, reason: null, until: null, changedAt: stored.until.toISOString() };
  }
  return {
    enabled: stored.enabled,
    reason: stored.reason,
    until: stored.until?.toISOString() ?? null,
    changedAt: stored.changedAt?.toISOString() ?? null,
  };
}

/** RFC 3339 with its offset: a time without one would be read in the server's zone. */
export const DATE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i;

/** The switch a change asks for, checked the same for every door. */
export function requestedSwitch(protocol: MailProtocol, input: SwitchInput): { enabled: boolean } & SwitchNote {
  if (typeof input === 'boolean') return { enabled: input, reason: null, until: null };
  const field = `protocols.${protocol}`;
  const reason = input.reason ?? null;
  if (reason !== null && (reason.length === 0 || reason.length > 500 || /[\u0000-\u001f\u007f]/.test(reason))) {
    throw new InvalidError('invalid_protocol_reason', 'A reason has 1 to 500 characters and no control characters', {
      field: `${field}.reason`,
    });
  }
  if (input.until === undefined || input.until === null) return { enabled: input.enabled, reason, until: null };
  const until = new Date(input.until);
  if (Number.isNaN(until.getTime()) || !DATE_TIME.test(input.until)) {
    throw new InvalidError('invalid_protocol_until', 'until is a date and time such as 2027-01-01T00:00:00Z', { field: `${field}.until` });
  }
  if (until.getTime() <= Date.now()) {
    throw new InvalidError('invalid_protocol_until', 'until must lie in the future', { field: `${field}.until` });
  }
  return { enabled: input.enabled, reason, until: until.toISOString() };
}

/** Written by the expiry sweep, as audit events name it. */
export const SYSTEM_ACTOR: Actor = { id: 'system', name: 'system', domains: null };

/**
 * Stores the flips of switches whose `until` has passed (of one account, or of every one), each
 * with its audit event and a change-feed notice, so live sessions re-check what they may do.
 * Several processes may sweep at once: each row is locked by the one that takes it and skipped by
 * the others, and once flipped it no longer matches, so every flip happens exactly once.
 */
export async function expireSwitches(tx: Executor, audit: AuditService, accountId?: number): Promise<number> {
  let flipped = 0;
  for (const protocol of MAIL_PROTOCOLS) {
    const c = COLUMNS[protocol];
    const result = await tx.execute(sql`
      with expired as (
        select ${accounts.id} as id, ${c.reason} as reason, ${c.until} as until
        from ${accounts} where ${c.until} <= now() ${accountId === undefined ? sql`` : sql`and ${accounts.id} = ${accountId}`}
        for update skip locked
      )
      update ${accounts} set
        ${sql.identifier(c.enabled.name)} = not ${c.enabled},
        ${sql.identifier(c.changedAt.name)} = expired.until,
        ${sql.identifier(c.reason.name)} = null,
        ${sql.identifier(c.until.name)} = null,
        ${sql.identifier(accounts.version.name)} = ${accounts.version} + 1,
        ${sql.identifier(accounts.updatedAt.name)} = now()
      from expired where ${accounts.id} = expired.id
      returning ${accounts.id} as id, ${accounts.address} as address, ${c.enabled} as enabled,
        expired.reason as reason, expired.until as until`);
    const rows = (result as unknown as { rows: { id: number | string; address: string; enabled: boolean; reason: string | null; until: Date | string }[] })
      .rows;
    for (const row of rows) {
      const until = new Date(row.until).toISOString();
      await audit.record(tx, SYSTEM_ACTOR, {
        action: 'mailbox.protocol_switch.expire',
        targetType: 'mailbox',
        target: row.address,
        domain: row.address.slice(row.address.lastIndexOf('@') + 1),
        before: { protocols: { [protocol]: !row.enabled }, protocolSwitches: { [protocol]: { reason: row.reason, until } } },
        after: { protocols: { [protocol]: row.enabled }, protocolSwitches: { [protocol]: { reason: null, until: null } } },
      });
      await publishChange(tx, { kind: 'account', accountId: Number(row.id), reason: 'protocols' });
    }
    flipped += rows.length;
  }
  return flipped;
}

export function createProtocolSwitchSweep(db: Database, audit: AuditService) {
  return {
    /** Flips every switch whose time is up; answers how many. Run now and then by every process. */
    async expire(): Promise<number> {
      return db.transaction((tx) => expireSwitches(tx, audit));
    },
  };
}

export type ProtocolSwitchSweep = ReturnType<typeof createProtocolSwitchSweep>;
