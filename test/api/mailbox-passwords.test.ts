import argon2 from 'argon2';
import bcrypt from 'bcryptjs';
import t from 'tap';
import { encrypt } from 'unixcrypt';
import { verifyPassword } from '../../src/core/auth/passwords.js';
import { ADMIN_TOKEN, buildTestApi, PASSWORD } from '../helpers/api.js';
import { accountRow, apiClient, auditEvents, makeKey } from '../helpers/api-client.js';
import { assertProblem } from '../helpers/problem.js';

const api = await buildTestApi(t);
const client = apiClient(api.app);
const admin = client.as(api.admin);
const provisionerKey = await makeKey(api.services, 'provisioner', 'provisioning script');
const provisioner = client.as(provisionerKey.headers);
const supportKey = await makeKey(api.services, 'support', 'helpdesk');
const support = client.as(supportKey.headers);

/** Every secret this file sends; the last test proves none of them ever came back. */
const secrets = new Set<string>([PASSWORD, ADMIN_TOKEN, provisionerKey.token, supportKey.token]);
const secret = <T extends string>(value: T): T => {
  secrets.add(value);
  return value;
};

for (const name of ['pw.test', 'pw2.test']) {
  const created = await admin.post('/v1/domains', { name });
  if (created.statusCode !== 201) throw new Error(`setup: ${created.body}`);
}

// Real hashes of the kinds a migration brings along, made with the libraries other systems use.
const IMPORTED = secret('imported from the old server');
const HASHES = {
  argon2id: secret(await argon2.hash(IMPORTED, { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 })),
  bcrypt: secret(bcrypt.hashSync(IMPORTED, 4)),
  sha512: secret(encrypt(IMPORTED, '$6$J8dzZx0zP3U1kd9M')),
  sha512Rounds: secret(encrypt(IMPORTED, '$6$rounds=10000$x5.Gk/aq')),
  sha256: secret(encrypt(IMPORTED, '$5$Qw3rTyuI0pAsDfGh')),
};
if (!HASHES.bcrypt.startsWith('$2b$04$')) throw new Error(`bcryptjs made ${HASHES.bcrypt}`);

async function createMailbox(address: string, password = PASSWORD): Promise<void> {
  const created = await admin.post('/v1/mailboxes', { address, password });
  if (created.statusCode !== 201) throw new Error(`setup: mailbox ${address}: ${created.body}`);
}

/** The mailbox's ETag and stored password, to prove a refused change left both alone. */
async function passwordState(address: string) {
  const row = await accountRow(api.database, address);
  const read = await admin.get(`/v1/mailboxes/${address}`);
  return { etag: read.headers.etag, hash: row?.passwordHash, version: row?.passwordVersion, changedAt: row?.passwordChangedAt.toISOString() };
}

t.test('a password is stored as argon2id that verifies it; the hash is never shown', async (t) => {
  const password = secret('Tr0ub4dor & 3 more words');
  const created = await provisioner.post('/v1/mailboxes', { address: 'plain@pw.test', password });
  t.equal(created.statusCode, 201);
  const row = await accountRow(api.database, 'plain@pw.test');
  secrets.add(row!.passwordHash);
  t.match(row!.passwordHash, /^\$argon2id\$v=19\$/);
  t.same(await verifyPassword(row!.passwordHash, password), { valid: true, needsRehash: false });
  t.same(await verifyPassword(row!.passwordHash, `${password}!`), { valid: false, needsRehash: false });
  t.equal(row!.passwordVersion, 1);
  const events = (await auditEvents(admin, 'target=plain@pw.test')).items;
  t.equal(events[0]!.after!.passwordScheme, 'argon2id');
});

