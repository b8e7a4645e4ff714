import { eq } from 'drizzle-orm';
import type { Api } from '../../src/api/app.js';
import type { Role } from '../../src/core/api-keys/service.js';
import type { Services } from '../../src/core/services.js';
import type { DatabaseHandle } from '../../src/db/client.js';
import { accounts } from '../../src/db/schema/index.js';
import type { Injected } from './problem.js';

type Headers = Record<string, string>;

export interface Caller {
  get(url: string, headers?: Headers): Promise<Injected>;
  post(url: string, payload: unknown, headers?: Headers): Promise<Injected>;
  patch(url: string, payload: unknown, headers?: Headers): Promise<Injected>;
  put(url: string, payload: unknown, headers?: Headers): Promise<Injected>;
  delete(url: string, headers?: Headers): Promise<Injected>;
}

export interface ApiClient {
  /** Requests with these headers (usually an Authorization header); no headers: anonymous. */
  as(headers?: Headers): Caller;
  /** Every response body and header so far, to prove a secret never shows in one. */
  transcript(): string;
}

/** app.inject() with less noise, remembering every response for secret scans. */
export function apiClient(app: Api): ApiClient {
  const seen: string[] = [];
  const send = async (method: string, url: string, headers: Headers, payload?: unknown): Promise<Injected> => {
    const response = await app.inject({
      method: method as 'GET',
      url,
      headers,
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
    seen.push(JSON.stringify(response.headers), response.body);
    return response;
  };
  return {
    as(base = {}) {
      return {
        get: (url, headers = {}) => send('GET', url, { ...base, ...headers }),
        post: (url, payload, headers = {}) => send('POST', url, { ...base, ...headers }, payload),
        patch: (url, payload, headers = {}) => send('PATCH', url, { ...base, ...headers }, payload),
        put: (url, payload, headers = {}) => send('PUT', url, { ...base, ...headers }, payload),
        delete: (url, headers = {}) => send('DELETE', url, { ...base, ...headers }),
      };
    },
    transcript: () => seen.join('\n'),
  };
}

/** The path of a mailbox; the address may hold Unicode or characters a URL path must escape. */
export const mailboxUrl = (address: string) => `/v1/mailboxes/${encodeURIComponent(address)}`;
export const domainUrl = (name: string) => `/v1/domains/${encodeURIComponent(name)}`;

export interface TestKey {
  id: string;
  name: string;
  token: string;
  headers: { authorization: string };
}

/** An API key made through the core, with the id and name audit events record for it. */
export async function makeKey(services: Services, role: Role, name: string, domains?: string[]): Promise<TestKey> {
  const key = await services.apiKeys.create(
    { name, role, domains: domains ?? null },
    { id: 'test', name: 'test setup', domains: null },
  );
  return { id: key.id, name: key.name, token: key.token, headers: { authorization: `Bearer ${key.token}` } };
}

export interface AuditEvent {
  id: string;
  at: string;
  actor: { id: string; name: string };
  action: string;
  targetType: string;
  target: string;
  domain: string | null;
  before: Record<string, any> | null;
  after: Record<string, any> | null;
  requestId: string | null;
  ip: string | null;
}

/** Every audit event matching the query, newest first, read through the API as the given caller. */
export async function auditEvents(caller: Caller, query = ''): Promise<{ items: AuditEvent[]; raw: string }> {
  const items: AuditEvent[] = [];
  let raw = '';
  let cursor: string | null = null;
  do {
    const url: string = `/v1/audit-events?limit=500${query ? `&${query}` : ''}${cursor ? `&cursor=${cursor}` : ''}`;
    const page = await caller.get(url);
    if (page.statusCode !== 200) throw new Error(`audit events: ${page.statusCode} ${page.body}`);
    raw += page.body;
    const body = page.json() as { items: AuditEvent[]; nextCursor: string | null };
    items.push(...body.items);
    cursor = body.nextCursor;
  } while (cursor !== null);
  return { items, raw };
}

/** The stored accounts row of a mailbox (hash included), read directly: tests may look, never touch. */
export async function accountRow(database: DatabaseHandle, address: string) {
  const [row] = await database.db.select().from(accounts).where(eq(accounts.address, address));
  return row;
}
