import t from 'tap';
import { buildTestApi, PASSWORD } from '../helpers/api.js';
import { apiClient, auditEvents, mailboxUrl, makeKey } from '../helpers/api-client.js';
import { assertProblem, type Injected } from '../helpers/problem.js';

const MAX_MESSAGE_SIZE = 64 * 1024;
const api = await buildTestApi(t, { maxMessageSize: MAX_MESSAGE_SIZE });
const { app, services } = api;
const client = apiClient(app);
const admin = client.as(api.admin);
const SETUP = { id: 'test', name: 'test setup', domains: null };

for (const body of [{ name: 'mail.test' }, { name: 'other.test' }, { name: 'strict.test', suspendedDelivery: 'reject' }]) {
  const created = await admin.post('/v1/domains', body);
  if (created.statusCode !== 201) throw new Error(`setup: ${created.body}`);
}

async function createMailbox(address: string, fields: object = {}): Promise<void> {
  const created = await admin.post('/v1/mailboxes', { address, password: PASSWORD, ...fields });
  if (created.statusCode !== 201) throw new Error(`setup: mailbox ${address}: ${created.body}`);
}

function deliver(address: string, raw: string | Buffer, headers: Record<string, string> = api.admin, query = ''): Promise<Injected> {
  return app.inject({
    method: 'POST',
    url: `${mailboxUrl(address)}/messages${query}`,
    headers: { 'content-type': 'message/rfc822', ...headers },
    payload: raw,
  });
}

/** The stored bytes of a message, read back through the core. */
async function stored(address: string, folder: string, uid: number): Promise<Buffer> {
  const { id } = await services.mailboxes.find(address, SETUP);
  const row = (await services.mail.folders.list(id)).find((f) => f.name === folder);
  if (!row) throw new Error(`no folder ${folder}`);
  return services.mail.read(id, row.id, uid);
}

const message = (subject: string, body = 'Hello.\r\n') =>
  Buffer.from(`From: Bob <bob@example.net>\r\nTo: ann@mail.test\r\nSubject: ${subject}\r\n\r\n${body}`);

await createMailbox('ann@mail.test');

t.test('201 with uid, size and folder; the bytes are stored exactly as sent', async (t) => {
  // 8-bit bytes, a bare LF line and no final newline: nothing is normalised.
  const raw = Buffer.concat([message('exact'), Buffer.from([0xe4, 0xf6, 0x0a, 0x00, 0xff]), Buffer.from('\nlast line')]);
  const first = await deliver('ann@mail.test', raw);
  t.equal(first.statusCode, 201);
  t.match(first.headers['content-type'], /^application\/json/);
  t.strictSame(first.json(), { uid: 1, size: raw.length, folder: 'INBOX' });
  t.ok((await stored('ann@mail.test', 'INBOX', 1)).equals(raw), 'byte for byte');

  const second = await deliver('ann@mail.test', message('second'));
  t.strictSame(second.json(), { uid: 2, size: message('second').length, folder: 'INBOX' }, 'UIDs go up');
});

t.test('?folder= delivers elsewhere; INBOX in any case is INBOX', async (t) => {
  const sent = await deliver('ann@mail.test', message('to sent'), api.admin, '?folder=Sent');
  t.equal(sent.statusCode, 201);
  t.strictSame(sent.json(), { uid: 1, size: message('to sent').length, folder: 'Sent' });
  const inbox = await deliver('ann@mail.test', message('to inbox'), api.admin, '?folder=inbox');
  t.equal(inbox.json().folder, 'INBOX');
  await services.mail.folders.create((await services.mailboxes.find('ann@mail.test', SETUP)).id, 'Projects/2026 ü');
  const nested = await deliver('ann@mail.test', message('nested'), api.admin, `?folder=${encodeURIComponent('Projects/2026 ü')}`);
  t.strictSame(nested.json(), { uid: 1, size: message('nested').length, folder: 'Projects/2026 ü' });
});

t.test('unknown mailbox, unknown folder and bad folder names are refused', async (t) => {
  assertProblem(t, await deliver('nobody@mail.test', message('x')), 404, 'mailbox_not_found');
  assertProblem(t, await deliver('ann@mail.test', message('x'), api.admin, '?folder=Nowhere'), 404, 'folder_not_found');
  assertProblem(t, await deliver('ann@mail.test', message('x'), api.admin, '?folder=a%2F%2Fb'), 422, 'invalid_folder_name');
  assertProblem(t, await deliver('ann@mail.test', message('x'), api.admin, '?folder='), 400, 'validation_failed');
  assertProblem(t, await deliver('ann@mail.test', message('x'), api.admin, '?box=INBOX'), 400, 'unknown_field');
});

t.test('a body over the message size limit answers 413; the limit itself is accepted', async (t) => {
  const head = message('big');
  const exact = Buffer.concat([head, Buffer.alloc(MAX_MESSAGE_SIZE - head.length, 'a')]);
  const fits = await deliver('ann@mail.test', exact);
  t.equal(fits.statusCode, 201, 'exactly the limit');
  t.equal(fits.json().size, MAX_MESSAGE_SIZE);
  assertProblem(t, await deliver('ann@mail.test', Buffer.concat([exact, Buffer.from('a')])), 413, 'body_too_large');
});

t.test('only message/rfc822 is taken, and not empty', async (t) => {
  const url = `${mailboxUrl('ann@mail.test')}/messages`;
  for (const type of ['application/json', 'text/plain', 'application/mbox', 'application/octet-stream']) {
    const response = await app.inject({ method: 'POST', url, headers: { ...api.admin, 'content-type': type }, payload: '{"a":1}' });
    t.equal(assertProblem(t, response, 415, 'unsupported_media_type').detail, 'Send the body as message/rfc822', type);
  }
  assertProblem(t, await app.inject({ method: 'POST', url, headers: api.admin }), 415, 'unsupported_media_type');
  const charset = await deliver('ann@mail.test', message('params'), { ...api.admin, 'content-type': 'Message/RFC822; charset=utf-8' });
  t.equal(charset.statusCode, 201, 'media type parameters and case do not matter');
  assertProblem(t, await deliver('ann@mail.test', ''), 422, 'empty_message');
});

