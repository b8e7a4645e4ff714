import argon2 from 'argon2';
import bcrypt from 'bcryptjs';
import { verify as verifyShaCrypt } from 'unixcrypt';
import { InvalidError } from '../errors.js';

/** OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane. Runs on libuv's thread pool. */
const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;
/** Longer passwords only cost hashing time and help nobody. */
export const PASSWORD_MAX_LENGTH = 1024;

export type HashScheme = 'argon2id' | 'bcrypt' | 'sha512-crypt' | 'sha256-crypt';

// Imported hashes are verified at login, so their cost parameters are capped: a hostile import
// must not be able to make one login take minutes or gigabytes.
const IMPORTED_HASHES: { scheme: HashScheme; pattern: RegExp; affordable: (match: RegExpMatchArray) => boolean }[] = [
  {
    scheme: 'argon2id',
    // libargon2 and Dovecot write m,t,p; node-argon2 (our own hashes) writes m,p,t.
    pattern: /^\$argon2id\$v=19\$((?:[mtp]=\d{1,7},){2}[mtp]=\d{1,7})\$[A-Za-z0-9+/]{11,}\$[A-Za-z0-9+/]{16,}$/,
    affordable: (match) => {
      const params = new Map(match[1]!.split(',').map((pair) => pair.split('=') as [string, string]));
      const [m, t, p] = ['m', 't', 'p'].map((name) => Number(params.get(name) ?? NaN)) as [number, number, number];
      // Below argon2's minimums (t >= 1, p >= 1, m >= 8p) verification would throw at every login.
      return t >= 1 && t <= 10 && p >= 1 && p <= 16 && m >= 8 * p && m <= 262144;
    },
  },
  {
    scheme: 'bcrypt',
    pattern: /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/,
    affordable: (m) => Number(m[1]) >= 4 && Number(m[1]) <= 15,
  },
  {
    scheme: 'sha512-crypt',
    pattern: /^\$6\$(?:rounds=(\d{1,9})\$)?[^$:\n]{1,16}\$[./A-Za-z0-9]{86}$/,
    affordable: (m) => m[1] === undefined || Number(m[1]) <= 200000,
  },
  {
    scheme: 'sha256-crypt',
    pattern: /^\$5\$(?:rounds=(\d{1,9})\$)?[^$:\n]{1,16}\$[./A-Za-z0-9]{43}$/,
    affordable: (m) => m[1] === undefined || Number(m[1]) <= 200000,
  },
];

// Dovecot and cPanel exports prefix hashes with their scheme, e.g. {SHA512-CRYPT}$6$...
const SCHEME_PREFIX = /^\{(ARGON2ID|BLF-CRYPT|SHA512-CRYPT|SHA256-CRYPT)\}/i;

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, ARGON2_OPTIONS);
}

/**
 * Accepts a hash exported from another system (argon2id, bcrypt, SHA512-CRYPT, SHA256-CRYPT)
 * and returns it in the form stored, or throws `invalid_password_hash`.
 */
export function importPasswordHash(input: string): string {
  const hash = input.trim().replace(SCHEME_PREFIX, '');
  for (const { pattern, affordable } of IMPORTED_HASHES) {
    const match = hash.match(pattern);
    if (match) {
      if (!affordable(match)) {
        throw new InvalidError('invalid_password_hash', 'The hash uses cost parameters beyond what this server verifies', {
          field: 'passwordHash',
        });
      }
      return hash;
    }
  }
  throw new InvalidError(
    'invalid_password_hash',
    'passwordHash must be an argon2id, bcrypt ($2b$), SHA512-CRYPT ($6$) or SHA256-CRYPT ($5$) hash',
    { field: 'passwordHash' },
  );
}

export function hashScheme(hash: string): HashScheme {
  if (hash.startsWith('$argon2id$')) return 'argon2id';
  if (hash.startsWith('$2')) return 'bcrypt';
  if (hash.startsWith('$6$')) return 'sha512-crypt';
  return 'sha256-crypt';
}

export interface Verification {
  valid: boolean;
  /** The password was right but the stored hash is legacy or weaker than today's parameters. */
  needsRehash: boolean;
}

export async function verifyPassword(hash: string, password: string): Promise<Verification> {
  const scheme = hashScheme(hash);
  let valid: boolean;
  if (scheme === 'argon2id') valid = await argon2.verify(hash, password);
  else if (scheme === 'bcrypt') valid = await bcrypt.compare(password, hash);
  else valid = verifyShaCrypt(password, hash);
  return { valid, needsRehash: valid && (scheme !== 'argon2id' || argon2.needsRehash(hash, ARGON2_OPTIONS)) };
}

export interface PasswordPolicy {
  minLength: number;
}

/** Throws `password_too_weak` with a reason a support agent can read out to the customer. */
export function checkPasswordPolicy(password: string, policy: PasswordPolicy, localPart: string): void {
  const reject = (reason: string) => {
    throw new InvalidError('password_too_weak', reason, { field: 'password' });
  };
  const length = [...password].length;
  if (length < policy.minLength) reject(`The password must be at least ${policy.minLength} characters long`);
  if (length > PASSWORD_MAX_LENGTH) reject(`The password must be at most ${PASSWORD_MAX_LENGTH} characters long`);
  if (password.trim() !== password) reject('The password must not start or end with spaces');
  if (localPart.length >= 3 && password.toLowerCase().includes(localPart)) {
    reject('The password must not contain the mailbox name');
  }
  if (new Set(password).size === 1) reject('The password must not be one character repeated');
}
