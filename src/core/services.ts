import { sql } from 'drizzle-orm';
import type { PublicServers } from '../config.js';
import type { Database } from '../db/client.js';
import { createApiKeyService } from './api-keys/service.js';
import { createAuditService } from './audit/service.js';
import { createLoginService } from './auth/login.js';
import type { PasswordPolicy } from './auth/passwords.js';
import { createLoginThrottle, type LoginThrottleSettings, THROTTLE_OFF } from './auth/throttle.js';
import { createClientSetupService } from './client-setup/service.js';
import { createDomainService } from './domains/service.js';
import { createIdempotencyService } from './idempotency/service.js';
import { createMailboxBatch } from './mailboxes/batch.js';
import { createLoginCheck } from './mailboxes/login-check.js';
import { createProtocolSwitchSweep } from './mailboxes/protocol-switches.js';
import { createQuotaPreview } from './mailboxes/quota-preview.js';
import { createMailboxService } from './mailboxes/service.js';
import { createMailStore } from './mailstore/service.js';
import { createMetrics, type PoolStats } from './metrics.js';
import { createSessionService } from './sessions/service.js';
import { createWebhookService } from './webhooks/service.js';

export interface ServiceOptions {
  passwordPolicy: PasswordPolicy;
  /** MAILROOM_ADMIN_TOKEN: accepted as an admin API key. */
  bootstrapToken: string | null;
  /** Largest message accepted, in bytes. */
  maxMessageSize: number;
  /** Failed-login counting and lockouts; left out, nothing is counted (tools, most tests). */
  loginThrottle?: LoginThrottleSettings;
  /** Where mail clients are told to connect; none is advertised when left out (tools that serve no clients). */
  publicServers?: PublicServers;
  /** The pg pool, for its gauges; left out for PGlite. */
  pool?: PoolStats;
  /** Passwords a batch hashes at a time: libuv's thread pool size (4 when left out), where argon2 runs. */
  hashConcurrency?: number;
}

const NO_PUBLIC_SERVERS: PublicServers = {
  host: 'localhost',
  imapPort: null,
  imapsPort: null,
  pop3Port: null,
  pop3sPort: null,
  submission: null,
};

/** The composition of every core service; built once in main.ts (and by the CLI and tests). */
export function createServices(db: Database, options: ServiceOptions) {
  const audit = createAuditService(db);
  const mailboxes = createMailboxService(db, audit, options.passwordPolicy);
  const metrics = createMetrics(options.pool);
  const loginThrottle = createLoginThrottle(db, audit, mailboxes, options.loginThrottle ?? THROTTLE_OFF, metrics.registry);
  return {
    metrics,
    audit,
    domains: createDomainService(db, audit),
    mailboxes,
    mailboxBatch: createMailboxBatch(db, audit, options.passwordPolicy, options.hashConcurrency ?? 4),
    webhooks: createWebhookService(db, audit),
    sessions: createSessionService(db, audit, mailboxes),
    apiKeys: createApiKeyService(db, audit, options.bootstrapToken),
    login: createLoginService(db, loginThrottle, metrics),
    loginThrottle,
    loginCheck: createLoginCheck(db, mailboxes, loginThrottle),
    quotaPreview: createQuotaPreview(db, mailboxes),
    protocolSwitches: createProtocolSwitchSweep(db, audit),
    clientSetup: createClientSetupService(db, mailboxes, options.publicServers ?? NO_PUBLIC_SERVERS),
    idempotency: createIdempotencyService(db),
    mail: createMailStore(db, { maxMessageSize: options.maxMessageSize }),
    health: {
      /** Throws when the database does not answer. */
      async check(): Promise<void> {
        await db.execute(sql`select 1`);
      },
    },
  };
}

export type Services = ReturnType<typeof createServices>;
