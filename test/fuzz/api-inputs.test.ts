import { sql } from 'drizzle-orm';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { ACTOR } from '../helpers/gateway.js';
import { buildTestApi, PASSWORD } from '../helpers/api.js';
import type { Injected } from '../helpers/problem.js';
import { newLeaks } from '../helpers/secrets.js';

// Hostile requests to every documented route, as an admin: wrong types, huge and odd strings,
// deep nesting, unknown fields, bad path and query parameters, bad content types, malformed
// bodies. Whatever comes in, the answer is below 500, every 4xx is our problem document, no
// answer or log line holds a secret, and a refused mutation leaves the database as it was.
// FUZZ_RUNS (requests per route) raises the count for a longer hunt.
const RUNS = Number(process.env.FUZZ_RUNS ?? 40);

const DOMAIN = 'fuzz.test';
const ADDRESS = `ann@${DOMAIN}`;
const api = await buildTestApi(t, { bodyLimit: 256 * 1024, maxMessageSize: 64 * 1024 });
const { app, services, database } = api;
const key = await services.apiKeys.create({ name: 'fuzz target', role: 'support', domains: [DOMAIN] }, ACTOR);

/** The domain and mailbox the valid path parameters name, made again when a request deleted them. */
async function seed(): Promise<void> {
  const exists = (error: { code?: string }) => {
    if (error.code !== 'domain_exists' && error.code !== 'mailbox_exists') throw error;
  };
  await services.domains.create({ name: DOMAIN }, ACTOR).catch(exists);
  await services.mailboxes.create({ address: ADDRESS, password: PASSWORD }, ACTOR).catch(exists);
}
await seed();

// Idempotency keys keep any answer below 500 for replay, by design; blob bytes are summed, not read.
type Rows<T> = { rows: T[] };
const tables = (
  (await database.db.execute(
    sql`select table_name as name from information_schema.tables where table_schema = 'public' and table_name not in ('idempotency_keys', 'blobs') order by 1`,
  )) as unknown as Rows<{ name: string }>
).rows.map((row) => row.name);
const fingerprintQuery = sql.join(
  [
    ...tables.map((table) => sql`select ${sql.raw(`'${table}'`)}, md5(coalesce(string_agg(x::text, '|' order by x::text), '')) from ${sql.identifier(table)} x`),
    sql`select 'blobs', count(*)::text || ':' || coalesce(sum(ref_count), 0)::text from blobs`,
  ],
  sql` union all `,
);

/** Every row of every table but two, hashed: a cheap way to see that nothing changed. */
async function fingerprint(): Promise<string> {
  return JSON.stringify(((await database.db.execute(fingerprintQuery)) as unknown as Rows<unknown>).rows);
}

// Strings that have broken parsers, routers and validators before.
const NASTY = [
  '', ' ', '\u0000', 'a\u0000b', '\r\n', '\t', '\u202e', '\ufeff', '\ud800', '💌', 'é', 'I\u0307', 'ǅ', '..', '../..', '/', '\\',
  '%', '%00', '%zz', '%2e%2e', '%2F', '?', '#', '&', '=', '*', "'", '"', '`', '${x}', '{{x}}', '<script>', 'null', 'undefined',
  'true', '0', '-1', 'NaN', 'Infinity', '1e309', '9007199254740993', '__proto__', 'constructor', 'prototype', 'toString',
  ADDRESS, DOMAIN, `ANN@${DOMAIN.toUpperCase()}`, `new@${DOMAIN}`, 'other.test', 'xn--', 'xn--zz', 'a@b', '@', 'a@', '@b',
  `${'a'.repeat(64)}@${DOMAIN}`, `${'a'.repeat(65)}@${DOMAIN}`, `${'a'.repeat(250)}.test`, `ann@${'b'.repeat(300)}.test`,
];
const huge = fc.constantFrom(1_000, 70_000, 200_000).chain((n) => fc.constantFrom('a', '\u0000', 'é', '💌', '%').map((c) => c.repeat(n)));
const hostileString = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NASTY) },
  { weight: 3, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }) },
  { weight: 1, arbitrary: huge },
);
const hostileNumber = fc.oneof(
  fc.constantFrom(0, -0, -1, 0.5, 2 ** 31, 2 ** 53, 2 ** 63, Number.MAX_VALUE, -Number.MAX_VALUE, 1e-300),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const jsonValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    hostileNumber,
    hostileString,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(hostileString, tie('value'), { maxKeys: 4 }),
  ),
})).value;

type Schema = Record<string, any>;

/**
 * Mostly what the schema describes, so requests get past the first check, with a hostile value
 * in place of any part a quarter of the time and unknown fields now and then.
 */
