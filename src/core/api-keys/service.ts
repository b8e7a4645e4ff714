import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { and, asc, eq, gt, isNull, sql } from 'drizzle-orm';
import type { Database } from '../../db/client.js';
import { apiKeys } from '../../db/schema/index.js';
import type { Actor } from '../actor.js';
import { normalizeDomain } from '../addresses.js';
import type { AuditService } from '../audit/service.js';
import { InvalidError, NotFoundError } from '../errors.js';
import { decodeCursor, type Page, type PageRequest, toPage } from '../pagination.js';

export type Role = 'admin' | 'provisioner' | 'support';
export const ROLES: readonly Role[] = ['admin', 'provisioner', 'support'];

export interface ApiKeyView {
  id: string;
  name: string;
  role: Role;
  domains: string[] | null;
  createdAt: string;
  lastUsedAt: string | null;
}

/** An authenticated caller: who it is (for audit and confinement) and what it may do. */
export interface Principal extends Actor {
  role: Role;
}

export const BOOTSTRAP_ADMIN_ID = 'bootstrap-admin';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** last_used_at is refreshed at most this often, so reads do not all turn into writes. */
const LAST_USED_RESOLUTION_MS = 60_000;

/** Tokens carry 256 random bits, so one SHA-256 is a safe way to store and look them up. */
function digest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

type ApiKeyRow = typeof apiKeys.$inferSelect;

function view(row: ApiKeyRow): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    domains: row.domains,
    createdAt: row.createdAt.toISOString(),
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
  };
}

export function createApiKeyService(db: Database, audit: AuditService, bootstrapToken: string | null) {
  const bootstrapDigest = bootstrapToken === null ? null : Buffer.from(digest(bootstrapToken), 'hex');

  return {
    /** The token is returned here and never again. */
    async create(input: { name: string; role: Role; domains?: string[] | null }, actor: Actor) {
      const name = input.name.trim();
      if (name.length === 0) throw new InvalidError('invalid_name', 'The key needs a name', { field: 'name' });
      if (input.domains?.length === 0) {
        // Refused rather than taken to mean "all": a key confined to nothing is a mistake.
        throw new InvalidError('invalid_domains', 'List the domains the key is confined to, or leave domains out for all', {
          field: 'domains',
        });
      }
      const domains = input.domains ? [...new Set(input.domains.map(normalizeDomain))].sort() : null;
      const token = `mr_${randomBytes(32).toString('base64url')}`;
      const id = randomUUID();
      return db.transaction(async (tx) => {
        const [row] = await tx.insert(apiKeys).values({ id, name, role: input.role, domains, tokenHash: digest(token) }).returning();
        await audit.record(tx, actor, {
          action: 'api_key.create',
          targetType: 'api_key',
          target: id,
          domain: null,
          after: { name, role: input.role, domains },
        });
        return { ...view(row!), token };
      });
    },

    /** Active keys, oldest first. */
    async list(page: PageRequest): Promise<Page<ApiKeyView>> {
      const after = page.cursor === undefined ? undefined : decodeCursor<string>(page.cursor, 'string');
      if (after !== undefined && !UUID.test(after)) {
        throw new InvalidError('invalid_cursor', 'The cursor is not one this API handed out', { field: 'cursor' });
      }
      const rows = await db
        .select()
        .from(apiKeys)
        .where(and(isNull(apiKeys.revokedAt), after === undefined ? undefined : gt(apiKeys.id, after)))
        .orderBy(asc(apiKeys.id))
        .limit(page.limit + 1);
      return toPage(rows, page.limit, (row) => row.id, view);
    },

    /** Effective at once: authenticate() reads the key on every request. */
    async revoke(id: string, actor: Actor): Promise<void> {
      const missing = new NotFoundError('api_key_not_found', `There is no active API key ${id}`);
      if (!UUID.test(id)) throw missing;
      await db.transaction(async (tx) => {
        const [row] = await tx
          .update(apiKeys)
          .set({ revokedAt: sql`now()` })
          .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
          .returning();
        if (!row) throw missing;
        await audit.record(tx, actor, {
          action: 'api_key.revoke',
          targetType: 'api_key',
          target: id,
          domain: null,
          before: { name: row.name, role: row.role, domains: row.domains },
        });
      });
    },

    /** The principal behind a bearer token, or null for an unknown or revoked one. */
    async authenticate(token: string): Promise<Principal | null> {
      const hashed = digest(token);
      if (bootstrapDigest !== null && timingSafeEqual(Buffer.from(hashed, 'hex'), bootstrapDigest)) {
        return { id: BOOTSTRAP_ADMIN_ID, name: 'MAILROOM_ADMIN_TOKEN', role: 'admin', domains: null };
      }
      const [key] = await db.select().from(apiKeys).where(and(eq(apiKeys.tokenHash, hashed), isNull(apiKeys.revokedAt)));
      if (key && (key.lastUsedAt === null || Date.now() - key.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS)) {
        await db.update(apiKeys).set({ lastUsedAt: sql`now()` }).where(eq(apiKeys.id, key.id));
      }
      return key ? { id: key.id, name: key.name, role: key.role, domains: key.domains } : null;
    },
  };
}

export type ApiKeyService = ReturnType<typeof createApiKeyService>;
