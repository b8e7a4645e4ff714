import { eq } from 'drizzle-orm';
import type { InjectOptions } from 'fastify';
import t from 'tap';
import { accounts } from '../../src/db/schema/index.js';
import { buildTestApi, PASSWORD } from '../helpers/api.js';

// An admin key confined to domain A walks every /v1 route against domain B: it must neither read
// nor change anything of B. Admin is the strongest role, so what it cannot do no role can.
// One failed login locks a mailbox, so B's lockout is there to be (not) lifted.
const api = await buildTestApi(t, { loginThrottle: { failuresPerIp: 0, failuresPerMailbox: 1, lockSeconds: 600, maxDelayMs: 0 } });
const { app, admin } = api;

const A = 'tenant-a.test';
const B = 'tenant-b.test';
// Strings only B's data holds: none may appear in an answer to the confined key.
const SECRET_NAME = 'Bertha Secretname';
const SECRET_SUBJECT = 'quarterly-figures-of-b';

async function setup(request: InjectOptions, status: number) {
  const response = await app.inject({ ...request, headers: { ...admin, ...request.headers } });
  if (response.statusCode !== status) throw new Error(`setup ${request.method} ${request.url}: ${response.body}`);
  return response;
}

await setup({ method: 'POST', url: '/v1/domains', payload: { name: A } }, 201);
await setup({ method: 'POST', url: '/v1/domains', payload: { name: B } }, 201);
await setup({ method: 'POST', url: '/v1/mailboxes', payload: { address: `ann@${A}`, password: PASSWORD } }, 201);
const victim = `bertha@${B}`;
await setup({ method: 'POST', url: '/v1/mailboxes', payload: { address: victim, password: PASSWORD, displayName: SECRET_NAME } }, 201);
await setup(
  {
    method: 'POST',
    url: `/v1/mailboxes/${victim}/messages`,
    headers: { 'content-type': 'message/rfc822' },
    payload: `From: boss@${B}\r\nSubject: ${SECRET_SUBJECT}\r\n\r\nconfidential\r\n`,
  },
  201,
);
await api.services.login.login({ address: victim, password: 'a guess', protocol: 'imap', ip: '192.0.2.1' }).catch(() => {});
if (!(await setup({ method: 'GET', url: `/v1/mailboxes/${victim}/login-lockout` }, 200)).json().locked) throw new Error('setup: B is not locked');
const otherKey = (await setup({ method: 'POST', url: '/v1/api-keys', payload: { name: 'key-of-b', role: 'support', domains: [B] } }, 201)).json();
const confined = await api.keyFor('admin', [A]);
const hookOfB = (await setup({ method: 'POST', url: '/v1/webhooks', payload: { url: 'https://hooks.example.net/b', domains: [B] } }, 201)).json();

/** Everything of B as an unconfined admin sees it: any change by the confined key shows here. */
async function stateOfB(): Promise<string> {
  const reads = [
    `/v1/domains/${B}`,
    `/v1/mailboxes?domain=${B}&limit=500`,
    `/v1/mailboxes/${victim}`,
    `/v1/mailboxes/${victim}/folders`,
    `/v1/mailboxes/${victim}/export`,
    `/v1/mailboxes/${victim}/login-lockout`,
    `/v1/webhooks/${hookOfB.id}`,
  ];
  const bodies = await Promise.all(reads.map(async (url) => (await app.inject({ method: 'GET', url, headers: admin })).body));
  const keys = (await app.inject({ method: 'GET', url: '/v1/api-keys?limit=500', headers: admin })).json();
  // Only B's key: the confined key's own last use moves with every request.
  bodies.push(JSON.stringify(keys.items.filter((key: { id: string }) => key.id === otherKey.id)));
  // The password hash is in no answer, so it is read from the table.
  const [account] = await api.database.db.select({ hash: accounts.passwordHash }).from(accounts).where(eq(accounts.address, victim));
  return JSON.stringify([...bodies, account?.hash]);
}

interface Case {
  route: string;
  variant?: string;
  request: InjectOptions;
  /** The answer the confined key gets; 404 where B's resource is addressed (its existence is not told). */
  status: number;
}

