import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Actor } from '../../core/actor.js';
import type { Principal, Role } from '../../core/api-keys/service.js';
import type { Services } from '../../core/services.js';
import { sendProblem } from '../problem.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** Roles allowed on the route; a route without it is public (health, docs, metrics). */
    roles?: readonly Role[];
  }
}

export const ALL_ROLES: readonly Role[] = ['admin', 'provisioner', 'support'];

/** The authenticated caller of a route that declared roles, as the core sees it. */
export function actorOf(request: FastifyRequest): Principal & Actor {
  if (!request.principal) throw new Error('actorOf() on a route without roles');
  return { ...request.principal, requestId: request.id, ip: request.ip };
}

export function installAuth(app: FastifyInstance, services: Services): void {
  app.decorateRequest('principal', null);

  app.addHook('onRequest', async (request, reply) => {
    const roles = request.routeOptions.config.roles;
    if (!roles) return;
    // The scheme name is case-insensitive (RFC 9110 §11.1): `bearer` is as good as `Bearer`.
    const match = /^Bearer ([\x21-\x7e]{1,512})$/i.exec(request.headers.authorization ?? '');
    const principal = match ? await services.apiKeys.authenticate(match[1]!) : null;
    if (!principal) {
      reply.header('www-authenticate', 'Bearer realm="mailroom"');
      return sendProblem(request, reply, {
        status: 401,
        code: 'unauthenticated',
        detail: match ? 'The API key is unknown or revoked' : 'Send an API key as Authorization: Bearer <token>',
      });
    }
    if (!roles.includes(principal.role)) {
      return sendProblem(request, reply, {
        status: 403,
        code: 'role_forbidden',
        detail: `The ${principal.role} role may not do this; it needs one of: ${roles.join(', ')}`,
      });
    }
    request.principal = principal;
  });
}