t.test('over quota answers 507 quota_exceeded and stores nothing', async (t) => {
  const raw = message('quota', 'x'.repeat(100));
  await createMailbox('full@mail.test', { quota: { storageBytes: raw.length * 2 + 10, messages: null } });
  t.equal((await deliver('full@mail.test', raw)).statusCode, 201);
  t.equal((await deliver('full@mail.test', raw)).statusCode, 201);
  const refused = assertProblem(t, await deliver('full@mail.test', raw), 507, 'quota_exceeded');
  t.match(refused, { quota: 'storage', limit: raw.length * 2 + 10, used: raw.length * 2 });
  t.match((await admin.get(mailboxUrl('full@mail.test'))).json().usage, { storageBytes: raw.length * 2, messages: 2 });

  await createMailbox('counted@mail.test', { quota: { storageBytes: null, messages: 1 } });
  t.equal((await deliver('counted@mail.test', raw)).statusCode, 201);
  t.match(assertProblem(t, await deliver('counted@mail.test', raw), 507, 'quota_exceeded'), { quota: 'messages', limit: 1 });
});

t.test('a mailbox suspended in a domain that rejects mail for suspended mailboxes answers 403', async (t) => {
  await createMailbox('gone@strict.test', { status: 'suspended' });
  assertProblem(t, await deliver('gone@strict.test', message('x')), 403, 'mailbox_suspended');
  await createMailbox('resting@mail.test', { status: 'suspended' });
  t.equal((await deliver('resting@mail.test', message('x'))).statusCode, 201, 'the default domain setting still receives');
});

t.test('roles: admin and provisioner deliver; support may not; confined keys see only their domains', async (t) => {
  const provisioner = await makeKey(services, 'provisioner', 'delivery script');
  t.equal((await deliver('ann@mail.test', message('p'), provisioner.headers)).statusCode, 201);
  const confined = await makeKey(services, 'provisioner', 'mail.test script', ['mail.test']);
  t.equal((await deliver('ann@mail.test', message('c'), confined.headers)).statusCode, 201);
  const elsewhere = await makeKey(services, 'provisioner', 'other.test script', ['other.test']);
  assertProblem(t, await deliver('ann@mail.test', message('e'), elsewhere.headers), 404, 'mailbox_not_found');
  const support = await makeKey(services, 'support', 'helpdesk');
  assertProblem(t, await deliver('ann@mail.test', message('s'), support.headers), 403, 'role_forbidden');
  assertProblem(t, await deliver('ann@mail.test', message('a'), {}), 401, 'unauthenticated');
  // The role is refused before the body type is looked at.
  const wrongType = await deliver('ann@mail.test', message('s'), { ...support.headers, 'content-type': 'text/plain' });
  assertProblem(t, wrongType, 403, 'role_forbidden');
});

t.test('Idempotency-Key: a retry with the same bytes replays the answer and stores nothing more', async (t) => {
  await createMailbox('retry@mail.test');
  const raw = message('retried');
  const headers = { ...api.admin, 'idempotency-key': 'deliver-retry-1' };
  const first = await deliver('retry@mail.test', raw, headers);
  t.equal(first.statusCode, 201);
  const replay = await deliver('retry@mail.test', raw, headers);
  t.equal(replay.statusCode, 201);
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.equal(replay.body, first.body);
  t.match((await admin.get(mailboxUrl('retry@mail.test'))).json().usage, { messages: 1, storageBytes: raw.length });
  assertProblem(t, await deliver('retry@mail.test', message('another'), headers), 422, 'idempotency_key_reused');
  // The same key on a JSON route is another request too.
  const json = await app.inject({
    method: 'PATCH',
    url: mailboxUrl('retry@mail.test'),
    headers,
    payload: { displayName: 'x' },
  });
  assertProblem(t, json, 422, 'idempotency_key_reused');
});

t.test('every delivery writes one mailbox.message.deliver audit event, without the message', async (t) => {
  await createMailbox('audited@mail.test');
  const secret = 'the-secret-words-of-the-body';
  const key = await makeKey(services, 'provisioner', 'audited script');
  const response = await deliver('audited@mail.test', message('Quarterly figures', `${secret}\r\n`), {
    ...key.headers,
    'x-request-id': 'deliver-audited',
  });
  t.equal(response.statusCode, 201);
  const { items, raw } = await auditEvents(admin, 'target=audited@mail.test&action=mailbox.message.deliver');
  t.equal(items.length, 1);
  t.match(items[0], {
    actor: { id: key.id, name: 'audited script' },
    action: 'mailbox.message.deliver',
    targetType: 'mailbox',
    target: 'audited@mail.test',
    domain: 'mail.test',
    after: { folder: 'INBOX', uid: 1, size: response.json().size },
    requestId: 'deliver-audited',
  });
  t.notMatch(raw, secret, 'no body in the audit trail');
  t.notMatch(raw, 'Quarterly', 'no header in the audit trail');

  // A refused delivery changed nothing, so it leaves no event.
  await createMailbox('tiny@mail.test', { quota: { storageBytes: 10, messages: null } });
  assertProblem(t, await deliver('tiny@mail.test', message('too big')), 507, 'quota_exceeded');
  t.equal((await auditEvents(admin, 'target=tiny@mail.test&action=mailbox.message.deliver')).items.length, 0);
});
