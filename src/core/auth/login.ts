import { and, eq, sql } from 'drizzle-orm';
import type { Database } from '../../db/client.js';
import { accounts } from '../../db/schema/index.js';
import { normalizeAddress } from '../addresses.js';
import { DomainError } from '../errors.js';
import { hashPassword, verifyPassword } from './passwords.js';

export type MailProtocol = 'imap' | 'pop3';

/** Why a login was refused; doors map these to IMAP [AUTHENTICATIONFAILED] / POP3 [AUTH] and so on. */
export type LoginRefusal = 'invalid_credentials' | 'protocol_disabled' | 'mailbox_suspended';

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

export function createLoginService(db: Database) {
  return {
    /**
     * Checks a mail client's credentials. Unknown address and wrong password give the same
     * error after the same work; a right password on a legacy hash upgrades it to argon2id.
     */
    async login(input: { address: string; password: string; protocol: MailProtocol; ip: string }): Promise<LoginAccount> {
      const invalid = new LoginError('invalid_credentials', 'Authentication failed');
      let address: string | null;
      try {
        address = normalizeAddress(input.address).address;
      } catch {
        address = null;
      }
      const [row] =
        address === null ? [] : await db.select().from(accounts).where(eq(accounts.address, address));
      if (!row) {
        decoyHash ??= hashPassword('a decoy for unknown addresses');
        await verifyPassword(await decoyHash, input.password);
        throw invalid;
      }
      const { valid, needsRehash } = await verifyPassword(row.passwordHash, input.password);
      if (!valid) throw invalid;
      // Only after the password is right, so these answers tell nothing to a guesser.
      if (row.status === 'suspended') throw new LoginError('mailbox_suspended', 'The mailbox is suspended');
      if (!(input.protocol === 'imap' ? row.imapEnabled : row.pop3Enabled)) {
        throw new LoginError('protocol_disabled', `${input.protocol.toUpperCase()} is disabled for this mailbox`);
      }
      const upgraded = needsRehash ? await hashPassword(input.password) : null;
      await db
        .update(accounts)
        .set({
          lastLoginAt: sql`now()`,
          lastLoginProtocol: input.protocol,
          lastLoginIp: input.ip,
          // Compared with the hash just verified, so a password changed meanwhile is not overwritten.
          ...(upgraded === null ? {} : { passwordHash: upgraded }),
        })
        .where(and(eq(accounts.id, row.id), eq(accounts.passwordHash, row.passwordHash)));
      return { accountId: row.id, address: row.address, passwordVersion: row.passwordVersion, pop3DeleteMode: row.pop3DeleteMode };
    },

    /** The account as a live session must re-check it after a change-feed event; null when deleted. */
    async current(accountId: number) {
      const [row] = await db
        .select({
          status: accounts.status,
          imapEnabled: accounts.imapEnabled,
          pop3Enabled: accounts.pop3Enabled,
          passwordVersion: accounts.passwordVersion,
        })
        .from(accounts)
        .where(eq(accounts.id, accountId));
      return row ?? null;
    },
  };
}

export type LoginService = ReturnType<typeof createLoginService>;
