import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServices, type Services } from '../../src/core/services.js';
import type { DatabaseHandle } from '../../src/db/client.js';
import { startGateway } from '../../src/gateway.js';
import { loadTlsContext } from '../../src/net/tls.js';
import { startPop3 } from '../../src/pop3/server.js';
import { freshDatabaseUrl, openTestDatabase } from './database.js';

export const PASSWORD = 'correct horse battery staple';
export const ACTOR = { id: 'test', name: 'test setup', domains: null };

export interface TestPop3 {
  port: number;
  securePort: number;
  services: Services;
  database: DatabaseHandle;
  /** The database URL (null: embedded), for a second gateway on the same database. */
  url: string | null;
  /** Makes a mailbox (and its domain) with PASSWORD; answers its account id. */
  mailbox(address: string, fields?: Record<string, unknown>): Promise<number>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A POP3 gateway for this test file, on a database of its own (or on `url`'s, to share one). */
export async function startTestPop3(
  t: Teardown,
  options: { url?: string | null; maxConnectionsPerIp?: number; idleTimeoutMs?: number } = {},
): Promise<TestPop3> {
  const url = options.url === undefined ? await freshDatabaseUrl(t) : options.url;
  const database = await openTestDatabase(t, url);
  const services = createServices(database.db, {
    passwordPolicy: { minLength: 10 },
    bootstrapToken: null,
    maxMessageSize: 10 * 1024 * 1024,
  });
  const tlsDir = await mkdtemp(join(tmpdir(), 'mailroom-tls-'));
  t.teardown(() => rm(tlsDir, { recursive: true, force: true }));
  const tls = await loadTlsContext({ certPath: null, keyPath: null, dataDir: tlsDir });
  const gateway = await startGateway(database, services, { databaseUrl: url, log: { warn() {}, error() {} } });
  t.teardown(() => gateway.close());
  const server = await startPop3({
    host: '127.0.0.1',
    port: 0,
    securePort: 0,
    tls,
    maxConnectionsPerIp: options.maxConnectionsPerIp ?? 50,
    context: {
      login: services.login,
      mail: services.mail,
      lockMaildrop: gateway.lockMaildrop,
      registerSession: gateway.registerSession,
      subscribe: (listener) => gateway.feed.subscribe(listener),
      idleTimeoutMs: options.idleTimeoutMs ?? 600_000,
      maxAuthFailures: 3,
      log: { warn() {} },
    },
  });
  t.teardown(() => server.close());
  return {
    port: server.ports.pop3!,
    securePort: server.ports.pop3s!,
    services,
    database,
    url,
    async mailbox(address, fields = {}) {
      const domain = address.slice(address.indexOf('@') + 1);
      await services.domains.create({ name: domain }, ACTOR).catch((error) => {
        if (error.code !== 'domain_exists') throw error;
      });
      await services.mailboxes.create({ address, password: PASSWORD, ...fields }, ACTOR);
      return (await services.mailboxes.find(address, ACTOR)).id;
    },
  };
}
