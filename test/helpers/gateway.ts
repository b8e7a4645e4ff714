import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoginThrottleSettings } from '../../src/core/auth/throttle.js';
import { createServices, type Services } from '../../src/core/services.js';
import type { DatabaseHandle } from '../../src/db/client.js';
import { type Gateway, startGateway } from '../../src/gateway.js';
import { loadTlsCertificate, type TlsCertificate } from '../../src/net/tls.js';
import { freshDatabaseUrl, openTestDatabase } from './database.js';
import { recordingLog, rememberSecret, rememberSecretsOf } from './secrets.js';

export const PASSWORD = 'correct horse battery staple';
export const ACTOR = { id: 'test', name: 'test setup', domains: null };

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface GatewayFixture {
  database: DatabaseHandle;
  services: Services;
  gateway: Gateway;
  tls: TlsCertificate;
  /** The database URL (null: embedded), for a second gateway on the same database. */
  url: string | null;
  /** Makes a mailbox (and its domain) with PASSWORD; answers its account id. */
  mailbox(address: string, fields?: Record<string, unknown>): Promise<number>;
}

/**
 * What a POP3 or IMAP door under test stands on: a database, the services, a gateway and TLS.
 * Failed logins are counted only when loginThrottle is given.
 */
export async function gatewayFixture(
  t: Teardown,
  givenUrl?: string | null,
  loginThrottle?: LoginThrottleSettings,
): Promise<GatewayFixture> {
  const url = givenUrl === undefined ? await freshDatabaseUrl(t) : givenUrl;
  const database = await openTestDatabase(t, url);
  const services = createServices(database.db, {
    passwordPolicy: { minLength: 10 },
    bootstrapToken: null,
    maxMessageSize: 10 * 1024 * 1024,
    loginThrottle,
  });
  rememberSecret(PASSWORD);
  rememberSecretsOf(services);
  const tlsDir = await mkdtemp(join(tmpdir(), 'mailroom-tls-'));
  t.teardown(() => rm(tlsDir, { recursive: true, force: true }));
  const tls = await loadTlsCertificate({ certPath: null, keyPath: null, dataDir: tlsDir }, recordingLog('TLS log'));
  const gateway = await startGateway(database, services, { databaseUrl: url, log: recordingLog('gateway log') });
  t.teardown(() => gateway.close());
  return {
    database,
    services,
    gateway,
    tls,
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
