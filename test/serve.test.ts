import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { LineClient } from './helpers/line-client.js';
import { freshDatabaseUrl } from './helpers/database.js';
import { mailPorts, startServer } from './helpers/server.js';

const ADMIN = 'serve-test-admin-token';
const PASSWORD = 'correct horse battery staple';

async function api(url: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, body: response.status === 204 ? null : await response.json() };
}

async function answer(client: LineClient, line: string): Promise<string | null> {
  client.send(`${line}\r\n`);
  return client.readLine();
}

t.test('mailroom serve runs the API, LMTP, POP3 and IMAP on one database', async (t) => {
  const ports = await mailPorts();
  const server = await startServer(t, { MAILROOM_ADMIN_TOKEN: ADMIN, ...ports });
  t.equal((await api(server.url, 'POST', '/v1/domains', { name: 'serve.test' })).status, 201);
  t.equal((await api(server.url, 'POST', '/v1/mailboxes', { address: 'ann@serve.test', password: PASSWORD })).status, 201);

  const lmtp = await LineClient.connect(Number(ports.MAILROOM_LMTP_PORT));
  t.teardown(() => lmtp.close());
  t.match(await lmtp.readLine(), /^220 /);
  lmtp.send('LHLO client.test\r\n');
  for (let line = await lmtp.readLine(); line?.startsWith('250-'); line = await lmtp.readLine());
  t.match(await answer(lmtp, 'MAIL FROM:<sender@example.net>'), /^250/);
  t.match(await answer(lmtp, 'RCPT TO:<ann@serve.test>'), /^250/);
  t.match(await answer(lmtp, 'DATA'), /^354/);
  t.match(await answer(lmtp, 'Subject: through LMTP\r\n\r\nHello.\r\n.'), /^250/, 'delivered');

  const pop3 = await LineClient.connect(Number(ports.MAILROOM_POP3S_PORT), { tls: true });
  t.teardown(() => pop3.close());
  t.match(await pop3.readLine(), /^\+OK/);
  t.match(await answer(pop3, 'USER ann@serve.test'), /^\+OK/);
  t.match(await answer(pop3, `PASS ${PASSWORD}`), /^\+OK/);
  t.match(await answer(pop3, 'STAT'), /^\+OK 1 /, 'POP3S sees the message');

  const imap = await LineClient.connect(Number(ports.MAILROOM_IMAP_PORT));
  t.teardown(() => imap.close());
  t.match(await imap.readLine(), /^\* OK /);
  t.match(await answer(imap, `a LOGIN ann@serve.test "${PASSWORD}"`), /^a OK/);
  imap.send('b SELECT INBOX\r\n');
  const lines: string[] = [];
  for (let line = await imap.readLine(); line && !line.startsWith('b '); line = await imap.readLine()) lines.push(line);
  t.ok(lines.includes('* 1 EXISTS'), 'IMAP sees it too');

  const sessions = await api(server.url, 'GET', '/v1/mailboxes/ann@serve.test/sessions');
  t.same(sessions.body.items.map((s: { protocol: string; tls: boolean }) => [s.protocol, s.tls]).sort(), [
    ['imap', false],
    ['pop3', true],
  ]);
  t.equal((await api(server.url, 'DELETE', '/v1/mailboxes/ann@serve.test/sessions')).status, 204);
  t.equal(await pop3.readLine(), null, 'POP3 ended by support');
  t.match(await imap.readLine(), /^\* BYE /, 'IMAP told BYE');
  await sleep(100);
  const mailbox = await api(server.url, 'GET', '/v1/mailboxes/ann@serve.test');
  t.match(mailbox.body.lastLogin, { protocol: String, ip: '127.0.0.1' });
});

const sharedUrl = await freshDatabaseUrl(t);

t.test('two gateway processes on one Postgres: POP3 IN-USE across them, IMAP push across them', { skip: sharedUrl === null && 'one process owns an embedded database' }, async (t) => {
  const firstPorts = await mailPorts();
  const secondPorts = await mailPorts();
  const first = await startServer(t, { MAILROOM_ADMIN_TOKEN: ADMIN, DATABASE_URL: sharedUrl!, ...firstPorts });
  await startServer(t, { MAILROOM_ADMIN_TOKEN: ADMIN, DATABASE_URL: sharedUrl!, ...secondPorts });
  await api(first.url, 'POST', '/v1/domains', { name: 'two.test' });
  await api(first.url, 'POST', '/v1/mailboxes', { address: 'bob@two.test', password: PASSWORD });

  const one = await LineClient.connect(Number(firstPorts.MAILROOM_POP3_PORT));
  const two = await LineClient.connect(Number(secondPorts.MAILROOM_POP3_PORT));
  t.teardown(() => [one, two].forEach((c) => c.close()));
  for (const client of [one, two]) {
    await client.readLine();
    await answer(client, 'USER bob@two.test');
  }
  t.match(await answer(one, `PASS ${PASSWORD}`), /^\+OK/);
  t.match(await answer(two, `PASS ${PASSWORD}`), /^-ERR \[IN-USE\]/, 'the other process knows the maildrop is taken');
  t.match(await answer(one, 'QUIT'), /^\+OK/);
  await answer(two, 'USER bob@two.test');
  t.match(await answer(two, `PASS ${PASSWORD}`), /^\+OK/, 'and that it is free again');
  await answer(two, 'QUIT');

  const idle = await LineClient.connect(Number(secondPorts.MAILROOM_IMAP_PORT));
  t.teardown(() => idle.close());
  await idle.readLine();
  t.match(await answer(idle, `a LOGIN bob@two.test "${PASSWORD}"`), /^a OK/);
  idle.send('b SELECT INBOX\r\n');
  for (let line = await idle.readLine(); line && !line.startsWith('b '); line = await idle.readLine());
  // Delivered through the first process's API; the second process's session learns of it.
  const delivered = await fetch(`${first.url}/v1/mailboxes/bob@two.test/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'message/rfc822' },
    body: 'Subject: across processes\r\n\r\nhi\r\n',
  });
  t.equal(delivered.status, 201);
  await sleep(300);
  idle.send('c NOOP\r\n');
  const lines: string[] = [];
  for (let line = await idle.readLine(); line && !line.startsWith('c '); line = await idle.readLine()) lines.push(line);
  t.ok(lines.includes('* 1 EXISTS'), `the other gateway reports the new message (${lines.join(' | ')})`);
});