const mbox = `From x Thu Jan  1 00:00:00 2026\nSubject: planted\n\nx\n\n`;
const CASES: Case[] = [
  { route: 'POST /v1/domains', request: { method: 'POST', url: '/v1/domains', payload: { name: `new.${B}` } }, status: 403 },
  { route: 'GET /v1/domains', request: { method: 'GET', url: '/v1/domains?limit=500' }, status: 200 },
  { route: 'GET /v1/domains/{domain}', request: { method: 'GET', url: `/v1/domains/${B}` }, status: 404 },
  { route: 'PATCH /v1/domains/{domain}', request: { method: 'PATCH', url: `/v1/domains/${B}`, payload: { status: 'suspended' } }, status: 404 },
  { route: 'DELETE /v1/domains/{domain}', request: { method: 'DELETE', url: `/v1/domains/${B}` }, status: 404 },
  { route: 'POST /v1/mailboxes', request: { method: 'POST', url: '/v1/mailboxes', payload: { address: `intruder@${B}`, password: PASSWORD } }, status: 404 },
  { route: 'GET /v1/mailboxes', request: { method: 'GET', url: '/v1/mailboxes?limit=500' }, status: 200 },
  { route: 'GET /v1/mailboxes', variant: 'filtered to B', request: { method: 'GET', url: `/v1/mailboxes?domain=${B}&limit=500` }, status: 404 },
  { route: 'GET /v1/mailboxes/{address}', request: { method: 'GET', url: `/v1/mailboxes/${victim}` }, status: 404 },
  { route: 'PATCH /v1/mailboxes/{address}', request: { method: 'PATCH', url: `/v1/mailboxes/${victim}`, payload: { status: 'suspended' } }, status: 404 },
  { route: 'DELETE /v1/mailboxes/{address}', request: { method: 'DELETE', url: `/v1/mailboxes/${victim}` }, status: 404 },
  {
    route: 'PUT /v1/mailboxes/{address}/password',
    request: { method: 'PUT', url: `/v1/mailboxes/${victim}/password`, payload: { password: `${PASSWORD} taken over` } },
    status: 404,
  },
  { route: 'GET /v1/mailboxes/{address}/folders', request: { method: 'GET', url: `/v1/mailboxes/${victim}/folders` }, status: 404 },
  { route: 'GET /v1/mailboxes/{address}/sessions', request: { method: 'GET', url: `/v1/mailboxes/${victim}/sessions` }, status: 404 },
  { route: 'DELETE /v1/mailboxes/{address}/sessions', request: { method: 'DELETE', url: `/v1/mailboxes/${victim}/sessions` }, status: 404 },
  { route: 'GET /v1/mailboxes/{address}/login-lockout', request: { method: 'GET', url: `/v1/mailboxes/${victim}/login-lockout` }, status: 404 },
  { route: 'DELETE /v1/mailboxes/{address}/login-lockout', request: { method: 'DELETE', url: `/v1/mailboxes/${victim}/login-lockout` }, status: 404 },
  { route: 'GET /v1/mailboxes/{address}/login-check', request: { method: 'GET', url: `/v1/mailboxes/${victim}/login-check` }, status: 404 },
  { route: 'DELETE /v1/mailboxes/{address}/login-check/lockout', request: { method: 'DELETE', url: `/v1/mailboxes/${victim}/login-check/lockout` }, status: 404 },
  {
    route: 'POST /v1/mailboxes/{address}/quota:preview',
    request: { method: 'POST', url: `/v1/mailboxes/${victim}/quota:preview`, payload: { storageBytes: 1 } },
    status: 404,
  },
  // Client addresses are shared by every tenant: a confined key may not look at them at all.
  { route: 'GET /v1/login-lockouts/clients/{ip}', request: { method: 'GET', url: '/v1/login-lockouts/clients/127.0.0.1' }, status: 403 },
  { route: 'DELETE /v1/login-lockouts/clients/{ip}', request: { method: 'DELETE', url: '/v1/login-lockouts/clients/127.0.0.1' }, status: 403 },
  {
    route: 'POST /v1/mailboxes/{address}/messages',
    request: { method: 'POST', url: `/v1/mailboxes/${victim}/messages`, headers: { 'content-type': 'message/rfc822' }, payload: 'Subject: planted\r\n\r\nx\r\n' },
    status: 404,
  },
  { route: 'GET /v1/mailboxes/{address}/client-config', request: { method: 'GET', url: `/v1/mailboxes/${victim}/client-config` }, status: 404 },
  { route: 'GET /v1/mailboxes/{address}/mobileconfig', request: { method: 'GET', url: `/v1/mailboxes/${victim}/mobileconfig` }, status: 404 },
  { route: 'GET /v1/mailboxes/{address}/export', request: { method: 'GET', url: `/v1/mailboxes/${victim}/export` }, status: 404 },
  {
    route: 'POST /v1/mailboxes/{address}/import',
    request: { method: 'POST', url: `/v1/mailboxes/${victim}/import`, headers: { 'content-type': 'application/mbox' }, payload: mbox },
    status: 404,
  },
  { route: 'POST /v1/api-keys', request: { method: 'POST', url: '/v1/api-keys', payload: { name: 'escalate', role: 'admin', domains: [B] } }, status: 403 },
  { route: 'POST /v1/api-keys', variant: 'unconfined', request: { method: 'POST', url: '/v1/api-keys', payload: { name: 'escalate', role: 'admin' } }, status: 403 },
  // Keys are managed by unconfined admins only.
  { route: 'GET /v1/api-keys', request: { method: 'GET', url: '/v1/api-keys?limit=500' }, status: 403 },
  { route: 'DELETE /v1/api-keys/{id}', request: { method: 'DELETE', url: `/v1/api-keys/${otherKey.id}` }, status: 403 },
  { route: 'GET /v1/audit-events', request: { method: 'GET', url: '/v1/audit-events?limit=500' }, status: 200 },
  { route: 'GET /v1/audit-events', variant: 'about B', request: { method: 'GET', url: `/v1/audit-events?target=${victim}&limit=500` }, status: 200 },
  // Each operation fails alone, as its single request would (the address in capitals: an answer names what was sent).
  {
    route: 'POST /v1/mailboxes:batch',
    request: {
      method: 'POST',
      url: '/v1/mailboxes:batch',
      payload: {
        items: [
          { op: 'create', address: `intruder@${B}`, password: PASSWORD },
          { op: 'update', address: `BERTHA@${B}`, status: 'suspended' },
          { op: 'create', address: `ann2@${A}`, passwordHash: '$2b$04$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234' },
        ],
      },
    },
    status: 200,
  },
  { route: 'POST /v1/mailboxes:batch', variant: 'delete', request: { method: 'POST', url: '/v1/mailboxes:batch', payload: { items: [{ op: 'delete', address: `BERTHA@${B}` }] } }, status: 200 },
  // Webhooks see every domain's events: managed by unconfined admins only.
  { route: 'POST /v1/webhooks', request: { method: 'POST', url: '/v1/webhooks', payload: { url: 'https://evil.example/', domains: [B] } }, status: 403 },
  { route: 'GET /v1/webhooks', request: { method: 'GET', url: '/v1/webhooks' }, status: 403 },
  { route: 'GET /v1/webhooks/{id}', request: { method: 'GET', url: `/v1/webhooks/${hookOfB.id}` }, status: 403 },
  { route: 'GET /v1/webhooks/{id}/deliveries', request: { method: 'GET', url: `/v1/webhooks/${hookOfB.id}/deliveries` }, status: 403 },
  { route: 'DELETE /v1/webhooks/{id}', request: { method: 'DELETE', url: `/v1/webhooks/${hookOfB.id}` }, status: 403 },
];