t.test('passwordHash imports argon2id, bcrypt $2b$, SHA512-CRYPT and SHA256-CRYPT hashes that keep working', async (t) => {
  const cases = [
    ['argon2id', HASHES.argon2id, HASHES.argon2id, 'argon2id'],
    ['bcrypt', HASHES.bcrypt, HASHES.bcrypt, 'bcrypt'],
    ['bcrypt $2y$', HASHES.bcrypt.replace('$2b$', '$2y$'), HASHES.bcrypt.replace('$2b$', '$2y$'), 'bcrypt'],
    ['sha512', HASHES.sha512, HASHES.sha512, 'sha512-crypt'],
    ['sha512 with rounds', HASHES.sha512Rounds, HASHES.sha512Rounds, 'sha512-crypt'],
    ['sha256', HASHES.sha256, HASHES.sha256, 'sha256-crypt'],
    ['dovecot prefix', `{SHA512-CRYPT}${HASHES.sha512}`, HASHES.sha512, 'sha512-crypt'],
    ['trailing newline', `${HASHES.sha256}\n`, HASHES.sha256, 'sha256-crypt'],
  ] as const;
  let n = 0;
  for (const [label, input, stored, scheme] of cases) {
    const address = `import${++n}@pw.test`;
    const created = await provisioner.post('/v1/mailboxes', { address, passwordHash: input });
    t.equal(created.statusCode, 201, `${label}: ${created.body.slice(0, 100)}`);
    const row = await accountRow(api.database, address);
    t.equal(row?.passwordHash, stored, `${label}: stored as given, without prefix or white space`);
    t.ok((await verifyPassword(row!.passwordHash, IMPORTED)).valid, `${label}: the old password still works`);
    t.notOk((await verifyPassword(row!.passwordHash, PASSWORD)).valid, `${label}: another does not`);
    const [event] = (await auditEvents(admin, `target=${address}`)).items;
    t.equal(event!.after!.passwordScheme, scheme, `${label}: audit names the scheme, not the hash`);
  }

  // PUT imports as well, for admin and provisioner keys.
  await createMailbox('reimport@pw.test');
  for (const [caller, hash, scheme] of [
    [provisioner, HASHES.bcrypt, 'bcrypt'],
    [admin, `{SHA256-CRYPT}${HASHES.sha256}`, 'sha256-crypt'],
  ] as const) {
    const put = await caller.put('/v1/mailboxes/reimport@pw.test/password', { passwordHash: hash });
    t.equal(put.statusCode, 204);
    const row = await accountRow(api.database, 'reimport@pw.test');
    t.ok((await verifyPassword(row!.passwordHash, IMPORTED)).valid);
    t.equal((await auditEvents(admin, 'target=reimport@pw.test&action=mailbox.password.set')).items[0]!.after!.passwordScheme, scheme);
  }
});

t.test('a weak password is 422 password_too_weak with a readable reason, on create and on PUT', async (t) => {
  await createMailbox('annabel@pw.test');
  const before = await passwordState('annabel@pw.test');
  const weak = [
    [secret('Sh0rt!'), /at least 10 characters/],
    // Counted in characters, not UTF-16 units: nine emoji are nine characters.
    [secret('🔑🗝🔒🔓🛡⚔🏰🐉👑'), /at least 10 characters/],
    [secret('my AnnaBel 2024 pass'), /must not contain the mailbox name/],
    [secret('zzzzzzzzzzzzzz'), /one character repeated/],
    [secret(' padded passphrase'), /spaces/],
    [secret('padded passphrase '), /spaces/],
  ] as const;
  for (const [password, reason] of weak) {
    const created = await provisioner.post('/v1/mailboxes', { address: 'annabel@pw2.test', password });
    const createProblem = assertProblem(t, created, 422, 'password_too_weak');
    t.match(createProblem.detail, reason, `create: ${createProblem.detail}`);
    t.equal(createProblem.field, 'password');

    const put = await support.put('/v1/mailboxes/annabel@pw.test/password', { password });
    const putProblem = assertProblem(t, put, 422, 'password_too_weak');
    t.match(putProblem.detail, reason, `PUT: ${putProblem.detail}`);
    t.match(putProblem.detail, /^The password must /, 'a sentence a support agent can read out');
  }
  assertProblem(t, await admin.get('/v1/mailboxes/annabel@pw2.test'), 404, 'mailbox_not_found');
  t.strictSame(await passwordState('annabel@pw.test'), before, 'the password is unchanged');
  t.equal((await auditEvents(admin, 'target=annabel@pw.test&action=mailbox.password.set')).items.length, 0);

  // The name check is about the local part; a short one (under three letters) cannot be avoided by chance.
  await createMailbox('al@pw.test');
  t.equal((await support.put('/v1/mailboxes/al@pw.test/password', { password: secret('totally normal words') })).statusCode, 204);
  t.equal((await support.put('/v1/mailboxes/annabel@pw.test/password', { password: secret('exactly10!') })).statusCode, 204, 'ten characters are enough');
});

