import argon2 from 'argon2';
import bcrypt from 'bcryptjs';
import t, { type Test } from 'tap';
import { encrypt } from 'unixcrypt';
import {
  checkPasswordPolicy,
  hashPassword,
  hashScheme,
  importPasswordHash,
  PASSWORD_MAX_LENGTH,
  verifyPassword,
} from '../../src/core/auth/passwords.js';
import { InvalidError } from '../../src/core/errors.js';

const PASSWORD = 'correct horse battery staple';

/** The `m`, `t` and `p` of an argon2 PHC string, whatever order they are written in. */
function argon2Params(hash: string): Record<string, number> {
  const params = hash.split('$')[3]!;
  return Object.fromEntries(params.split(',').map((pair) => [pair.split('=')[0], Number(pair.split('=')[1])]));
}

/** Rewrites an argon2 hash's parameters in the m,t,p order libargon2 and Dovecot write. */
function mtpOrder(hash: string): string {
  const parts = hash.split('$');
  const { m, t, p } = argon2Params(hash);
  parts[3] = `m=${m},t=${t},p=${p}`;
  return parts.join('$');
}

function refusal(t: Test, fn: () => unknown, code: string, label: string): void {
  try {
    fn();
    t.fail(`${label}: accepted`);
  } catch (error) {
    t.type(error, InvalidError, label);
    t.equal((error as InvalidError).code, code, `${label}: ${code}`);
  }
}

t.test('hashPassword makes argon2id with the OWASP parameters, salted', async (t) => {
  const hash = await hashPassword(PASSWORD);
  t.match(hash, /^\$argon2id\$v=19\$/);
  t.same(argon2Params(hash), { m: 19456, t: 2, p: 1 });
  t.not(await hashPassword(PASSWORD), hash, 'a new salt every time');
  t.equal(hashScheme(hash), 'argon2id');
  t.same(await verifyPassword(hash, PASSWORD), { valid: true, needsRehash: false });
  t.same(await verifyPassword(hash, 'correct horse battery stapler'), { valid: false, needsRehash: false });
  t.same(await verifyPassword(hash, ''), { valid: false, needsRehash: false });
});

t.test('a hash made by hashPassword can be imported (an export from another Mailroom)', async (t) => {
  const hash = await hashPassword(PASSWORD);
  t.equal(importPasswordHash(hash), hash);
});

interface Imported {
  label: string;
  input: string;
  stored: string;
  password: string;
  scheme: string;
  legacy: boolean;
}

