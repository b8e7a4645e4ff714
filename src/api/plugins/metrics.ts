import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics on a registry of this app's own, so several apps in one process never clash,
 * served together with the core's (login failures and lockouts).
 */
export function installMetrics(app: FastifyInstance, core: Registry): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mailroom_' });
  const duration = new Histogram({
    name: 'mailroom_http_request_duration_seconds',
    help: 'API request latency by route and status',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });

  app.addHook('onResponse', async (request, reply) => {
    duration.observe(
      // The route pattern, not the URL, keeps the label set small.
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: reply.statusCode },
      reply.elapsedTime / 1000,
    );
  });

  const served = Registry.merge([registry, core]);
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    reply.type(served.contentType);
    return served.metrics();
  });
  return registry;
}
