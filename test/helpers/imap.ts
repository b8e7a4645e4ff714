import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServices, type Services } from '../../src/core/services.js';
import type { DatabaseHandle } from '../../src/db/client.js';
import { startGateway } from '../../src/gateway.js';
import { startImap } from '../../src/imap/server.js';
import type { ImapLimits } from '../../src/imap/session.js';
import { loadTlsContext } from '../../src/net/tls.js';
import { freshDatabaseUrl, openTestDatabase } from './database.js';
import { ACTOR, PASSWORD } from './pop3.js';

export { ACTOR, PASSWORD };

export interface TestImap {
  port: number;
  securePort: number;
  services: Services;
  database: DatabaseHandle;
  url: string | null;
  /** Makes a mailbox (and its domain) with PASSWORD; answers its account id. */
  mailbox(address: string, fields?: Record<string, unknown>): Promise<number>;
  /** Delivers raw bytes to the mailbox's INBOX (or folder) through the core. */
  deliver(address: string, raw: string | Buffer, folder?: string): Promise<number>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

export const TEST_LIMITS: ImapLimits = {
  maxLineLength: 64 * 1024,
  maxLiteralSize: 10 * 1024 * 1024,
  maxBadCommands: 20,
  maxAuthFailures: 3,
  idleTimeoutMs: 30 * 60_000,
  allowPlaintextAuth: false,
};

/** An IMAP gateway for this test file, on a database of its own (or on `url`'s, to share one). */
export async function startTestImap(
  t: Teardown,
  options: { url?: string | null; limits?: Partial<ImapLimits>; maxConnectionsPerIp?: number } = {},
): Promise<TestImap> {
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
  const log = { warn() {}, error() {} };
  const gateway = await startGateway(database, services, { databaseUrl: url, log });
  t.teardown(() => gateway.close());
  const server = await startImap({
    host: '127.0.0.1',
    port: 0,
    securePort: 0,
    maxConnectionsPerIp: options.maxConnectionsPerIp ?? 100,
    context: { services, gateway, tls, limits: { ...TEST_LIMITS, ...options.limits }, log },
  });
  t.teardown(() => server.close());
  return {
    port: server.ports.imap!,
    securePort: server.ports.imaps!,
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
    async deliver(address, raw, folder) {
      const [result] = await services.mail.deliver(Buffer.from(raw), [address], folder);
      if (!result!.delivered) throw new Error(`setup: delivery to ${address} failed: ${result!.error.code}`);
      return result!.uid;
    },
  };
}