function fromSchema(schema: Schema, name = ''): fc.Arbitrary<unknown> {
  // A password or hash given is remembered as a secret; unique ones cannot match an unrelated output.
  if (/password/i.test(name)) {
    return fc.oneof(jsonValue, fc.tuple(fc.uuid(), hostileString).map(([id, rest]) => `${id}${rest}`));
  }
  return fc.oneof({ weight: 6, arbitrary: shaped(schema) }, { weight: 1, arbitrary: jsonValue });
}

function shaped(schema: Schema): fc.Arbitrary<unknown> {
  const branches = schema.anyOf ?? schema.oneOf;
  if (branches) return fc.oneof(...branches.map((branch: Schema) => shaped(branch)));
  if (schema.enum) return fc.constantFrom(...schema.enum);
  switch (schema.type) {
    case 'object': {
      const properties = Object.entries<Schema>(schema.properties ?? {});
      const known = fc.record(Object.fromEntries(properties.map(([name, inner]) => [name, fromSchema(inner, name)])), { requiredKeys: [] });
      const extra = fc.oneof({ weight: 4, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: fc.dictionary(hostileString, jsonValue, { minKeys: 1, maxKeys: 3 }) });
      return fc.tuple(known, extra).map(([object, more]) => ({ ...more, ...object }));
    }
    case 'array':
      return fc.array(fromSchema(schema.items ?? {}), { maxLength: 5 });
    case 'integer':
      return fc.oneof(fc.integer({ min: schema.minimum ?? -(2 ** 31), max: Math.min(schema.maximum ?? 2 ** 31, 2 ** 31) }), hostileNumber);
    case 'number':
      return hostileNumber;
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'string':
      return fc.oneof(fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 40, 40) }), hostileString);
    default:
      return jsonValue;
  }
}

// Bodies that never reach a route: broken JSON, prototype pollution, nesting deeper than any stack.
const deep = (n: number, open: string, close: string) => `${open.repeat(n)}${close.repeat(n)}`;
const RAW_BODIES = [
  '', ' ', '{', '}', '{"a":}', "{'a':1}", '{"a":1,}', '[1,]', 'NaN', 'nul', '"\\ud800"', '"\\u0000"', '\ufeff{}', '{}{}', '{"a":1}garbage',
  '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"admin":true}}}', '{"a":1,"a":2}', '1e999999', '-',
  deep(10_000, '[', ']'), deep(10_000, '{"a":', '}').replace(/:}/, ':1}'),
];
const CONTENT_TYPES = [
  'application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json; charset=latin1',
  'application/json; charset=utf-16', 'application/problem+json', 'application/merge-patch+json', 'text/plain',
  'text/html', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml',
  'application/octet-stream', 'message/rfc822', 'application/mbox', '*/*', ';;;', 'application/', '',
];
const contentType = fc.oneof(fc.constantFrom(...CONTENT_TYPES), fc.string({ maxLength: 20 }).filter(isHeaderValue));

function isHeaderValue(value: string): boolean {
  return /^[\x20-\x7e]*$/.test(value);
}

interface Operation {
  method: string;
  path: string;
  params: string[];
  query: { name: string; schema: Schema }[];
  body: { type: string; schema: Schema } | null;
  /** Refusals the route documents in a format of its protocol's own (autodiscover's XML Error), by status. */
  ownRefusals: Map<number, string[]>;
}

await app.ready();
const document = app.swagger() as unknown as { paths: Record<string, Record<string, Schema>> };
const operations: Operation[] = Object.entries(document.paths).flatMap(([path, methods]) =>
  Object.entries(methods).map(([method, operation]) => {
    const parameters: Schema[] = operation.parameters ?? [];
    const [type, content] = Object.entries<Schema>(operation.requestBody?.content ?? {})[0] ?? [];
    return {
      method: method.toUpperCase(),
      path,
      params: parameters.filter((p) => p.in === 'path').map((p) => p.name),
      query: parameters.filter((p) => p.in === 'query').map((p) => ({ name: p.name, schema: p.schema })),
      body: type ? { type, schema: content!.schema } : null,
      ownRefusals: new Map(
        Object.entries<Schema>(operation.responses ?? {})
          .filter(([status]) => Number(status) >= 400)
          .map(([status, response]) => [
            Number(status),
            Object.keys(response.content ?? {}).filter((type) => type !== 'application/problem+json' && type !== 'application/json'),
          ]),
      ),
    };
  }),
);

/** encodeURIComponent, after turning lone surrogates (which it refuses) into U+FFFD. */
const escape = (value: string) => encodeURIComponent(value.replace(/[\ud800-\udfff]/gu, '\ufffd'));