t.test('exactly one of password and passwordHash: otherwise 422 password_required', async (t) => {
  await createMailbox('either@pw.test');
  const before = await passwordState('either@pw.test');
  for (const payload of [{}, { password: secret('both given, refused'), passwordHash: HASHES.bcrypt }]) {
    const created = await provisioner.post('/v1/mailboxes', { address: 'neither@pw.test', ...payload });
    t.equal(assertProblem(t, created, 422, 'password_required').field, 'password');
    const put = await provisioner.put('/v1/mailboxes/either@pw.test/password', payload);
    assertProblem(t, put, 422, 'password_required');
  }
  assertProblem(t, await admin.get('/v1/mailboxes/neither@pw.test'), 404, 'mailbox_not_found');
  t.strictSame(await passwordState('either@pw.test'), before);
  for (const payload of [{ password: secret('with a stowaway field'), hash: 'x' }, { pass: 'x' }]) {
    assertProblem(t, await provisioner.put('/v1/mailboxes/either@pw.test/password', payload), 400, 'unknown_field');
  }
  for (const payload of [{ password: '' }, { password: 'x'.repeat(1025) }, { passwordHash: '' }, { password: ['a', 'b'] }, { password: { text: 'x' } }]) {
    assertProblem(t, await provisioner.put('/v1/mailboxes/either@pw.test/password', payload), 400, 'validation_failed');
  }
  t.strictSame(await passwordState('either@pw.test'), before, 'still unchanged');
});

t.test('a malformed or over-expensive passwordHash is 422 invalid_password_hash', async (t) => {
  await createMailbox('hashy@pw.test');
  const before = await passwordState('hashy@pw.test');
  const argon2Params = (hash: string, params: string) => hash.replace(/\$[mtp]=\d+,[mtp]=\d+,[mtp]=\d+\$/, `$${params}$`);
  if (argon2Params(HASHES.argon2id, 'x') === HASHES.argon2id) throw new Error(`unexpected argon2 form ${HASHES.argon2id}`);
  const malformed = [
    secret('not a hash at all'),
    secret('$1$saltsalt$qjXMvbEw8oaL.CzflDugX/'),
    secret(HASHES.argon2id.replace('$argon2id$', '$argon2i$')),
    secret(HASHES.bcrypt.slice(0, -1)),
    secret(HASHES.bcrypt.replace('$2b$', '$2x$')),
    secret(`${HASHES.sha512}x`),
    secret(HASHES.sha256.replace('$5$', '$7$')),
    secret(`{MD5}${HASHES.sha512}`),
    secret(`${HASHES.sha512}:${HASHES.sha512}`),
  ];
  const tooExpensive = [
    secret(HASHES.bcrypt.replace('$2b$04$', '$2b$16$')),
    secret(HASHES.bcrypt.replace('$2b$04$', '$2b$31$')),
    secret(HASHES.sha512Rounds.replace('rounds=10000', 'rounds=999999999')),
    secret(HASHES.sha512Rounds.replace('rounds=10000', 'rounds=200001')),
    secret(encrypt(IMPORTED, '$5$rounds=10000$saltsalt').replace('rounds=10000', 'rounds=5000000')),
    secret(argon2Params(HASHES.argon2id, 'm=1048576,t=2,p=1')),
    secret(argon2Params(HASHES.argon2id, 'm=19456,t=100,p=1')),
    secret(argon2Params(HASHES.argon2id, 'm=19456,t=2,p=64')),
    // Below argon2's minimums: it could never verify.
    secret(argon2Params(HASHES.argon2id, 'm=19456,t=0,p=1')),
  ];
  for (const [hash, detail] of [...malformed.map((h) => [h, /must be an argon2id, bcrypt/] as const), ...tooExpensive.map((h) => [h, /cost/] as const)]) {
    const created = await provisioner.post('/v1/mailboxes', { address: 'badhash@pw.test', passwordHash: hash });
    const problem = assertProblem(t, created, 422, 'invalid_password_hash');
    t.match(problem.detail, detail, `${hash.slice(0, 30)}…: ${problem.detail}`);
    t.equal(problem.field, 'passwordHash');
    assertProblem(t, await admin.put('/v1/mailboxes/hashy@pw.test/password', { passwordHash: hash }), 422, 'invalid_password_hash');
  }
  assertProblem(t, await admin.get('/v1/mailboxes/badhash@pw.test'), 404, 'mailbox_not_found');
  t.strictSame(await passwordState('hashy@pw.test'), before, 'the stored hash is unchanged');
  t.equal((await auditEvents(admin, 'target=hashy@pw.test&action=mailbox.password.set')).items.length, 0);
});

