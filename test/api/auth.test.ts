import bcrypt from 'bcryptjs';
import type { InjectOptions } from 'fastify';
import t from 'tap';
import type { Role } from '../../src/core/api-keys/service.js';
import { ADMIN_TOKEN, buildTestApi, PASSWORD } from '../helpers/api.js';
import { assertProblem } from '../helpers/problem.js';

const api = await buildTestApi(t);
const { app, admin } = api;
const keys: Record<Role, { authorization: string }> = {
  admin: await api.keyFor('admin'),
  provisioner: await api.keyFor('provisioner'),
  support: await api.keyFor('support'),
};
const ROLES = Object.keys(keys) as Role[];

let counter = 0;
const unique = () => `r${++counter}`;

async function freshDomain(): Promise<string> {
  const name = `${unique()}.test`;
  const created = await app.inject({ method: 'POST', url: '/v1/domains', headers: admin, payload: { name } });
  if (created.statusCode !== 201) throw new Error(`setup: domain ${created.body}`);
  return name;
}

await app.inject({ method: 'POST', url: '/v1/domains', headers: admin, payload: { name: 'matrix.test' } });
async function freshMailbox(): Promise<string> {
  const address = `${unique()}@matrix.test`;
  const created = await app.inject({ method: 'POST', url: '/v1/mailboxes', headers: admin, payload: { address, password: PASSWORD } });
  if (created.statusCode !== 201) throw new Error(`setup: mailbox ${created.body}`);
  return address;
}

async function freshKeyId(): Promise<string> {
  const created = await app.inject({ method: 'POST', url: '/v1/api-keys', headers: admin, payload: { name: unique(), role: 'support' } });
  return created.json().id;
}

async function freshWebhookId(): Promise<string> {
  const created = await app.inject({ method: 'POST', url: '/v1/webhooks', headers: admin, payload: { url: 'http://127.0.0.1:9/hook' } });
  if (created.statusCode !== 201) throw new Error(`setup: webhook ${created.body}`);
  return created.json().id;
}

const sharedDomain = await freshDomain();
const sharedMailbox = await freshMailbox();
const importedHash = bcrypt.hashSync('imported secret', 4);

interface Case {
  /** The route as OpenAPI names it. */
  route: string;
  /** What the request changes, for routes where the role decides per field. */
  variant?: string;
  allowed: readonly Role[];
  success: number;
  /** Headers other than Authorization, e.g. the content type of a raw body. */
  request(): Promise<Omit<InjectOptions, 'headers'> & { headers?: Record<string, string> }>;
}

const WRITERS = ['admin', 'provisioner'] as const;
const EVERYONE = ['admin', 'provisioner', 'support'] as const;

