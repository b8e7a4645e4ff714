import { sql } from 'drizzle-orm';
import type { Database } from '../db/client.js';
import { createApiKeyService } from './api-keys/service.js';
import { createAuditService } from './audit/service.js';
import type { PasswordPolicy } from './auth/passwords.js';
import { createDomainService } from './domains/service.js';
import { createIdempotencyService } from './idempotency/service.js';
import { createMailboxService } from './mailboxes/service.js';

export interface ServiceOptions {
  passwordPolicy: PasswordPolicy;
  /** MAILROOM_ADMIN_TOKEN: accepted as an admin API key. */
  bootstrapToken: string | null;
}

/** The composition of every core service; built once in main.ts (and by the CLI and tests). */
export function createServices(db: Database, options: ServiceOptions) {
  const audit = createAuditService(db);
  return {
    audit,
    domains: createDomainService(db, audit),
    mailboxes: createMailboxService(db, audit, options.passwordPolicy),
    apiKeys: createApiKeyService(db, audit, options.bootstrapToken),
    idempotency: createIdempotencyService(db),
    health: {
      /** Throws when the database does not answer. */
      async check(): Promise<void> {
        await db.execute(sql`select 1`);
      },
    },
  };
}

export type Services = ReturnType<typeof createServices>;
