import type { PublicServers } from '../../src/config.js';
import type { Role } from '../../src/core/api-keys/service.js';
import { type Api, type AppOptions, buildApp } from '../../src/api/app.js';
import type { LoginThrottleSettings } from '../../src/core/auth/throttle.js';
import { createServices, type Services } from '../../src/core/services.js';
import type { DatabaseHandle } from '../../src/db/client.js';
import { createLogger } from '../../src/log.js';
import { freshDatabase } from './database.js';
import { recordingStream, recordOutput, rememberSecret, rememberSecretsOf } from './secrets.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const PASSWORD = 'correct horse battery staple';
/** What the test API tells mail clients to dial: the usual ports on a public name, and no submission server. */
export const PUBLIC_SERVERS: PublicServers = {
  host: 'mail.example.net',
  imapPort: 143,
  imapsPort: 993,
  pop3Port: 110,
  pop3sPort: 995,
  submission: null,
};

export interface TestApi {
  app: Api;
  services: Services;
  database: DatabaseHandle;
  /** Authorization header of the bootstrap admin token. */
  admin: { authorization: string };
  /** Makes an API key with this role (and confinement) and returns its Authorization header. */
  keyFor(role: Role, domains?: string[]): Promise<{ authorization: string }>;
}

/** A new API key's (or webhook's) answer is the one place its token (or secret) may show. */
function withoutIssuedToken(status: number, body: string): string {
  return status === 201 ? body.replace(/"(token|secret)":"[^"]*"/, '"$1":"(issued)"') : body;
}

/** The real API on a fresh database (or the one given), driven with app.inject(); closed when the test ends. */
export async function buildTestApi(
  t: { teardown(fn: () => unknown): void },
  options: {
    bodyLimit?: number;
    passwordMinLength?: number;
    maxMessageSize?: number;
    limits?: AppOptions['limits'];
    trustProxy?: string[];
    loginThrottle?: LoginThrottleSettings;
    publicServers?: PublicServers;
    /** A database the test opened already (a gateway fixture's, say), so the API and mail doors share it. */
    database?: DatabaseHandle;
  } = {},
): Promise<TestApi> {
  const database = options.database ?? (await freshDatabase(t));
  const maxMessageSize = options.maxMessageSize ?? 1024 * 1024;
  const services = createServices(database.db, {
    passwordPolicy: { minLength: options.passwordMinLength ?? 10 },
    bootstrapToken: ADMIN_TOKEN,
    maxMessageSize,
    loginThrottle: options.loginThrottle,
    publicServers: options.publicServers ?? PUBLIC_SERVERS,
    pool: database.pool,
  });
  rememberSecret(ADMIN_TOKEN);
  rememberSecret(PASSWORD);
  rememberSecretsOf(services);
  const app = await buildApp({
    services,
    // Every line is kept for the leak check, at the level that logs the most.
    logger: createLogger('trace', recordingStream('API log')),
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    maxMessageSize,
    limits: options.limits,
    trustProxy: options.trustProxy,
  });
  app.addHook('onSend', async (request, reply, payload) => {
    if (typeof payload === 'string' || Buffer.isBuffer(payload)) {
      recordOutput(`API response to ${request.method} ${request.url}`, withoutIssuedToken(reply.statusCode, String(payload)));
    }
    recordOutput(`API response headers to ${request.method} ${request.url}`, JSON.stringify(reply.getHeaders()));
    return payload;
  });
  t.teardown(() => app.close());
  return {
    app,
    services,
    database,
    admin: { authorization: `Bearer ${ADMIN_TOKEN}` },
    async keyFor(role, domains) {
      const key = await services.apiKeys.create(
        { name: `${role} test key`, role, domains: domains ?? null },
        { id: 'test', name: 'test setup', domains: null },
      );
      return { authorization: `Bearer ${key.token}` };
    },
  };
}
