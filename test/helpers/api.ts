import type { Role } from '../../src/core/api-keys/service.js';
import { type Api, type AppOptions, buildApp } from '../../src/api/app.js';
import type { LoginThrottleSettings } from '../../src/core/auth/throttle.js';
import { createServices, type Services } from '../../src/core/services.js';
import type { DatabaseHandle } from '../../src/db/client.js';
import { freshDatabase } from './database.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const PASSWORD = 'correct horse battery staple';

export interface TestApi {
  app: Api;
  services: Services;
  database: DatabaseHandle;
  /** Authorization header of the bootstrap admin token. */
  admin: { authorization: string };
  /** Makes an API key with this role (and confinement) and returns its Authorization header. */
  keyFor(role: Role, domains?: string[]): Promise<{ authorization: string }>;
}

/** The real API on a fresh database, driven with app.inject(); closed when the test ends. */
export async function buildTestApi(
  t: { teardown(fn: () => unknown): void },
  options: {
    bodyLimit?: number;
    passwordMinLength?: number;
    maxMessageSize?: number;
    limits?: AppOptions['limits'];
    loginThrottle?: LoginThrottleSettings;
  } = {},
): Promise<TestApi> {
  const database = await freshDatabase(t);
  const maxMessageSize = options.maxMessageSize ?? 1024 * 1024;
  const services = createServices(database.db, {
    passwordPolicy: { minLength: options.passwordMinLength ?? 10 },
    bootstrapToken: ADMIN_TOKEN,
    maxMessageSize,
    loginThrottle: options.loginThrottle,
  });
  const app = await buildApp({
    services,
    logLevel: 'silent',
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    maxMessageSize,
    limits: options.limits,
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
