import { isIP, isIPv6 } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { and, eq, gt, inArray, isNull, lte, or, type SQL, sql } from 'drizzle-orm';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Database } from '../../db/client.js';
import { loginFailures } from '../../db/schema/index.js';
import type { Actor } from '../actor.js';
import type { AuditService } from '../audit/service.js';
import { ForbiddenError, InvalidError } from '../errors.js';
import type { MailboxService } from '../mailboxes/service.js';

export interface LoginThrottleSettings {
  /** Failed logins from one client address within lockSeconds that lock it out; 0: never. */
  failuresPerIp: number;
  /** Failed logins to one mailbox, from anywhere, within lockSeconds that lock it out; 0: never. */
  failuresPerMailbox: number;
  /** How long failures are remembered, and how long a lock lasts. */
  lockSeconds: number;
  /** The longest a failed answer is held back; reached at the per-address threshold. 0: never. */
  maxDelayMs: number;
}

/** For tools and tests that do not serve mail clients: nothing is counted. */
export const THROTTLE_OFF: LoginThrottleSettings = { failuresPerIp: 0, failuresPerMailbox: 0, lockSeconds: 900, maxDelayMs: 0 };

export type LockoutKind = 'ip' | 'mailbox';

export interface LockoutView {
  locked: boolean;
  lockedUntil: string | null;
  /** Failed logins counted towards the next lock. */
  recentFailures: number;
}

/** An attempt's standing before its password is checked. */
export interface LoginStanding {
  lockedOut: LockoutKind | null;
  /** Whether a success has failures of this mailbox to forget. */
  mailboxFailures: boolean;
}

/**
 * IPv6 clients are usually handed a whole /64, so one counts as one client address; an attacker
 * would otherwise have 2^64 fresh addresses.
 */
