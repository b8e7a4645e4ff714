import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Services } from '../../core/services.js';
import { sendProblem } from '../problem.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set while this request holds a fresh Idempotency-Key claim. */
    idempotencyKey: string | null;
  }
}

const MUTATIONS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
/** Response headers worth replaying: the rest are per-response (date, request id). */
const REPLAYED_HEADERS = ['content-type', 'etag', 'location'];

/** JSON with sorted keys, so the same body sent with another key order counts as the same request. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * Idempotency-Key on mutations: the first response (below 500) is stored and replayed to
 * retries with the same body; the same key with another body is refused.
 */
export function installIdempotency(app: FastifyInstance, services: Services): void {
  app.decorateRequest('idempotencyKey', null);

  app.addHook('preHandler', async (request, reply) => {
    const key = request.headers['idempotency-key'];
    if (key === undefined || !MUTATIONS.has(request.method) || !request.principal) return;
    if (typeof key !== 'string' || !KEY_PATTERN.test(key)) {
      return sendProblem(request, reply, {
        status: 400,
        code: 'invalid_idempotency_key',
        detail: 'Idempotency-Key must be 1 to 255 visible ASCII characters',
      });
    }
    // Raw bodies (a message, an mbox) are hashed as the bytes they are. A body sent to a route
    // that takes none is ignored, so it is no part of the request; unvalidated, it could also
    // nest deeper than canonicalJson's recursion reaches.
    const body = !request.routeOptions.schema?.body
      ? 'null'
      : Buffer.isBuffer(request.body)
        ? request.body
        : canonicalJson(request.body ?? null);
    const requestHash = createHash('sha256').update(`${request.method} ${request.url}\n`).update(body).digest('hex');
    const claim = await services.idempotency.claim(request.principal.id, key, requestHash);
    if (claim.state === 'new') {
      request.idempotencyKey = key;
      return;
    }
    if (claim.state === 'mismatch') {
      return sendProblem(request, reply, {
        status: 422,
        code: 'idempotency_key_reused',
        detail: 'This Idempotency-Key was used with a different request',
      });
    }
    if (claim.state === 'in_progress') {
      return sendProblem(request, reply, {
        status: 409,
        code: 'idempotency_request_in_progress',
        detail: 'The first request with this Idempotency-Key is still running; retry shortly',
      });
    }
    return reply.code(claim.statusCode).headers(claim.headers).header('idempotent-replayed', 'true').send(claim.body);
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const key = request.idempotencyKey;
    if (key === null || request.principal === null) return payload;
    request.idempotencyKey = null;
    if (reply.statusCode >= 500) {
      await services.idempotency.release(request.principal.id, key);
      return payload;
    }
    const headers: Record<string, string> = {};
    for (const name of REPLAYED_HEADERS) {
      const value = reply.getHeader(name);
      if (value !== undefined) headers[name] = String(value);
    }
    await services.idempotency.complete(request.principal.id, key, reply.statusCode, headers, String(payload ?? ''));
    return payload;
  });
}
