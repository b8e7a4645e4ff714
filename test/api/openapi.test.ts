import { readFile } from 'node:fs/promises';
import SwaggerParser from '@apidevtools/swagger-parser';
import t from 'tap';
import { buildTestApi } from '../helpers/api.js';

const COMMITTED = new URL('../../openapi/openapi.json', import.meta.url);
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

interface Operation {
  tags?: string[];
  summary?: string;
  responses?: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
}
type Document = { openapi: string; paths: Record<string, Record<string, Operation>> };

const committed = async (): Promise<Document> => JSON.parse(await readFile(COMMITTED, 'utf8'));
const roundTrip = <T>(value: T): T => JSON.parse(JSON.stringify(value));

function operations(document: Document): { name: string; path: string; operation: Operation }[] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, operation]) => ({ name: `${method.toUpperCase()} ${path}`, path, operation })),
  );
}

t.test('the committed openapi/openapi.json is what the routes generate', async (t) => {
  const { app } = await buildTestApi(t);
  await app.ready();
  t.same(
    roundTrip(app.swagger()),
    await committed(),
    'openapi/openapi.json is out of date: run `npm run openapi` and commit it',
  );
});

t.test('the document is valid OpenAPI 3.x', async (t) => {
  const document = await committed();
  t.match(document.openapi, /^3\./);
  // validate() dereferences in place, so it gets its own copy.
  await t.resolves(SwaggerParser.validate(roundTrip(document) as never), 'swagger-parser finds no error');
});

t.test('GET /openapi.json serves the same document, without an API key', async (t) => {
  const { app } = await buildTestApi(t);
  const response = await app.inject({ method: 'GET', url: '/openapi.json' });
  t.equal(response.statusCode, 200);
  t.match(response.headers['content-type'], /^application\/json/);
  t.same(response.json(), await committed());
});

// Known bug, reported: the onSend hook of src/api/plugins/idempotency.ts reads request.principal.id
// on the Swagger UI routes (registered before the request decorators exist), so every /docs URL
// answers 500. The assertions run and show the failure as TODO; drop this marker once fixed.

t.test('GET /docs serves the Swagger UI', async (t) => {
  const { app } = await buildTestApi(t);
  let url = '/docs';
  let response = await app.inject({ method: 'GET', url });
  for (let hops = 0; response.statusCode >= 300 && response.statusCode < 400 && hops < 5; hops++) {
    url = new URL(String(response.headers.location), `http://localhost${url}`).pathname;
    response = await app.inject({ method: 'GET', url });
  }
  t.equal(response.statusCode, 200, `GET ${url}`);
  t.match(response.headers['content-type'], /^text\/html/, 'HTML');
  t.match(response.body, /swagger-ui/i, 'the Swagger UI page');

  // The page's own script and the document it loads are served too.
  const script = /src="\.\/(static\/swagger-ui-bundle\.js)"/.exec(response.body)?.[1] ?? 'static/swagger-ui-bundle.js';
  const base = url.endsWith('/') ? url : `${url}/`;
  const bundle = await app.inject({ method: 'GET', url: `${base}${script}` });
  t.equal(bundle.statusCode, 200, `${base}${script} is served`);
  const json = await app.inject({ method: 'GET', url: `${base}json` });
  t.equal(json.statusCode, 200, `${base}json is served`);
  t.same(json.statusCode === 200 ? json.json() : null, await committed(), 'the UI shows the same document');
});

t.test('every /v1 operation has tags, a summary and a problem response for 4xx', async (t) => {
  const v1 = operations(await committed()).filter(({ path }) => path.startsWith('/v1/'));
  t.ok(v1.length >= 10, `${v1.length} operations under /v1`);
  for (const { name, operation } of v1) {
    t.ok(Array.isArray(operation.tags) && operation.tags.length > 0, `${name}: tags`);
    t.ok(typeof operation.summary === 'string' && operation.summary.trim().length > 0, `${name}: summary`);
    const problems = Object.entries(operation.responses ?? {}).filter(
      ([status, response]) =>
        /^4(xx|\d\d)$/i.test(status) &&
        Object.values(response.content ?? {}).some((media) => media.schema?.$ref === '#/components/schemas/Problem'),
    );
    t.ok(problems.length > 0, `${name}: a 4xx response with the Problem schema`);
  }
});

// Known bug, reported: src/api/schemas/common.ts declares 4xx/5xx as application/json while the
// API answers application/problem+json. Drop the marker once fixed.

t.test('every /v1 error response is declared as application/problem+json, the type the API sends', async (t) => {
  for (const { name, operation } of operations(await committed()).filter(({ path }) => path.startsWith('/v1/'))) {
    for (const [status, response] of Object.entries(operation.responses ?? {})) {
      if (/^[45]/.test(status)) {
        t.same(Object.keys(response.content ?? {}), ['application/problem+json'], `${name} ${status}`);
      }
    }
  }
});
