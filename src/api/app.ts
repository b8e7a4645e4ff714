import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type RawServerDefault } from 'fastify';
import type { IncomingMessage as RawRequest, ServerResponse } from 'node:http';
import type { Services } from '../core/services.js';
import type { Logger } from '../log.js';
import { installAuth } from './plugins/auth.js';
import { installErrorHandling } from './plugins/errors.js';
import { installIdempotency } from './plugins/idempotency.js';
import { type ApiLimits, installLimits } from './plugins/limits.js';
import { installMetrics } from './plugins/metrics.js';
import { sendProblem } from './problem.js';
import { apiKeyRoutes } from './routes/api-keys.js';
import { auditEventRoutes } from './routes/audit-events.js';
import { clientSetupRoutes } from './routes/client-setup.js';
import { domainRoutes } from './routes/domains.js';
import { folderRoutes } from './routes/folders.js';
import { healthRoutes } from './routes/health.js';
import { loginCheckRoutes } from './routes/login-check.js';
import { loginLockoutRoutes } from './routes/login-lockout.js';
import { mailboxBatchRoutes } from './routes/mailbox-batch.js';
import { mailboxRoutes } from './routes/mailboxes.js';
import { mboxRoutes } from './routes/mbox.js';
import { messageRoutes } from './routes/messages.js';
import { quotaPreviewRoutes } from './routes/quota-preview.js';
import { sessionRoutes } from './routes/sessions.js';
import { webhookRoutes } from './routes/webhooks.js';
import { Problem } from './schemas/common.js';
import { compileValidator } from './validation.js';

export type Api = FastifyInstance<RawServerDefault, RawRequest, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

export interface AppOptions {
  services: Services;
  /** The process's logger (src/log.ts); each request logs through a child carrying its id as `reqId`. None when left out. */
  logger?: Logger;
  /** Largest request body read, in bytes. */
  bodyLimit: number;
  /** Largest message the delivery route takes, in bytes; MAILROOM_MAX_MESSAGE_SIZE's default when left out. */
  maxMessageSize?: number;
  /** Largest mbox the import route reads (whole, into memory); 20 messages' worth when left out. */
  maxImportSize?: number;
  /** Proxies (addresses, CIDR ranges) whose X-Forwarded-For gives request.ip; none when left out. */
  trustProxy?: string[];
  /** Rate limits and load shedding; none when left out. */
  limits?: ApiLimits;
}

const DEFAULT_MAX_MESSAGE_SIZE = 50 * 1024 * 1024;

/** A caller's X-Request-Id is kept when it is short and plain, so it can be traced across systems. */
function requestId(request: RawRequest): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
}

export async function buildApp({
  services,
  logger,
  bodyLimit,
  maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE,
  maxImportSize = 20 * maxMessageSize,
  trustProxy = [],
  limits = { perIp: 0, perKey: 0, maxEventLoopDelayMs: 0 },
}: AppOptions): Promise<Api> {
  const app = Fastify({
    ...(logger ? { loggerInstance: logger as FastifyBaseLogger } : {}),
    // The id each request logs under is the X-Request-Id it is answered with.
    genReqId: requestId,
    bodyLimit,
    trustProxy: trustProxy.length > 0 ? trustProxy : false,
    // Long enough for a 320-character address percent-encoded three times over.
    routerOptions: { maxParamLength: 1024 },
    frameworkErrors: (error, request, reply) =>
      sendProblem(request, reply, { status: 400, code: 'bad_url', detail: error.message }),
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(compileValidator);

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addSchema(Problem);
  // Installed before any plugin is registered, so every route (docs included) sees their decorations.
  installErrorHandling(app);
  // Before authentication: the address limit must come first.
  await installLimits(app, limits);
  installAuth(app, services);
  installIdempotency(app, services);
  installMetrics(app, services.metrics.registry);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Mailroom API',
        version: '1',
        description:
          'Manage mail domains, mailboxes, passwords, quotas and protocol access. Errors are application/problem+json with a stable `code`. Mutations accept Idempotency-Key; GET of a domain or mailbox returns an ETag for If-Match.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  const plainRoutes = [
    healthRoutes,
    domainRoutes,
    mailboxRoutes,
    mailboxBatchRoutes,
    folderRoutes,
    apiKeyRoutes,
    auditEventRoutes,
    sessionRoutes,
    loginLockoutRoutes,
    loginCheckRoutes,
    quotaPreviewRoutes,
    clientSetupRoutes,
    webhookRoutes,
  ];
  for (const routes of plainRoutes) {
    await app.register(routes, { services });
  }
  // Each registers its own body parser, seen by its own routes only.
  for (const routes of [messageRoutes, mboxRoutes]) {
    await app.register(routes, { services, maxMessageSize, maxImportSize });
  }
  return app;
}
