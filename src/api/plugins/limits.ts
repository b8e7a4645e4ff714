import rateLimit from '@fastify/rate-limit';
import underPressure from '@fastify/under-pressure';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendProblem } from '../problem.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A public route that reads the database (autoconfig): counted against the address limit like /v1. */
    addressLimited?: boolean;
  }
}

export interface ApiLimits {
  /** Requests per minute one client address may make to /v1 (0: no limit). */
  perIp: number;
  /** Requests per minute one API key may make (0: no limit). */
  perKey: number;
  /** Event-loop delay in ms beyond which requests get 503 instead of queueing up (0: never). */
  maxEventLoopDelayMs: number;
}

const MINUTE_MS = 60_000;
/** How long an overloaded server asks clients to wait, in seconds. */
const OVERLOAD_RETRY_AFTER = 5;

type Check = (request: FastifyRequest) => Promise<{ isAllowed: boolean; isExceeded: boolean; ttlInSeconds: number; max: number }>;

/**
 * Rate limits and load shedding. The address limit runs before authentication (call this before
 * installAuth), so a flood of bad tokens never reaches the database; the key limit runs once the
 * key is known and before the body is read. Only routes with roles (the /v1 API) and public
 * routes marked addressLimited are limited: health checks and docs stay cheap and open.
 */
export async function installLimits(app: FastifyInstance, limits: ApiLimits): Promise<void> {
  if (limits.maxEventLoopDelayMs > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: limits.maxEventLoopDelayMs,
      retryAfter: OVERLOAD_RETRY_AFTER,
      pressureHandler: (request: FastifyRequest, reply: FastifyReply) => {
        reply.header('retry-after', String(OVERLOAD_RETRY_AFTER));
        sendProblem(request, reply, {
          status: 503,
          code: 'overloaded',
          detail: `The server is overloaded; retry in ${OVERLOAD_RETRY_AFTER} seconds`,
        });
      },
    });
  }
  if (limits.perIp === 0 && limits.perKey === 0) return;
  // Not global: the plugin runs one limit per request, and the address and key limits are two.
  await app.register(rateLimit, { global: false });
  const limiter = (max: number, key: (request: FastifyRequest) => string): Check =>
    app.createRateLimit({ max, timeWindow: MINUTE_MS, keyGenerator: key }) as unknown as Check;
  const perIp = limits.perIp > 0 ? limiter(limits.perIp, (request) => `ip ${request.ip}`) : null;
  const perKey = limits.perKey > 0 ? limiter(limits.perKey, (request) => `key ${request.principal!.id}`) : null;

  const enforce = async (check: Check, what: string, request: FastifyRequest, reply: FastifyReply) => {
    const outcome = await check(request);
    if (outcome.isAllowed || !outcome.isExceeded) return;
    reply.header('retry-after', String(outcome.ttlInSeconds));
    return sendProblem(request, reply, {
      status: 429,
      code: 'rate_limited',
      detail: `${what} may make ${outcome.max} requests a minute; retry in ${outcome.ttlInSeconds} seconds`,
    });
  };
  if (perIp) {
    app.addHook('onRequest', async (request, reply) => {
      const { roles, addressLimited } = request.routeOptions.config;
      if (roles || addressLimited) return enforce(perIp, 'One client address', request, reply);
    });
  }
  if (perKey) {
    app.addHook('preParsing', async (request, reply, payload) => {
      if (request.principal) await enforce(perKey, 'One API key', request, reply);
      return payload;
    });
  }
}