async function importedHashes(): Promise<Imported[]> {
  const kinds: Imported[] = [];
  const add = (label: string, input: string, password: string, scheme: string, legacy: boolean, stored = input) =>
    kinds.push({ label, input, stored, password, scheme, legacy });

  // argon2id as node-argon2 writes it (m,p,t) and as libargon2/Dovecot write it (m,t,p).
  const argon2id = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: 65536, timeCost: 3, parallelism: 4 });
  add('argon2id (node-argon2, other parameters)', argon2id, PASSWORD, 'argon2id', true);
  add('argon2id (m,t,p order)', mtpOrder(argon2id), PASSWORD, 'argon2id', true);
  const current = await hashPassword(PASSWORD);
  add('argon2id with current parameters, m,t,p order', mtpOrder(current), PASSWORD, 'argon2id', false);
  add('{ARGON2ID} prefix (Dovecot)', `{ARGON2ID}${mtpOrder(argon2id)}`, PASSWORD, 'argon2id', true, mtpOrder(argon2id));

  // bcrypt: $2b$ from bcryptjs; $2a$ and $2y$ are the same algorithm under older names.
  const salt = bcrypt.genSaltSync(4);
  if (!salt.startsWith('$2b$04$')) throw new Error(`bcryptjs made an unexpected salt ${salt}`);
  for (const minor of ['a', 'b', 'y']) {
    const hash = bcrypt.hashSync(PASSWORD, salt.replace('$2b$', `$2${minor}$`));
    add(`bcrypt $2${minor}$`, hash, PASSWORD, 'bcrypt', true);
  }
  const blf = bcrypt.hashSync(PASSWORD, bcrypt.genSaltSync(5).replace('$2b$', '$2y$'));
  add('{BLF-CRYPT} prefix (Dovecot)', `{BLF-CRYPT}${blf}`, PASSWORD, 'bcrypt', true, blf);
  // OpenBSD/openwall crypt_blowfish test vector.
  add('bcrypt test vector', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW', 'U*U', 'bcrypt', true);

  // SHA-crypt, with default rounds (no rounds= field) and with rounds=.
  const sha512 = encrypt(PASSWORD, '$6$J8dzZx0zP3U1kd9M');
  add('SHA512-CRYPT', sha512, PASSWORD, 'sha512-crypt', true);
  add('SHA512-CRYPT rounds=', encrypt(PASSWORD, '$6$rounds=10000$x5.Gk/aq'), PASSWORD, 'sha512-crypt', true);
  add('SHA512-CRYPT explicit rounds=5000', encrypt(PASSWORD, '$6$rounds=5000$abcdefgh'), PASSWORD, 'sha512-crypt', true);
  add('{SHA512-CRYPT} prefix (Dovecot)', `{SHA512-CRYPT}${sha512}`, PASSWORD, 'sha512-crypt', true, sha512);
  add('{sha512-crypt} prefix in lowercase', `{sha512-crypt}${sha512}`, PASSWORD, 'sha512-crypt', true, sha512);
  const sha256 = encrypt(PASSWORD, '$5$Qw3rTyuI0pAsDfGh');
  add('SHA256-CRYPT', sha256, PASSWORD, 'sha256-crypt', true);
  add('SHA256-CRYPT rounds=', encrypt(PASSWORD, '$5$rounds=20000$saltsalt'), PASSWORD, 'sha256-crypt', true);
  add('{SHA256-CRYPT} prefix (Dovecot)', `{SHA256-CRYPT}${sha256}`, PASSWORD, 'sha256-crypt', true, sha256);
  // Test vectors from Ulrich Drepper's SHA-crypt specification.
  add(
    'SHA512-CRYPT test vector',
    '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1',
    'Hello world!',
    'sha512-crypt',
    true,
  );
  add(
    'SHA512-CRYPT rounds test vector',
    '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.',
    'Hello world!',
    'sha512-crypt',
    true,
  );
  add('SHA256-CRYPT test vector', '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5', 'Hello world!', 'sha256-crypt', true);
  // Exports often carry a line break or spaces around the hash.
  add('surrounding whitespace', `  ${sha512}\n`, PASSWORD, 'sha512-crypt', true, sha512);
  return kinds;
}

t.test('imported hashes are accepted, verify, and ask to be rehashed when legacy', async (t) => {
  for (const kind of await importedHashes()) {
    const stored = importPasswordHash(kind.input);
    t.equal(stored, kind.stored, `${kind.label}: stored without prefix or whitespace`);
    t.equal(hashScheme(stored), kind.scheme, `${kind.label}: scheme ${kind.scheme}`);
    t.same(
      await verifyPassword(stored, kind.password),
      { valid: true, needsRehash: kind.legacy },
      `${kind.label}: the right password verifies${kind.legacy ? ' and asks for a rehash' : ''}`,
    );
    t.same(
      await verifyPassword(stored, `${kind.password}x`),
      { valid: false, needsRehash: false },
      `${kind.label}: a wrong password does not`,
    );
  }
});

