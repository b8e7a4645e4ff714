import t from 'tap';
import { buildTestApi, PASSWORD } from '../helpers/api.js';
import { apiClient, mailboxUrl, makeKey } from '../helpers/api-client.js';
import { assertProblem } from '../helpers/problem.js';

const api = await buildTestApi(t);
const { app, services } = api;
const admin = apiClient(app).as(api.admin);
const SETUP = { id: 'test', name: 'test setup', domains: null };

for (const name of ['mail.test', 'other.test']) {
  const created = await admin.post('/v1/domains', { name });
  if (created.statusCode !== 201) throw new Error(`setup: ${created.body}`);
}

async function createMailbox(address: string): Promise<number> {
  const created = await admin.post('/v1/mailboxes', { address, password: PASSWORD });
  if (created.statusCode !== 201) throw new Error(`setup: mailbox ${address}: ${created.body}`);
  return (await services.mailboxes.find(address, SETUP)).id;
}

async function deliver(address: string, raw: Buffer, folder = 'INBOX'): Promise<number> {
  const response = await app.inject({
    method: 'POST',
    url: `${mailboxUrl(address)}/messages?folder=${encodeURIComponent(folder)}`,
    headers: { ...api.admin, 'content-type': 'message/rfc822' },
    payload: raw,
  });
  if (response.statusCode !== 201) throw new Error(`deliver: ${response.body}`);
  return response.json().uid;
}

async function folders(address: string, headers: Record<string, string> = api.admin) {
  return app.inject({ method: 'GET', url: `${mailboxUrl(address)}/folders`, headers });
}

const message = (n: number, padding = 0) => Buffer.from(`Subject: message ${n}\r\n\r\n${'x'.repeat(padding)}body ${n}\r\n`);

const EMPTY = { messages: 0, unseen: 0, storageBytes: 0 };

t.test('a new mailbox has the six standard folders, with their special-use attributes, all empty', async (t) => {
  await createMailbox('new@mail.test');
  const response = await folders('new@mail.test');
  t.equal(response.statusCode, 200);
  t.strictSame(response.json(), {
    items: [
      { name: 'Archive', specialUse: '\\Archive', ...EMPTY },
      { name: 'Drafts', specialUse: '\\Drafts', ...EMPTY },
      { name: 'INBOX', specialUse: null, ...EMPTY },
      { name: 'Junk', specialUse: '\\Junk', ...EMPTY },
      { name: 'Sent', specialUse: '\\Sent', ...EMPTY },
      { name: 'Trash', specialUse: '\\Trash', ...EMPTY },
    ],
  });
});

t.test('counts follow deliveries, flags and expunges; the mailbox usage is their exact sum', async (t) => {
  const id = await createMailbox('ann@mail.test');
  await services.mail.folders.create(id, 'Lists/fastify');
  const inbox = [message(1), message(2, 1000), message(3, 12345)];
  const sent = [message(4, 77)];
  const lists = [message(5, 3), message(6)];
  for (const raw of inbox) await deliver('ann@mail.test', raw);
  for (const raw of sent) await deliver('ann@mail.test', raw, 'Sent');
  for (const raw of lists) await deliver('ann@mail.test', raw, 'Lists/fastify');
  const bytes = (list: Buffer[]) => list.reduce((sum, raw) => sum + raw.length, 0);

  // Two INBOX messages read, one Sent message read and deleted.
  const byName = new Map((await services.mail.folders.list(id)).map((f) => [f.name, f.id]));
  await services.mail.changeFlags(id, byName.get('INBOX')!, [1, 3], 'add', ['\\Seen']);
  await services.mail.changeFlags(id, byName.get('Sent')!, [1], 'add', ['\\Seen', '\\Deleted']);

  const usage = async () => {
    const items: { name: string; messages: number; unseen: number; storageBytes: number }[] = (await folders('ann@mail.test')).json().items;
    return Object.fromEntries(items.map(({ name, messages, unseen, storageBytes }) => [name, { messages, unseen, storageBytes }]));
  };
  t.strictSame(await usage(), {
    Archive: EMPTY,
    Drafts: EMPTY,
    INBOX: { messages: 3, unseen: 1, storageBytes: bytes(inbox) },
    Junk: EMPTY,
    'Lists/fastify': { messages: 2, unseen: 2, storageBytes: bytes(lists) },
    Sent: { messages: 1, unseen: 0, storageBytes: bytes(sent) },
    Trash: EMPTY,
  });
  const mailbox = (await admin.get(mailboxUrl('ann@mail.test'))).json();
  t.strictSame(mailbox.usage, { storageBytes: bytes([...inbox, ...sent, ...lists]), messages: 6 }, 'usage: the exact sum');

  await services.mail.expunge(id, byName.get('Sent')!);
  t.strictSame((await usage()).Sent, EMPTY, 'expunged');
  t.strictSame((await admin.get(mailboxUrl('ann@mail.test'))).json().usage, {
    storageBytes: bytes([...inbox, ...lists]),
    messages: 5,
  });
});

t.test('the same message delivered to two mailboxes counts fully in each', async (t) => {
  await createMailbox('one@mail.test');
  await createMailbox('two@mail.test');
  const raw = message(7, 500);
  await deliver('one@mail.test', raw);
  await deliver('two@mail.test', raw);
  for (const address of ['one@mail.test', 'two@mail.test']) {
    t.strictSame((await admin.get(mailboxUrl(address))).json().usage, { storageBytes: raw.length, messages: 1 }, address);
    const inbox = (await folders(address)).json().items.find((f: { name: string }) => f.name === 'INBOX');
    t.match(inbox, { messages: 1, unseen: 1, storageBytes: raw.length }, address);
  }
});

t.test('every role may read folders; confined keys only in their domains; unknown mailboxes 404', async (t) => {
  await createMailbox('bob@other.test');
  for (const role of ['admin', 'provisioner', 'support'] as const) {
    const key = await makeKey(services, role, `${role} reader`);
    t.equal((await folders('bob@other.test', key.headers)).statusCode, 200, role);
  }
  const confined = await makeKey(services, 'support', 'mail.test helpdesk', ['mail.test']);
  t.equal((await folders('new@mail.test', confined.headers)).statusCode, 200);
  assertProblem(t, await folders('bob@other.test', confined.headers), 404, 'mailbox_not_found');
  assertProblem(t, await folders('nobody@mail.test'), 404, 'mailbox_not_found');
  assertProblem(t, await folders('new@mail.test', {}), 401, 'unauthenticated');
});
