import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import type { Database } from '../../db/client.js';
import { accounts, domains } from '../../db/schema/index.js';
import { normalizeAddress } from '../addresses.js';
import { DomainError } from '../errors.js';
import { enabledNow } from '../mailboxes/protocol-switches.js';
import type { Metrics } from '../metrics.js';
import { type FailureReason, recordFailedLogin } from './failed-logins.js';
import { hashPassword, verifyPassword } from './passwords.js';
import type { LoginThrottle } from './throttle.js';

export type MailProtocol = 'imap' | 'pop3';

/**
 * Why a login was refused; doors map these to IMAP [AUTHENTICATIONFAILED] / POP3 [AUTH] and so on.
 * locked_out is temporary: the password was not even checked.
 */
export type LoginRefusal = 'invalid_credentials' | 'protocol_disabled' | 'mailbox_suspended' | 'locked_out';

const LOCKED_OUT = {
  ip: 'Too many failed logins from your address; try again later',
  mailbox: 'Too many failed logins to this mailbox; try again later or ask support to unlock it',
};

export class LoginError extends DomainError {
  constructor(readonly refusal: LoginRefusal, message: string) {
    super('forbidden', refusal, message);
  }
}

export interface LoginAccount {
  accountId: number;
  address: string;
  /** Changes with every password change; live sessions compare it to notice. */
  passwordVersion: number;
  pop3DeleteMode: 'remove' | 'hide' | 'trash';
}

// Verified when the address is unknown, so that answer takes as long as a wrong password.
let decoyHash: Promise<string> | undefined;

/**
 * Remembers passwords that verified, as a keyed digest, so a client logging in every minute does
 * not cost an argon2 verification each time (Dovecot's auth cache does the same). An entry holds
 * only while the stored hash is the one it was made from: a new password misses it at once.
 * Wrong passwords are never remembered, so guessing stays as slow as argon2 makes it.
 */
class VerifiedPasswords {
  private readonly key = randomBytes(32);
  private readonly entries = new Map<number, { passwordHash: string; digest: Buffer; expires: number }>();

  constructor(
    private readonly capacity = 10_000,
    private readonly ttlMs = 15 * 60_000,
  ) {}

  private digest(password: string): Buffer {
    return createHmac('sha256', this.key).update(password).digest();
  }

  has(accountId: number, passwordHash: string, password: string): boolean {
    const entry = this.entries.get(accountId);
    if (!entry || entry.passwordHash !== passwordHash || entry.expires < Date.now()) return false;
    return timingSafeEqual(entry.digest, this.digest(password));
  }

  remember(accountId: number, passwordHash: string, password: string): void {
    this.entries.delete(accountId);
    if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(accountId, { passwordHash, digest: this.digest(password), expires: Date.now() + this.ttlMs });
  }
}

type LoginInput = { address: string; password: string; protocol: MailProtocol; ip: string };