t.test('garbage and unsupported kinds are refused as invalid_password_hash', async (t) => {
  const argon2i = await argon2.hash(PASSWORD, { type: argon2.argon2i });
  const argon2d = await argon2.hash(PASSWORD, { type: argon2.argon2d });
  const sha512 = encrypt(PASSWORD, '$6$J8dzZx0zP3U1kd9M');
  const refused: [string, string][] = [
    ['empty', ''],
    ['a plain password', PASSWORD],
    ['{PLAIN}', `{PLAIN}${PASSWORD}`],
    ['{SSHA}', '{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g7Vnr6'],
    ['{PLAIN-MD5}', '{PLAIN-MD5}5f4dcc3b5aa765d61d8327deb882cf99'],
    ['argon2i', argon2i],
    ['argon2d', argon2d],
    ['argon2i with an {ARGON2ID} prefix', `{ARGON2ID}${argon2i}`],
    ['argon2 version 0x10', mtpOrder(await hashPassword(PASSWORD)).replace('v=19', 'v=16')],
    ['MD5-crypt $1$', '$1$saltstri$YMyguxXMBpd2TEZ.vS/3q1'],
    ['{MD5-CRYPT}', '{MD5-CRYPT}$1$saltstri$YMyguxXMBpd2TEZ.vS/3q1'],
    ['DES crypt', 'saHW9GdxihkGQ'],
    ['truncated SHA512-CRYPT', sha512.slice(0, -1)],
    ['SHA512-CRYPT with a character too many', `${sha512}a`],
    ['SHA512-CRYPT with an empty salt', `$6$$${sha512.split('$')[3]}`],
    ['bcrypt with a truncated hash', bcrypt.hashSync(PASSWORD, 4).slice(0, -1)],
    ['bcrypt $2x$', bcrypt.hashSync(PASSWORD, 4).replace('$2b$', '$2x$')],
    ['an unknown prefix', `{SCRAM-SHA-256}${sha512}`],
    ['two hashes', `${sha512}\n${sha512}`],
  ];
  for (const [label, input] of refused) refusal(t, () => importPasswordHash(input), 'invalid_password_hash', label);
});

t.test('over-expensive or broken cost parameters are refused', async (t) => {
  const bcryptHash = bcrypt.hashSync(PASSWORD, 4);
  const sha512 = encrypt(PASSWORD, '$6$J8dzZx0zP3U1kd9M');
  const sha256 = encrypt(PASSWORD, '$5$Qw3rTyuI0pAsDfGh');
  const argon2id = mtpOrder(await hashPassword(PASSWORD));
  const withCost = (m: number | string, t: number | string, p: number | string) =>
    argon2id.replace('m=19456,t=2,p=1', `m=${m},t=${t},p=${p}`);
  const rounds = (hash: string, n: number) => hash.replace(/^\$([56])\$/, `$$$1$rounds=${n}$`);

  // The most the server agrees to verify.
  for (const [label, hash] of [
    ['bcrypt cost 15', bcryptHash.replace('$04$', '$15$')],
    ['SHA512-CRYPT rounds=200000', rounds(sha512, 200000)],
    ['SHA256-CRYPT rounds=200000', rounds(sha256, 200000)],
    ['argon2 m=262144', withCost(262144, 2, 1)],
    ['argon2 t=10 p=16', withCost(19456, 10, 16)],
    ['argon2 in m,p,t order', argon2id.replace('m=19456,t=2,p=1', 'm=262144,p=1,t=2')],
  ] as const) {
    t.equal(importPasswordHash(hash), hash, `${label} is accepted`);
  }

  for (const [label, hash] of [
    ['bcrypt cost 16', bcryptHash.replace('$04$', '$16$')],
    ['bcrypt cost 31', bcryptHash.replace('$04$', '$31$')],
    ['bcrypt cost 03', bcryptHash.replace('$04$', '$03$')],
    ['SHA512-CRYPT rounds=200001', rounds(sha512, 200001)],
    ['SHA512-CRYPT rounds=999999999', rounds(sha512, 999999999)],
    ['SHA256-CRYPT rounds=200001', rounds(sha256, 200001)],
    ['argon2 m=262145', withCost(262145, 2, 1)],
    ['argon2 m=4194304', withCost(4194304, 2, 1)],
    ['argon2 t=11', withCost(19456, 11, 1)],
    ['argon2 p=17', withCost(19456, 2, 17)],
    ['argon2 m,p,t order with m too big', argon2id.replace('m=19456,t=2,p=1', 'm=262145,p=1,t=2')],
    // Below argon2's own minimums: verification would throw instead of answering.
    ['argon2 m=1', withCost(1, 2, 1)],
    ['argon2 m below 8 per lane', withCost(64, 1, 16)],
    ['argon2 t=0', withCost(19456, 0, 1)],
    ['argon2 p=0', withCost(19456, 2, 0)],
    ['argon2 with a parameter twice', argon2id.replace('m=19456,t=2,p=1', 'm=19456,m=19456,t=2')],
  ] as const) {
    refusal(t, () => importPasswordHash(hash), 'invalid_password_hash', label);
  }
});

