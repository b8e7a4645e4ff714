import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { buildTestApi } from '../helpers/api.js';
import { assertProblem } from '../helpers/problem.js';

t.test('one client address gets 429 rate_limited past its requests per minute, before authentication', async (t) => {
  const api = await buildTestApi(t, { limits: { perIp: 3, perKey: 0, maxEventLoopDelayMs: 0 } });
  for (let i = 0; i < 3; i++) {
    t.equal((await api.app.inject({ method: 'GET', url: '/v1/domains', headers: api.admin })).statusCode, 200, `request ${i + 1}`);
  }
  const limited = await api.app.inject({ method: 'GET', url: '/v1/domains', headers: api.admin });
  const problem = assertProblem(t, limited, 429, 'rate_limited');
  t.match(problem.detail, /client address may make 3 requests a minute/);
  t.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After says when');
  // Refused before the token is even looked up: an unknown token gets 429, not 401.
  assertProblem(t, await api.app.inject({ method: 'GET', url: '/v1/domains', headers: { authorization: 'Bearer nope' } }), 429, 'rate_limited');
  t.equal((await api.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'health checks are not limited');
  const elsewhere = await api.app.inject({ method: 'GET', url: '/v1/domains', headers: api.admin, remoteAddress: '192.0.2.7' });
  t.equal(elsewhere.statusCode, 200, 'another address has its own count');
});

t.test('one API key gets 429 past its requests per minute; other keys are not held back', async (t) => {
  const api = await buildTestApi(t, { limits: { perIp: 0, perKey: 2, maxEventLoopDelayMs: 0 } });
  const busy = await api.keyFor('admin');
  const other = await api.keyFor('admin');
  for (let i = 0; i < 2; i++) t.equal((await api.app.inject({ method: 'GET', url: '/v1/domains', headers: busy })).statusCode, 200);
  const limited = await api.app.inject({ method: 'POST', url: '/v1/domains', headers: { ...busy, 'content-type': 'application/json' }, payload: '{not json' });
  t.match(assertProblem(t, limited, 429, 'rate_limited').detail, /API key may make 2 requests a minute/, 'refused before the body is read');
  t.equal((await api.app.inject({ method: 'GET', url: '/v1/domains', headers: other })).statusCode, 200, 'another key');
  t.equal((await api.app.inject({ method: 'GET', url: '/v1/domains?limit=1', headers: busy })).statusCode, 429, 'still refused');
});

t.test('an overloaded event loop answers 503 overloaded instead of queueing, and recovers', async (t) => {
  const api = await buildTestApi(t, { limits: { perIp: 0, perKey: 0, maxEventLoopDelayMs: 200 } });
  t.equal((await api.app.inject({ method: 'GET', url: '/v1/domains', headers: api.admin })).statusCode, 200);
  const until = Date.now() + 1500;
  while (Date.now() < until); // a handler that hogs the loop, as a runaway request would
  let overloaded = null;
  for (let i = 0; i < 30 && !overloaded; i++) {
    const response = await api.app.inject({ method: 'GET', url: '/v1/domains', headers: api.admin });
    if (response.statusCode === 503) overloaded = response;
    else await sleep(100);
  }
  t.ok(overloaded, 'a 503 while the delay lasts');
  if (overloaded) {
    assertProblem(t, overloaded, 503, 'overloaded');
    t.equal(overloaded.headers['retry-after'], '5');
  }
  let recovered = false;
  for (let i = 0; i < 50 && !recovered; i++) {
    await sleep(100);
    recovered = (await api.app.inject({ method: 'GET', url: '/v1/domains', headers: api.admin })).statusCode === 200;
  }
  t.ok(recovered, 'answers again once the loop is free');
});
