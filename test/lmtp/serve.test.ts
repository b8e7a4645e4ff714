import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { type Config, loadConfig } from '../../src/config.js';
import { PARTS, start } from '../../src/main.js';
import { freshDatabaseUrl } from '../helpers/database.js';
import { pythonLmtp } from './clients.js';
import { message } from './setup.js';

async function config(t: { teardown(fn: () => unknown): void }, env: Record<string, string>): Promise<Config> {
  const dataDir = await mkdtemp(join(tmpdir(), 'mailroom-lmtp-serve-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const databaseUrl = await freshDatabaseUrl(t);
  return loadConfig({
    MAILROOM_DATA_DIR: dataDir,
    MAILROOM_LOG_LEVEL: 'silent',
    MAILROOM_HTTP_PORT: '0',
    // Only the doors under test: the others' default ports may be taken by a neighbouring test.
    MAILROOM_IMAP_PORT: 'off',
    MAILROOM_IMAPS_PORT: 'off',
    MAILROOM_POP3_PORT: 'off',
    MAILROOM_POP3S_PORT: 'off',
    ...(databaseUrl === null ? {} : { DATABASE_URL: databaseUrl }),
    ...env,
  });
}

t.test('lmtp is a part `serve` starts by default', async (t) => {
  t.ok(PARTS.includes('lmtp'));
});

t.test('serve --only lmtp: the LMTP listener alone, on MAILROOM_HOST and MAILROOM_LMTP_PORT', async (t) => {
  const running = await start(await config(t, { MAILROOM_LMTP_PORT: '0' }), ['lmtp']);
  t.teardown(() => running.close());
  t.same(Object.keys(running.urls), ['lmtp'], 'no API');
  const url = new URL(running.urls.lmtp!);
  t.equal(url.protocol, 'lmtp:');
  t.equal(url.hostname, '127.0.0.1');
  const result = await pythonLmtp(Number(url.port), [{ from: 's@example.net', to: ['nobody@example.com'], message: message('x') }]);
  t.same(result.transactions[0]!.data, [[550, '5.1.1 <nobody@example.com> No such mailbox']], 'answers from the core');
});

t.test('MAILROOM_LMTP_PORT=off starts no LMTP listener', async (t) => {
  const running = await start(await config(t, { MAILROOM_LMTP_PORT: 'off' }));
  t.teardown(() => running.close());
  t.ok(running.urls.api, 'the rest starts');
  t.equal(running.urls.lmtp, undefined);
});

t.test('an LMTP port in use stops the start and releases everything', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => blocker.close(resolve)));
  const { port } = blocker.address() as { port: number };
  const busy = await config(t, { MAILROOM_LMTP_PORT: String(port) });
  await t.rejects(start(busy), { code: 'EADDRINUSE' });
  const running = await start({ ...busy, lmtpPort: 0 });
  t.pass('the same data dir (or database) opens again at once');
  await running.close();
});