const VALID_PARAMS: Record<string, string> = { domain: DOMAIN, address: ADDRESS, id: key.id };

/** A path parameter: the real one, a hostile one escaped or double-escaped, or a raw escape or dot segment. */
const pathParam = (name: string) =>
  fc.oneof(
    { weight: 2, arbitrary: fc.constant(encodeURIComponent(VALID_PARAMS[name] ?? 'x')) },
    { weight: 3, arbitrary: hostileString.map(escape) },
    { weight: 1, arbitrary: hostileString.map((s) => encodeURIComponent(escape(s))) },
    { weight: 1, arbitrary: fc.constantFrom('..', '.', '%2e%2e', '..%2F..', 'a%2Fb', '%00', '%zz', '%', '%C0%AE', '%ED%A0%80', '+', 'a;b') },
  );

const queryValue = (schema: Schema) =>
  fc.oneof(shaped(schema).map((value) => (typeof value === 'object' ? JSON.stringify(value) : String(value))), hostileString);
const queryString = (operation: Operation) =>
  fc
    .tuple(
      fc.tuple(...operation.query.map(({ name, schema }) => fc.option(fc.array(queryValue(schema), { minLength: 1, maxLength: 2 }).map((values) => values.map((v) => [name, v] as const))))),
      fc.array(fc.tuple(hostileString, hostileString), { maxLength: 2 }),
      fc.oneof(
        { weight: 4, arbitrary: fc.constant('') },
        { weight: 1, arbitrary: fc.constantFrom('%', '%zz', '&&&', '=', 'a=%00', 'cursor=%ff%fe', 'limit[]=1', 'limit[a]=1', '__proto__[x]=1') },
      ),
    )
    .map(([declared, extra, raw]) => {
      const pairs = [...declared.flatMap((pair) => pair ?? []), ...extra];
      const text = new URLSearchParams(pairs.map(([k, v]) => [k, v])).toString();
      return [text, raw].filter(Boolean).join('&');
    });

interface Attempt {
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
}

const bodyFor = (operation: Operation): fc.Arbitrary<{ headers: Record<string, string>; payload?: string | Buffer }> => {
  const declared = operation.body;
  const json = declared?.type === 'application/json';
  const payloads = fc.oneof(
    { weight: json ? 6 : 0, arbitrary: shaped(declared?.schema ?? {}).map((value) => JSON.stringify(value)) },
    { weight: 2, arbitrary: jsonValue.map((value) => JSON.stringify(value) ?? 'null') },
    { weight: 2, arbitrary: fc.constantFrom(...RAW_BODIES) },
    { weight: json ? 1 : 4, arbitrary: fc.uint8Array({ maxLength: 2000 }).map((bytes) => Buffer.from(bytes)) },
    { weight: json ? 0 : 3, arbitrary: hostileString.map((s) => `Subject: ${s}\r\n\r\n${s}\r\n`) },
    { weight: json ? 0 : 2, arbitrary: hostileString.map((s) => `From ${s}\nFrom: ${s}\n\nbody\n\nFrom x Mon Jan  1 00:00:00 2026\n${s}\n`) },
  );
  const type = fc.oneof({ weight: 3, arbitrary: fc.constant(declared?.type ?? 'application/json') }, { weight: 1, arbitrary: contentType }, { weight: 1, arbitrary: fc.constant(null) });
  const bodyless = !declared && (operation.method === 'GET' || operation.method === 'DELETE');
  // A route without a body mostly gets none, but now and then one it must ignore or refuse.
  return fc.tuple(payloads, type, fc.boolean()).map(([payload, type, skip]) => {
    if (bodyless && skip) return { headers: {} };
    const headers: Record<string, string> = type === null ? {} : { 'content-type': type };
    return { headers, payload };
  });
};

const headerValue = fc.oneof(hostileString.filter(isHeaderValue), fc.constantFrom('*', '"x"', 'W/"x"', '', 'a'.repeat(10_000)));
const extraHeaders = fc.record(
  { 'idempotency-key': headerValue, 'if-match': headerValue, 'x-request-id': headerValue, accept: headerValue },
  { requiredKeys: [] },
);

const attempt = (operation: Operation): fc.Arbitrary<Attempt> =>
  fc
    .tuple(
      fc.tuple(...operation.params.map(pathParam)),
      operation.query.length > 0 ? queryString(operation) : fc.constant(''),
      bodyFor(operation),
      extraHeaders,
    )
    .map(([params, query, body, headers]) => {
      let path = operation.path;
      operation.params.forEach((name, i) => (path = path.replace(`{${name}}`, params[i]!)));
      return {
        url: query ? `${path}?${query}` : path,
        headers: { ...headers, ...body.headers, ...api.admin },
        ...(body.payload === undefined ? {} : { payload: body.payload }),
      };
    });