t.test('the cases cover every /v1 route of the OpenAPI document', async (t) => {
  const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, object> };
  const documented = Object.entries(document.paths)
    .filter(([path]) => path.startsWith('/v1/'))
    .flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`));
  t.same([...new Set(CASES.map((c) => c.route))].sort(), documented.sort());
});

t.test('a key confined to A can neither read nor change anything of B', async (t) => {
  const before = await stateOfB();
  for (const c of CASES) {
    const name = `${c.route}${c.variant ? ` (${c.variant})` : ''}`;
    const response = await app.inject({ ...c.request, headers: { ...c.request.headers, ...confined } });
    t.equal(response.statusCode, c.status, `${name}: ${response.statusCode} (${response.body.slice(0, 160)})`);
    for (const secret of [SECRET_NAME, SECRET_SUBJECT, 'bertha', 'key-of-b', otherKey.id]) {
      t.notOk(response.body.includes(secret) && !c.request.url!.toString().includes(secret), `${name}: the answer holds nothing of B (${secret})`);
    }
    if (response.statusCode >= 400) {
      t.match(response.headers['content-type'], /^application\/problem\+json/, `${name}: a problem document`);
    }
    t.equal(await stateOfB(), before, `${name}: B is unchanged`);
  }
});

t.test('the same key still works on A, so the refusals above are about B', async (t) => {
  const own = await app.inject({ method: 'GET', url: `/v1/mailboxes/ann@${A}`, headers: confined });
  t.equal(own.statusCode, 200);
  const listed = await app.inject({ method: 'GET', url: '/v1/domains?limit=500', headers: confined });
  t.same(listed.json().items.map((d: { name: string }) => d.name), [A]);
});