t.test('the refusal names the passwordHash field and never echoes the hash', async (t) => {
  const hash = '$1$saltstri$YMyguxXMBpd2TEZ.vS/3q1';
  try {
    importPasswordHash(hash);
    t.fail('accepted');
  } catch (error) {
    t.same((error as InvalidError).details, { field: 'passwordHash' });
    t.notMatch((error as Error).message, hash);
  }
});

t.test('checkPasswordPolicy', async (t) => {
  const policy = { minLength: 10 };
  const weak = (password: string, label: string, localPart = 'ann') =>
    refusal(t, () => checkPasswordPolicy(password, policy, localPart), 'password_too_weak', label);
  const fine = (password: string, label: string, localPart = 'ann') =>
    t.doesNotThrow(() => checkPasswordPolicy(password, policy, localPart), label);

  fine('abcdefghij', 'exactly the minimum length');
  weak('abcdefghi', 'one character short');
  weak('', 'empty');
  t.doesNotThrow(() => checkPasswordPolicy('abc', { minLength: 3 }, 'ann'), 'the minimum comes from the policy');

  // Characters, not UTF-16 code units: 10 emoji are 10 characters (20 code units).
  const emoji = ['😀', '🎉', '🚀', '🌍', '🔑', '📬', '🐙', '🍕', '🎸', '🧩'];
  fine(emoji.join(''), '10 emoji count as 10 characters');
  weak(emoji.slice(0, 9).join(''), '9 emoji (18 code units) are too short');
  fine('pässwörter', '10 accented letters');

  const long = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(40);
  fine(long.slice(0, PASSWORD_MAX_LENGTH), `exactly ${PASSWORD_MAX_LENGTH} characters`);
  weak(long.slice(0, PASSWORD_MAX_LENGTH + 1), `${PASSWORD_MAX_LENGTH + 1} characters`);
  t.equal(PASSWORD_MAX_LENGTH, 1024);

  weak(' abcdefghij', 'a leading space');
  weak('abcdefghij ', 'a trailing space');
  weak('\tabcdefghij', 'a leading tab');
  weak('abcdefghij\n', 'a trailing line break');
  fine('correct horse battery staple', 'spaces inside are fine');

  weak('my-annabelle-2026', 'containing the local part', 'annabelle');
  weak('MY-ANNABELLE-2026', 'containing the local part in another case', 'annabelle');
  fine('my-anna-belle-2026', 'the local part broken up is fine', 'annabelle');
  fine('my-jo-password', 'a local part under 3 characters is not checked', 'jo');

  weak('aaaaaaaaaaaa', 'one character repeated');
  weak('😀'.repeat(12), 'one emoji repeated');
  fine('abababababab', 'two characters alternating is not one repeated');

  try {
    checkPasswordPolicy('short', policy, 'ann');
  } catch (error) {
    t.same((error as InvalidError).details, { field: 'password' });
    t.match((error as Error).message, /at least 10 characters/, 'the reason is readable');
    t.notMatch((error as Error).message, /short/, 'the password is not echoed');
  }
});