const MUTATIONS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The invariants of one answer (refusals in a format the route documents for that status pass); a message saying which one broke, or null. */
function broken(response: Injected, ownRefusals: readonly string[] = []): string | null {
  if (response.statusCode >= 500) return `status ${response.statusCode}`;
  if (response.statusCode < 400) return null;
  const type = String(response.headers['content-type']);
  if (ownRefusals.some((own) => type.startsWith(own))) return null;
  if (!String(response.headers['content-type']).startsWith('application/problem+json')) return `a ${response.statusCode} that is not problem+json`;
  const problem = response.json();
  const code: unknown = problem.code;
  if (typeof code !== 'string' || !/^[a-z][a-z0-9_]*$/.test(code)) return `a problem without a code: ${response.body}`;
  if (problem.type !== `https://mailroom.dev/problems/${code.replaceAll('_', '-')}`) return `a problem of the wrong type: ${response.body}`;
  if (problem.status !== response.statusCode) return `a problem whose status is not the response's: ${response.body}`;
  for (const field of ['title', 'detail', 'instance']) {
    if (typeof problem[field] !== 'string' || problem[field] === '') return `a problem without ${field}: ${response.body}`;
  }
  // A replay under an Idempotency-Key repeats the first answer, request id included, by design.
  const replayed = response.headers['idempotent-replayed'] === 'true';
  if (!replayed && problem.requestId !== response.headers['x-request-id']) return `a problem whose requestId is not the response's: ${response.body}`;
  return null;
}

/**
 * fc.assert, but a failure reports the broken invariant and the seed to replay it with, not the
 * counterexample: one with a 200 kB string would flood the report.
 */
async function check(t: Test, property: fc.IAsyncProperty<any>, numRuns: number): Promise<void> {
  const result = await fc.check(property, { numRuns });
  if (result.failed) {
    t.fail(String(result.errorInstance instanceof Error ? result.errorInstance.message : result.errorInstance), {
      seed: result.seed,
      path: result.counterexamplePath,
    });
  } else t.pass(`${numRuns} inputs: every answer below 500, every refusal a problem document, nothing leaked`);
}

let tried = 0;
const statuses = new Map<number, number>();

for (const operation of operations) {
  t.test(`${operation.method} ${operation.path}`, async (t) => {
    await check(t, fc.asyncProperty(attempt(operation), async ({ url, headers, payload }) => {
        const mutation = MUTATIONS.has(operation.method);
        const before = mutation ? await fingerprint() : '';
        const response = await app.inject({ method: operation.method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) });
        tried += 1;
        statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
        const problem = broken(response, operation.ownRefusals.get(response.statusCode));
        if (problem) throw new Error(`${operation.method} ${url.slice(0, 300)}: ${problem.slice(0, 500)}`);
        if (mutation && response.statusCode >= 400 && (await fingerprint()) !== before) {
          throw new Error(`${operation.method} ${url.slice(0, 300)}: refused with ${response.statusCode} but the database changed`);
        }
        if (mutation && response.statusCode < 400) await seed();
        const leaks = newLeaks();
        if (leaks.length > 0) throw new Error(`${operation.method} ${url.slice(0, 300)}: ${JSON.stringify(leaks)}`);
      }), RUNS);
  });
}

t.test('unknown paths and methods', async (t) => {
  const methods = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD');
  const path = fc.oneof(
    fc.array(hostileString.map(escape), { minLength: 1, maxLength: 4 }).map((parts) => `/${parts.join('/')}`),
    fc.constantFrom('/v1', '/v1/', '/v1/mailboxes/', '//v1/domains', '/v1/domains/..', '/v1/./domains', '/V1/DOMAINS', '/v2/domains', '/v1/domains%2F', '/%2e%2e/etc/passwd'),
  );
  await check(t, fc.asyncProperty(methods, path, async (method, url) => {
      const response = await app.inject({ method: method as 'GET', url, headers: api.admin });
      tried += 1;
      statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
      const problem = method === 'HEAD' ? (response.statusCode >= 500 ? `status ${response.statusCode}` : null) : broken(response);
      if (problem) throw new Error(`${method} ${url.slice(0, 300)}: ${problem.slice(0, 500)}`);
    }), RUNS * 2);
});

t.test('count', async (t) => {
  const tally = [...statuses].sort(([a], [b]) => a - b).map(([status, n]) => `${status}: ${n}`).join(', ');
  t.comment(`${tried} hostile requests tried on ${operations.length} routes (${tally})`);
  t.ok(tried >= operations.length * RUNS, `${tried} hostile requests tried`);
  t.same(newLeaks(), [], 'nothing leaked');
});