export function createLoginService(db: Database, throttle: LoginThrottle, metrics: Pick<Metrics, 'logins'>) {
  const verified = new VerifiedPasswords();

  async function login(input: LoginInput): Promise<LoginAccount> {
    const invalid = new LoginError('invalid_credentials', 'Authentication failed');
    let address: string | null;
    try {
      address = normalizeAddress(input.address).address;
    } catch {
      address = null;
    }
    const [[found], standing] = await Promise.all([
      address === null
        ? []
        : db
            .select({ account: accounts, domainStatus: domains.status, imapOn: enabledNow('imap'), pop3On: enabledNow('pop3') })
            .from(accounts)
            .innerJoin(domains, eq(domains.id, accounts.domainId))
            .where(eq(accounts.address, address)),
      throttle.standing(input.ip, address),
    ]);
    const row = found?.account;
    // Kept for support only where the mailbox exists: rows for made-up addresses would let anyone fill the table.
    const fail = async (reason: FailureReason, error: LoginError) => {
      if (row) await recordFailedLogin(db, { accountId: row.id, protocol: input.protocol, ip: input.ip, reason });
      return error;
    };
    if (standing.lockedOut !== null) {
      throttle.refused(input.protocol, standing.lockedOut);
      throw await fail('locked', new LoginError('locked_out', LOCKED_OUT[standing.lockedOut]));
    }
    const failure = { ip: input.ip, protocol: input.protocol };
    if (!row) {
      decoyHash ??= hashPassword('a decoy for unknown addresses');
      await verifyPassword(await decoyHash, input.password);
      await throttle.failed({ ...failure, mailbox: null });
      throw invalid;
    }
    const { valid, needsRehash } = verified.has(row.id, row.passwordHash, input.password)
      ? { valid: true, needsRehash: false }
      : await verifyPassword(row.passwordHash, input.password);
    if (!valid) {
      await fail('wrong_password', invalid);
      await throttle.failed({ ...failure, mailbox: row.address });
      throw invalid;
    }
    if (standing.mailboxFailures) await throttle.succeeded(row.address);
    // Only after the password is right, so these answers tell nothing to a guesser.
    if (row.status === 'suspended') throw await fail('suspended', new LoginError('mailbox_suspended', 'The mailbox is suspended'));
    if (found!.domainStatus === 'suspended') {
      throw await fail('suspended', new LoginError('mailbox_suspended', "The mailbox's domain is suspended"));
    }
    if (!(input.protocol === 'imap' ? found!.imapOn : found!.pop3On)) {
      throw await fail('protocol_disabled', new LoginError('protocol_disabled', `${input.protocol.toUpperCase()} is disabled for this mailbox`));
    }
    const upgraded = needsRehash ? await hashPassword(input.password) : null;
    verified.remember(row.id, upgraded ?? row.passwordHash, input.password);
    await db
      .update(accounts)
      .set({
        lastLoginAt: sql`now()`,
        lastLoginProtocol: input.protocol,
        lastLoginIp: input.ip,
        ...(input.protocol === 'imap'
          ? { imapLastLoginAt: sql`now()`, imapLastLoginIp: input.ip }
          : { pop3LastLoginAt: sql`now()`, pop3LastLoginIp: input.ip }),
        // Compared with the hash just verified, so a password changed meanwhile is not overwritten.
        ...(upgraded === null ? {} : { passwordHash: upgraded }),
      })
      .where(and(eq(accounts.id, row.id), eq(accounts.passwordHash, row.passwordHash)));
    return { accountId: row.id, address: row.address, passwordVersion: row.passwordVersion, pop3DeleteMode: row.pop3DeleteMode };
  }

  return {
    /**
     * Checks a mail client's credentials. Unknown address and wrong password give the same
     * error after the same work; a right password on a legacy hash upgrades it to argon2id.
     */
    async login(input: LoginInput): Promise<LoginAccount> {
      try {
        const account = await login(input);
        metrics.logins.inc({ protocol: input.protocol, result: 'ok' });
        return account;
      } catch (error) {
        if (error instanceof LoginError) metrics.logins.inc({ protocol: input.protocol, result: error.refusal });
        throw error;
      }
    },

    /**
     * A door refused credentials sent without TLS (LOGINDISABLED, POP3 USER before STLS): no
     * password was checked, but support sees the attempt when the mailbox exists.
     */
    async plaintextRefused(input: Omit<LoginInput, 'password'>): Promise<void> {
      let address: string;
      try {
        address = normalizeAddress(input.address).address;
      } catch {
        return;
      }
      const [row] = await db.select({ id: accounts.id }).from(accounts).where(eq(accounts.address, address));
      if (row) await recordFailedLogin(db, { accountId: row.id, protocol: input.protocol, ip: input.ip, reason: 'tls_required' });
    },

    /**
     * The account as a live session must re-check it after a change-feed event; null when deleted.
     * Suspended when its domain is.
     */
    async current(accountId: number) {
      const [row] = await db
        .select({
          status: sql<'active' | 'suspended'>`case when ${domains.status} = 'suspended' then 'suspended' else ${accounts.status} end`,
          imapEnabled: enabledNow('imap'),
          pop3Enabled: enabledNow('pop3'),
          passwordVersion: accounts.passwordVersion,
        })
        .from(accounts)
        .innerJoin(domains, eq(domains.id, accounts.domainId))
        .where(eq(accounts.id, accountId));
      return row ?? null;
    },
  };
}

export type LoginService = ReturnType<typeof createLoginService>;