const CASES: Case[] = [
  { route: 'POST /v1/domains', allowed: WRITERS, success: 201, request: async () => ({ method: 'POST', url: '/v1/domains', payload: { name: `${unique()}.test` } }) },
  { route: 'GET /v1/domains', allowed: EVERYONE, success: 200, request: async () => ({ method: 'GET', url: '/v1/domains' }) },
  { route: 'GET /v1/domains/{domain}', allowed: EVERYONE, success: 200, request: async () => ({ method: 'GET', url: `/v1/domains/${sharedDomain}` }) },
  {
    route: 'PATCH /v1/domains/{domain}',
    allowed: WRITERS,
    success: 200,
    request: async () => ({ method: 'PATCH', url: `/v1/domains/${await freshDomain()}`, payload: { status: 'suspended' } }),
  },
  { route: 'DELETE /v1/domains/{domain}', allowed: WRITERS, success: 204, request: async () => ({ method: 'DELETE', url: `/v1/domains/${await freshDomain()}` }) },
  {
    route: 'POST /v1/mailboxes',
    allowed: WRITERS,
    success: 201,
    request: async () => ({ method: 'POST', url: '/v1/mailboxes', payload: { address: `${unique()}@matrix.test`, password: PASSWORD } }),
  },
  { route: 'GET /v1/mailboxes', allowed: EVERYONE, success: 200, request: async () => ({ method: 'GET', url: '/v1/mailboxes' }) },
  { route: 'GET /v1/mailboxes/{address}', allowed: EVERYONE, success: 200, request: async () => ({ method: 'GET', url: `/v1/mailboxes/${sharedMailbox}` }) },
  {
    route: 'PATCH /v1/mailboxes/{address}',
    variant: 'protocols',
    allowed: EVERYONE,
    success: 200,
    request: async () => ({ method: 'PATCH', url: `/v1/mailboxes/${await freshMailbox()}`, payload: { protocols: { pop3: false } } }),
  },
  {
    route: 'PATCH /v1/mailboxes/{address}',
    variant: 'status',
    allowed: EVERYONE,
    success: 200,
    request: async () => ({ method: 'PATCH', url: `/v1/mailboxes/${await freshMailbox()}`, payload: { status: 'suspended' } }),
  },
  {
    route: 'PATCH /v1/mailboxes/{address}',
    variant: 'displayName',
    allowed: WRITERS,
    success: 200,
    request: async () => ({ method: 'PATCH', url: `/v1/mailboxes/${await freshMailbox()}`, payload: { displayName: 'Renamed' } }),
  },
  {
    route: 'PATCH /v1/mailboxes/{address}',
    variant: 'protocols with reason and until',
    allowed: EVERYONE,
    success: 200,
    request: async () => ({
      method: 'PATCH',
      url: `/v1/mailboxes/${await freshMailbox()}`,
      payload: { protocols: { pop3: { enabled: false, reason: 'ticket 7', until: new Date(Date.now() + 3_600_000).toISOString() } } },
    }),
  },
  {
    route: 'PATCH /v1/mailboxes/{address}',
    variant: 'quota',
    allowed: WRITERS,
    success: 200,
    request: async () => ({ method: 'PATCH', url: `/v1/mailboxes/${await freshMailbox()}`, payload: { quota: { messages: 10 } } }),
  },
  {
    route: 'PATCH /v1/mailboxes/{address}',
    variant: 'pop3DeleteMode',
    allowed: WRITERS,
    success: 200,
    request: async () => ({ method: 'PATCH', url: `/v1/mailboxes/${await freshMailbox()}`, payload: { pop3DeleteMode: 'trash' } }),
  },
  {
    route: 'PATCH /v1/mailboxes/{address}',
    variant: 'protocols and displayName',
    allowed: WRITERS,
    success: 200,
    request: async () => ({
      method: 'PATCH',
      url: `/v1/mailboxes/${await freshMailbox()}`,
      payload: { protocols: { imap: false }, displayName: 'Sneaky' },
    }),
  },
  {
    route: 'PUT /v1/mailboxes/{address}/password',
    variant: 'password',
    allowed: EVERYONE,
    success: 204,
    request: async () => ({ method: 'PUT', url: `/v1/mailboxes/${sharedMailbox}/password`, payload: { password: `${PASSWORD} ${unique()}` } }),
  },
  {
    route: 'PUT /v1/mailboxes/{address}/password',
    variant: 'passwordHash',
    allowed: WRITERS,
    success: 204,
    request: async () => ({ method: 'PUT', url: `/v1/mailboxes/${sharedMailbox}/password`, payload: { passwordHash: importedHash } }),
  },
  { route: 'DELETE /v1/mailboxes/{address}', allowed: WRITERS, success: 204, request: async () => ({ method: 'DELETE', url: `/v1/mailboxes/${await freshMailbox()}` }) },
  {
    route: 'POST /v1/api-keys',
    allowed: ['admin'],
    success: 201,
    request: async () => ({ method: 'POST', url: '/v1/api-keys', payload: { name: unique(), role: 'admin' } }),
  },
  { route: 'GET /v1/api-keys', allowed: ['admin'], success: 200, request: async () => ({ method: 'GET', url: '/v1/api-keys' }) },
  { route: 'DELETE /v1/api-keys/{id}', allowed: ['admin'], success: 204, request: async () => ({ method: 'DELETE', url: `/v1/api-keys/${await freshKeyId()}` }) },
  {
    route: 'POST /v1/webhooks',
    allowed: ['admin'],
    success: 201,
    request: async () => ({ method: 'POST', url: '/v1/webhooks', payload: { url: 'http://127.0.0.1:9/hook' } }),
  },
  { route: 'GET /v1/webhooks', allowed: ['admin'], success: 200, request: async () => ({ method: 'GET', url: '/v1/webhooks' }) },
  { route: 'GET /v1/webhooks/{id}', allowed: ['admin'], success: 200, request: async () => ({ method: 'GET', url: `/v1/webhooks/${await freshWebhookId()}` }) },
  {
    route: 'GET /v1/webhooks/{id}/deliveries',
    allowed: ['admin'],
    success: 200,
    request: async () => ({ method: 'GET', url: `/v1/webhooks/${await freshWebhookId()}/deliveries` }),
  },
  { route: 'DELETE /v1/webhooks/{id}', allowed: ['admin'], success: 204, request: async () => ({ method: 'DELETE', url: `/v1/webhooks/${await freshWebhookId()}` }) },
  {
    route: 'POST /v1/mailboxes:batch',
    allowed: WRITERS,
    success: 200,
    request: async () => ({
      method: 'POST',
      url: '/v1/mailboxes:batch',
      payload: { items: [{ op: 'create', address: `${unique()}@matrix.test`, password: PASSWORD }] },
    }),
  },
  { route: 'GET /v1/audit-events', allowed: ['admin', 'support'], success: 200, request: async () => ({ method: 'GET', url: '/v1/audit-events' }) },
  { route: 'GET /v1/mailboxes/{address}/folders', allowed: EVERYONE, success: 200, request: async () => ({ method: 'GET', url: `/v1/mailboxes/${sharedMailbox}/folders` }) },
  { route: 'GET /v1/mailboxes/{address}/sessions', allowed: EVERYONE, success: 200, request: async () => ({ method: 'GET', url: `/v1/mailboxes/${sharedMailbox}/sessions` }) },
  { route: 'DELETE /v1/mailboxes/{address}/sessions', allowed: EVERYONE, success: 204, request: async () => ({ method: 'DELETE', url: `/v1/mailboxes/${sharedMailbox}/sessions` }) },
  { route: 'GET /v1/mailboxes/{address}/login-lockout', allowed: EVERYONE, success: 200, request: async () => ({ method: 'GET', url: `/v1/mailboxes/${sharedMailbox}/login-lockout` }) },
  { route: 'DELETE /v1/mailboxes/{address}/login-lockout', allowed: EVERYONE, success: 204, request: async () => ({ method: 'DELETE', url: `/v1/mailboxes/${sharedMailbox}/login-lockout` }) },
  { route: 'GET /v1/mailboxes/{address}/login-check', allowed: EVERYONE, success: 200, request: async () => ({ method: 'GET', url: `/v1/mailboxes/${sharedMailbox}/login-check` }) },
  { route: 'DELETE /v1/mailboxes/{address}/login-check/lockout', allowed: EVERYONE, success: 204, request: async () => ({ method: 'DELETE', url: `/v1/mailboxes/${sharedMailbox}/login-check/lockout` }) },
  {
    route: 'POST /v1/mailboxes/{address}/quota:preview',
    allowed: EVERYONE,
    success: 200,
    request: async () => ({ method: 'POST', url: `/v1/mailboxes/${sharedMailbox}/quota:preview`, payload: { storageBytes: 1000 } }),
  },
  { route: 'GET /v1/mailboxes/{address}/client-config', allowed: EVERYONE, success: 200, request: async () => ({ method: 'GET', url: `/v1/mailboxes/${sharedMailbox}/client-config` }) },
  { route: 'GET /v1/mailboxes/{address}/mobileconfig', allowed: EVERYONE, success: 200, request: async () => ({ method: 'GET', url: `/v1/mailboxes/${sharedMailbox}/mobileconfig` }) },
  { route: 'GET /v1/login-lockouts/clients/{ip}', allowed: EVERYONE, success: 200, request: async () => ({ method: 'GET', url: '/v1/login-lockouts/clients/192.0.2.44' }) },
  { route: 'DELETE /v1/login-lockouts/clients/{ip}', allowed: EVERYONE, success: 204, request: async () => ({ method: 'DELETE', url: '/v1/login-lockouts/clients/192.0.2.44' }) },
  {
    route: 'POST /v1/mailboxes/{address}/messages',
    allowed: WRITERS,
    success: 201,
    request: async () => ({
      method: 'POST',
      url: `/v1/mailboxes/${sharedMailbox}/messages`,
      headers: { 'content-type': 'message/rfc822' },
      payload: `Subject: ${unique()}\r\n\r\nx\r\n`,
    }),
  },
  { route: 'GET /v1/mailboxes/{address}/export', allowed: EVERYONE, success: 200, request: async () => ({ method: 'GET', url: `/v1/mailboxes/${sharedMailbox}/export` }) },
  {
    route: 'POST /v1/mailboxes/{address}/import',
    allowed: WRITERS,
    success: 200,
    request: async () => ({
      method: 'POST',
      url: `/v1/mailboxes/${sharedMailbox}/import`,
      headers: { 'content-type': 'application/mbox' },
      payload: `From x Thu Jan  1 00:00:00 2026\nSubject: ${unique()}\n\nx\n\n`,
    }),
  },
];