export function clientKey(ip: string): string {
  if (!isIPv6(ip)) return ip;
  const [head = '', tail] = ip.split('%')[0]!.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((group) => parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}

const SYSTEM: Omit<Actor, 'ip'> = { id: 'login-throttle', name: 'login throttle', domains: null };

/**
 * Counts failed logins per client address and per mailbox in Postgres, so every door and every
 * gateway process sees the same counts. Unknown addresses count per client address only: rows
 * for mailboxes that do not exist would let anyone fill the table.
 */
export function createLoginThrottle(
  db: Database,
  audit: AuditService,
  mailboxes: MailboxService,
  settings: LoginThrottleSettings,
  metrics: Registry,
) {
  const period = sql`${settings.lockSeconds} * interval '1 second'`;
  const enabled = settings.failuresPerIp > 0 || settings.failuresPerMailbox > 0;
  const failures = new Counter({
    name: 'mailroom_login_failures_total',
    help: 'Failed POP3 and IMAP logins (wrong password or unknown mailbox)',
    labelNames: ['protocol'],
    registers: [metrics],
  });
  const throttled = new Counter({
    name: 'mailroom_login_throttled_total',
    help: 'Logins refused while locked out (ip_locked, mailbox_locked) or failures answered late (delayed)',
    labelNames: ['protocol', 'reason'],
    registers: [metrics],
  });
  const lockouts = new Counter({
    name: 'mailroom_login_lockouts_total',
    help: 'Lockouts started by this process, by what was locked (ip, mailbox)',
    labelNames: ['kind'],
    registers: [metrics],
  });
  new Gauge({
    name: 'mailroom_login_lockouts_active',
    help: 'Lockouts in force now, on every gateway process',
    labelNames: ['kind'],
    registers: [metrics],
    async collect() {
      // A database that does not answer leaves the last values, and the rest of /metrics stands.
      const rows = await db
        .select({ kind: loginFailures.kind, count: sql<number>`count(*)::int` })
        .from(loginFailures)
        .where(gt(loginFailures.lockedUntil, sql`now()`))
        .groupBy(loginFailures.kind)
        .catch(() => null);
      if (rows === null) return;
      for (const kind of ['ip', 'mailbox'] as const) this.set({ kind }, rows.find((row) => row.kind === kind)?.count ?? 0);
    },
  });

  const threshold = (kind: LockoutKind) => (kind === 'ip' ? settings.failuresPerIp : settings.failuresPerMailbox);
  const keyOf = (kind: LockoutKind, key: string): SQL => and(eq(loginFailures.kind, kind), eq(loginFailures.key, key))!;
  const recent = sql`${loginFailures.firstFailureAt} > now() - ${period}`;

  /** Failures that count: those of the current period (lockedUntil stays readable either way). */
  const viewColumns = {
    key: loginFailures.key,
    lockedUntil: loginFailures.lockedUntil,
    locked: sql<boolean>`coalesce(${loginFailures.lockedUntil} > now(), false)`,
    recentFailures: sql<number>`case when ${recent} then ${loginFailures.failures} else 0 end`,
  };
  function viewOf(row: { locked: boolean; lockedUntil: Date | null; recentFailures: number } | undefined): LockoutView {
    if (!row?.locked) return { locked: false, lockedUntil: null, recentFailures: row?.recentFailures ?? 0 };
    return { locked: true, lockedUntil: row.lockedUntil!.toISOString(), recentFailures: row.recentFailures };
  }
  async function view(kind: LockoutKind, key: string): Promise<LockoutView> {
    const [row] = await db.select(viewColumns).from(loginFailures).where(keyOf(kind, key));
    return viewOf(row);
  }

  return {
    /** Read before the password is checked, so a locked-out attempt costs no password hashing. */
    async standing(ip: string, address: string | null): Promise<LoginStanding> {
      if (!enabled) return { lockedOut: null, mailboxFailures: false };
      const rows = await db
        .select({ kind: loginFailures.kind, locked: sql<boolean>`coalesce(${loginFailures.lockedUntil} > now(), false)` })
        .from(loginFailures)
        .where(or(keyOf('ip', clientKey(ip)), address === null ? undefined : keyOf('mailbox', address)));
      const locked = (kind: LockoutKind) => rows.some((row) => row.kind === kind && row.locked);
      return {
        lockedOut: locked('ip') ? 'ip' : locked('mailbox') ? 'mailbox' : null,
        mailboxFailures: rows.some((row) => row.kind === 'mailbox'),
      };
    },

    refused(protocol: string, kind: LockoutKind): void {
      throttled.inc({ protocol, reason: `${kind}_locked` });
    },

    /**
     * Counts a failed login against the client address and, when it exists, the mailbox; starts
     * a lock at a threshold, then holds the answer back the longer the address keeps failing.
     * The delay follows the address only, so it tells nothing about whether a mailbox exists.
     */
    async failed(attempt: { ip: string; protocol: string; mailbox: string | null }): Promise<void> {
      failures.inc({ protocol: attempt.protocol });
      const rows = (
        [
          ['ip', clientKey(attempt.ip)],
          ['mailbox', attempt.mailbox],
        ] as const
      ).flatMap(([kind, key]) =>
        key === null || threshold(kind) === 0
          ? []
          : [{ kind, key, failures: 1, lockedUntil: threshold(kind) === 1 ? sql`now() + ${period}` : null }],
      );
      if (rows.length === 0) return;
      const stale = sql`${loginFailures.firstFailureAt} <= now() - ${period}`;
      const limit = sql`case ${loginFailures.kind} when 'ip' then ${settings.failuresPerIp}::int else ${settings.failuresPerMailbox}::int end`;
      const counted = await db
        .insert(loginFailures)
        .values(rows)
        .onConflictDoUpdate({
          target: [loginFailures.kind, loginFailures.key],
          set: {
            failures: sql`case when ${stale} then 1 else ${loginFailures.failures} + 1 end`,
            firstFailureAt: sql`case when ${stale} then now() else ${loginFailures.firstFailureAt} end`,
            // Exactly one failure meets the threshold, so exactly one starts the lock.
            lockedUntil: sql`case when (case when ${stale} then 1 else ${loginFailures.failures} + 1 end) = ${limit}
              then now() + ${period} else ${loginFailures.lockedUntil} end`,
          },
        })
        .returning({ kind: loginFailures.kind, key: loginFailures.key, failures: loginFailures.failures, lockedUntil: loginFailures.lockedUntil });
      for (const row of counted.filter((row) => row.failures === threshold(row.kind))) {
        lockouts.inc({ kind: row.kind });
        const after = { failures: row.failures, lockedUntil: row.lockedUntil?.toISOString() ?? null, protocol: attempt.protocol };
        await audit.recordAfter(
          { ...SYSTEM, ip: attempt.ip },
          row.kind === 'mailbox'
            ? { action: 'mailbox.login_lockout.start', targetType: 'mailbox', target: row.key, domain: row.key.slice(row.key.lastIndexOf('@') + 1), after }
            : { action: 'login_lockout.start', targetType: 'client_address', target: row.key, domain: null, after },
        );
      }
      const ip = counted.find((row) => row.kind === 'ip');
      const soft = Math.floor(settings.failuresPerIp / 2);
      if (ip === undefined || settings.maxDelayMs === 0 || ip.failures <= soft) return;
      throttled.inc({ protocol: attempt.protocol, reason: 'delayed' });
      await sleep((settings.maxDelayMs * Math.min(ip.failures - soft, settings.failuresPerIp - soft)) / (settings.failuresPerIp - soft));
    },

    /** The owner is in: earlier failures against the mailbox no longer count. The address's do. */
    async succeeded(address: string): Promise<void> {
      await db
        .delete(loginFailures)
        .where(and(keyOf('mailbox', address), or(isNull(loginFailures.lockedUntil), lte(loginFailures.lockedUntil, sql`now()`))));
    },

    /** Drops counts whose period and lock are both over; run now and then by each gateway. */
    async forgetExpired(): Promise<void> {
      await db
        .delete(loginFailures)
        .where(
          and(
            sql`${loginFailures.firstFailureAt} <= now() - ${period}`,
            or(isNull(loginFailures.lockedUntil), lte(loginFailures.lockedUntil, sql`now()`)),
          ),
        );
    },

    /** A mailbox's lockout as support sees it. */
    async get(address: string, actor: Actor): Promise<LockoutView> {
      return view('mailbox', (await mailboxes.find(address, actor)).address);
    },

    /** Lifts a mailbox's lockout and forgets its failures; client addresses stay counted. */
    async clear(address: string, actor: Actor): Promise<void> {
      const account = await mailboxes.find(address, actor);
      const before = await view('mailbox', account.address);
      await db.transaction(async (tx) => {
        await tx.delete(loginFailures).where(keyOf('mailbox', account.address));
        await audit.record(tx, actor, {
          action: 'mailbox.login_lockout.clear',
          targetType: 'mailbox',
          target: account.address,
          domain: account.address.slice(account.address.lastIndexOf('@') + 1),
          before: { ...before },
        });
      });
    },

    /**
     * The lockouts of the client addresses of a mailbox's logins, each once (an IPv6 address
     * stands for its /64), for support's login check; the caller decides what a tenant may see.
     */
    async clients(ips: readonly string[]): Promise<(LockoutView & { address: string })[]> {
      const keys = [...new Set(ips.map(clientKey))];
      if (keys.length === 0) return [];
      const rows = await db
        .select(viewColumns)
        .from(loginFailures)
        .where(and(eq(loginFailures.kind, 'ip'), inArray(loginFailures.key, keys)));
      return keys.map((key) => ({ address: key, ...viewOf(rows.find((row) => row.key === key)) }));
    },

    /** A client address's lockout (an IPv6 address stands for its /64); not a tenant's to see. */
    async getClient(ip: string, actor: Actor): Promise<LockoutView> {
      return view('ip', clientKey(unconfined(ip, actor)));
    },

    /** Lifts a client address's lockout (an office behind one NAT address, say) and forgets its failures. */
    async clearClient(ip: string, actor: Actor): Promise<void> {
      const key = clientKey(unconfined(ip, actor));
      const before = await view('ip', key);
      await db.transaction(async (tx) => {
        await tx.delete(loginFailures).where(keyOf('ip', key));
        await audit.record(tx, actor, { action: 'login_lockout.clear', targetType: 'client_address', target: key, domain: null, before: { ...before } });
      });
    },
  };
}

/** Client addresses belong to no domain: a key confined to some may not look at them. */
function unconfined(ip: string, actor: Actor): string {
  if (actor.domains !== null) throw new ForbiddenError('domain_confined', 'This API key is confined to domains; client addresses belong to none');
  if (!isIP(ip)) throw new InvalidError('invalid_ip', `${ip.slice(0, 60)} is not an IP address`);
  return ip;
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
