import t from 'tap';
import { buildTestApi } from '../helpers/api.js';

t.test('healthz and readyz answer ok while the database is up', async (t) => {
  const { app } = await buildTestApi(t);
  const health = await app.inject({ method: 'GET', url: '/healthz' });
  t.equal(health.statusCode, 200);
  t.same(health.json(), { status: 'ok' });
  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(ready.statusCode, 200);
});

t.test('readyz answers 503 problem+json once the database is gone', async (t) => {
  const { app, database } = await buildTestApi(t);
  await database.close();
  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(ready.statusCode, 503);
  t.match(ready.headers['content-type'], /application\/problem\+json/);
  t.equal(ready.json().code, 'database_unavailable');
});

t.test('metrics are Prometheus text with request latency by route', async (t) => {
  const { app } = await buildTestApi(t);
  await app.inject({ method: 'GET', url: '/healthz' });
  const metrics = await app.inject({ method: 'GET', url: '/metrics' });
  t.equal(metrics.statusCode, 200);
  t.match(metrics.headers['content-type'], /text\/plain/);
  t.match(metrics.body, /mailroom_http_request_duration_seconds_count\{method="GET",route="\/healthz",status_code="200"\} 1/);
});