t.test('PUT password sets a new password that verifies, bumps the ETag and is audited without secrets', async (t) => {
  await createMailbox('carol@pw.test');
  const before = await passwordState('carol@pw.test');
  const read = (await admin.get('/v1/mailboxes/carol@pw.test')).json();
  const fresh = secret('a brand new passphrase for C. at the desk');

  const put = await support.put('/v1/mailboxes/carol@pw.test/password', { password: fresh }, { 'x-request-id': 'carol-reset' });
  t.equal(put.statusCode, 204);
  t.equal(put.body, '', 'no body');

  const after = await passwordState('carol@pw.test');
  secrets.add(after.hash!);
  t.not(after.etag, before.etag, 'the ETag changed');
  t.equal(after.version, before.version! + 1, 'the password version went up');
  t.ok(Date.parse(after.changedAt!) >= Date.parse(before.changedAt!), 'passwordChangedAt moved');
  t.not(after.hash, before.hash);
  t.same(await verifyPassword(after.hash!, fresh), { valid: true, needsRehash: false }, 'the new password verifies');
  t.same((await verifyPassword(after.hash!, PASSWORD)).valid, false, 'the old one no longer does');
  const now = (await admin.get('/v1/mailboxes/carol@pw.test')).json();
  t.not(now.updatedAt, read.updatedAt, 'updatedAt moved');
  t.strictSame({ ...now, updatedAt: read.updatedAt }, read, 'nothing else in the resource changed');

  const events = (await auditEvents(admin, 'target=carol@pw.test&action=mailbox.password.set')).items;
  t.equal(events.length, 1);
  t.match(events[0], {
    action: 'mailbox.password.set',
    targetType: 'mailbox',
    target: 'carol@pw.test',
    domain: 'pw.test',
    actor: { id: supportKey.id, name: 'helpdesk' },
    requestId: 'carol-reset',
    ip: '127.0.0.1',
    before: null,
  });
  t.strictSame(events[0]!.after, { passwordVersion: 2, passwordScheme: 'argon2id' }, 'the version and scheme, nothing secret');

  // Each PUT is a new password: the same one again is still a change, with its own event.
  t.equal((await support.put('/v1/mailboxes/carol@pw.test/password', { password: fresh })).statusCode, 204);
  const again = await passwordState('carol@pw.test');
  secrets.add(again.hash!);
  t.equal(again.version, before.version! + 2);
  t.not(again.etag, after.etag);
  t.equal((await auditEvents(admin, 'target=carol@pw.test&action=mailbox.password.set')).items.length, 2);
});

// Last: reads everything the tests above sent and received.
t.test('no password, hash or token ever appears in a response or an audit event', async (t) => {
  const rows = await api.database.db.query.accounts.findMany();
  for (const row of rows) secrets.add(row.passwordHash);
  const { items, raw } = await auditEvents(admin);
  t.ok(items.length > 15, `the audit trail has ${items.length} events to search`);
  const transcript = client.transcript();
  t.ok(transcript.length > 10_000, 'and the responses are there to search');
  for (const value of secrets) {
    const label = `${value.slice(0, 12)}…`;
    t.notOk(transcript.includes(value), `${label} never in a response`);
    t.notOk(transcript.includes(JSON.stringify(value).slice(1, -1)), `${label} never in a response, JSON-escaped`);
    t.notOk(raw.includes(JSON.stringify(value).slice(1, -1)), `${label} never in an audit event`);
  }
  t.notOk(/passwordHash"\s*:|"password"\s*:/.test(raw), 'no password fields in audit events');
  // The hash shapes, beyond the scheme names that error details mention.
  const hashLike = /.{0,80}(\$argon2id\$v=|\$2[aby]\$\d\d\$|\$[56]\$(rounds=\d+\$)?[^$"\s)]+\$).{0,80}/;
  t.equal(hashLike.exec(raw)?.[0], undefined, 'nothing shaped like a hash in audit events');
  t.equal(hashLike.exec(transcript)?.[0], undefined, 'nor in any response');
});