/** Id of the newest audit event: every mutation writes one, so an unchanged id means nothing changed. */
async function newestEvent(): Promise<string | undefined> {
  const page = await api.services.audit.list({}, { limit: 1 }, { id: 'test', name: 'test', domains: null });
  return page.items[0]?.id;
}

t.test('the role matrix covers every /v1 route of the OpenAPI document', async (t) => {
  const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, object> };
  const documented = Object.entries(document.paths)
    .filter(([path]) => path.startsWith('/v1/'))
    .flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`));
  t.same([...new Set(CASES.map((c) => c.route))].sort(), documented.sort());
});

t.test('every /v1 route answers 401 with WWW-Authenticate: Bearer without a token', async (t) => {
  for (const c of CASES) {
    const request = await c.request();
    const response = await app.inject(request);
    assertProblem(t, response, 401, 'unauthenticated');
    t.match(response.headers['www-authenticate'], /^Bearer( |$)/, `${c.route} challenges for a Bearer token`);
  }
});

t.test('role matrix', async (t) => {
  for (const c of CASES) {
    for (const role of ROLES) {
      const name = `${role} ${c.route}${c.variant ? ` (${c.variant})` : ''}`;
      const request = await c.request();
      const before = await newestEvent();
      const response = await app.inject({ ...request, headers: { ...request.headers, ...keys[role] } });
      if (c.allowed.includes(role)) {
        t.equal(response.statusCode, c.success, `${name}: allowed (${response.body.slice(0, 200)})`);
      } else {
        const problem = assertProblem(t, response, 403, 'role_forbidden');
        t.match(problem.detail, new RegExp(role), `${name}: the detail names the role`);
        t.equal(await newestEvent(), before, `${name}: nothing changed`);
      }
    }
  }
});

t.test('malformed Authorization headers and unknown tokens answer 401 unauthenticated', async (t) => {
  const headers = [
    `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}`,
    'Bearer',
    'Bearer ',
    `Bearer  ${ADMIN_TOKEN}`,
    `Bearer ${ADMIN_TOKEN} extra`,
    `Token ${ADMIN_TOKEN}`,
    ADMIN_TOKEN,
    `Bearer ${'a'.repeat(513)}`,
    'Bearer mr_unknown-token',
    `Bearer ${ADMIN_TOKEN.toUpperCase()}`,
  ];
  for (const authorization of headers) {
    const response = await app.inject({ method: 'GET', url: '/v1/domains', headers: { authorization } });
    assertProblem(t, response, 401, 'unauthenticated');
    t.match(response.headers['www-authenticate'], /^Bearer/);
  }
});

t.test('the Bearer scheme name is case-insensitive (RFC 9110 §11.1)', async (t) => {
  for (const scheme of ['bearer', 'BEARER', 'Bearer']) {
    const response = await app.inject({ method: 'GET', url: '/v1/domains', headers: { authorization: `${scheme} ${ADMIN_TOKEN}` } });
    t.equal(response.statusCode, 200, scheme);
  }
});

t.test('authentication comes before validation and lookups, so strangers learn nothing', async (t) => {
  const requests: InjectOptions[] = [
    { method: 'POST', url: '/v1/domains', payload: { name: 42, color: 'red' } },
    { method: 'POST', url: '/v1/domains', headers: { 'content-type': 'application/json' }, payload: '{"name":' },
    { method: 'GET', url: '/v1/domains/nowhere.test' },
    { method: 'GET', url: '/v1/domains?limit=0' },
    { method: 'DELETE', url: '/v1/api-keys/garbage' },
    { method: 'POST', url: '/v1/domains', headers: { 'idempotency-key': '' }, payload: { name: 'x.test' } },
  ];
  for (const request of requests) {
    assertProblem(t, await app.inject({ ...request, headers: { ...request.headers, authorization: 'Bearer nope' } }), 401, 'unauthenticated');
  }
});

t.test('unknown routes answer 404 problem+json not_found, with or without a token', async (t) => {
  for (const headers of [{}, admin]) {
    for (const [method, url] of [
      ['GET', '/v1/nothing'],
      ['GET', '/v2/domains'],
      ['GET', '/v1/api-keys/00000000-0000-4000-8000-000000000000'],
      ['PUT', '/v1/domains'],
      ['POST', '/healthz'],
      ['GET', '/'],
    ] as const) {
      const problem = assertProblem(t, await app.inject({ method, url, headers }), 404, 'not_found');
      t.equal(problem.instance, url);
    }
  }
});

t.test('public routes need no token', async (t) => {
  const health = await app.inject({ method: 'GET', url: '/healthz' });
  t.equal(health.statusCode, 200);
  t.same(health.json(), { status: 'ok' });
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
  const metrics = await app.inject({ method: 'GET', url: '/metrics' });
  t.equal(metrics.statusCode, 200);
  t.match(metrics.body, /mailroom_http_request_duration_seconds/);
  const openapi = await app.inject({ method: 'GET', url: '/openapi.json' });
  t.equal(openapi.statusCode, 200);
  t.ok(openapi.json().paths['/v1/domains']);
  const docs = await app.inject({ method: 'GET', url: '/docs' });
  t.equal(docs.statusCode, 200);
  t.match(docs.headers['content-type'], /text\/html/);
  // A wrong token does not break a public route either.
  t.equal((await app.inject({ method: 'GET', url: '/healthz', headers: { authorization: 'Bearer nope' } })).statusCode, 200);
});

t.test('a confined key sees only the domains and mailboxes it is confined to', async (t) => {
  const other = await freshDomain();
  await app.inject({ method: 'POST', url: '/v1/mailboxes', headers: admin, payload: { address: `ann@${other}`, password: PASSWORD } });
  for (const confinedTo of [[sharedDomain], [sharedDomain, 'matrix.test']]) {
    const label = `confined to ${confinedTo.join(', ')}`;
    const headers = await api.keyFor('support', confinedTo);
    const domains = await app.inject({ method: 'GET', url: '/v1/domains?limit=500', headers });
    t.equal(domains.statusCode, 200, `domain list, ${label}`);
    if (domains.statusCode === 200) {
      t.same(domains.json().items.map((d: { name: string }) => d.name), [...confinedTo].sort());
    }
    const mailboxes = await app.inject({ method: 'GET', url: '/v1/mailboxes?limit=500', headers });
    t.equal(mailboxes.statusCode, 200, `mailbox list, ${label}`);
    if (mailboxes.statusCode === 200) {
      t.ok(mailboxes.json().items.every((m: { domain: string }) => confinedTo.includes(m.domain)));
    }
    t.equal((await app.inject({ method: 'GET', url: `/v1/domains/${sharedDomain}`, headers })).statusCode, 200, label);
    assertProblem(t, await app.inject({ method: 'GET', url: `/v1/domains/${other}`, headers }), 404, 'domain_not_found');
    assertProblem(t, await app.inject({ method: 'GET', url: `/v1/mailboxes/ann@${other}`, headers }), 404, 'mailbox_not_found');
  }
});
