// `mailroom serve` sends webhook events with its `webhooks` part: a mailbox made through the API and
// a quota crossed by an LMTP delivery reach a receiver; without the part, events wait in the outbox.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { type Config, loadConfig } from '../src/config.js';
import { PARTS, start } from '../src/main.js';
import { freshDatabaseUrl } from './helpers/database.js';
import { rememberSecret } from './helpers/secrets.js';
import { startReceiver, verifySignature } from './helpers/webhook-receiver.js';
import { pythonLmtp } from './lmtp/clients.js';

const TOKEN = 'serve-webhooks-admin-token';
rememberSecret(TOKEN);

async function config(t: { teardown(fn: () => unknown): void }): Promise<Config> {
  const dataDir = await mkdtemp(join(tmpdir(), 'mailroom-serve-webhooks-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const databaseUrl = await freshDatabaseUrl(t);
  return loadConfig({
    MAILROOM_DATA_DIR: dataDir,
    MAILROOM_LOG_LEVEL: 'silent',
    MAILROOM_HTTP_PORT: '0',
    MAILROOM_LMTP_PORT: '0',
    MAILROOM_IMAP_PORT: 'off',
    MAILROOM_IMAPS_PORT: 'off',
    MAILROOM_POP3_PORT: 'off',
    MAILROOM_POP3S_PORT: 'off',
    MAILROOM_ADMIN_TOKEN: TOKEN,
    // A busy test machine is no overloaded server.
    MAILROOM_API_MAX_EVENT_LOOP_DELAY: '0',
    ...(databaseUrl === null ? {} : { DATABASE_URL: databaseUrl }),
  });
}

/** A JSON request to the API as the admin; the parsed answer. */
async function call(base: string, method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

t.test('webhooks is a part serve starts by default: API and LMTP changes reach the receiver', async (t) => {
  t.ok(PARTS.includes('webhooks'));
  const running = await start(await config(t));
  t.teardown(() => running.close());
  const api = running.urls.api!;
  const receiver = await startReceiver(t);
  const hook = await call(api, 'POST', '/v1/webhooks', { url: receiver.url, events: ['mailbox.created', 'mailbox.quota_crossed'] });
  rememberSecret(hook.secret);
  await call(api, 'POST', '/v1/domains', { name: 'serve.test' });
  await call(api, 'POST', '/v1/mailboxes', { address: 'ann@serve.test', password: 'a long passphrase', quota: { storageBytes: 1000 } });
  const raw = Buffer.from(`Subject: nearly full\r\n\r\n${'x'.repeat(800)}\r\n`);
  const result = await pythonLmtp(Number(new URL(running.urls.lmtp!).port), [{ from: 's@example.net', to: ['ann@serve.test'], message: raw }]);
  t.equal(result.transactions[0]!.data[0]![0], 250, 'delivered');

  await receiver.waitFor((r) => r.length >= 2, 'the creation and the crossing');
  t.same(receiver.received.map((r) => r.json.type).sort(), ['mailbox.created', 'mailbox.quota_crossed']);
  for (const r of receiver.received) t.ok(verifySignature(hook.secret, r.signature, r.body), 'signed');
  t.match(receiver.received.find((r) => r.json.type === 'mailbox.quota_crossed')!.json.data, { quota: 'storage', threshold: 80, limit: 1000 });
});

t.test('serve --only api queues events but sends none', async (t) => {
  const running = await start(await config(t), ['api']);
  t.teardown(() => running.close());
  const api = running.urls.api!;
  const receiver = await startReceiver(t);
  const hook = await call(api, 'POST', '/v1/webhooks', { url: receiver.url });
  rememberSecret(hook.secret);
  await call(api, 'POST', '/v1/domains', { name: 'quiet.test' });
  await call(api, 'POST', '/v1/mailboxes', { address: 'bob@quiet.test', passwordHash: '$2b$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234' });
  // More than the dispatcher's poll interval.
  await new Promise((resolve) => setTimeout(resolve, 2500));
  t.equal(receiver.received.length, 0, 'nothing sent');
  const log = await call(api, 'GET', `/v1/webhooks/${hook.id}/deliveries`);
  t.match(log.items, [{ status: 'pending', attempts: [], event: { type: 'mailbox.created' } }], 'waiting in the outbox');
});
