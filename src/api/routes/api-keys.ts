import { Type } from '@sinclair/typebox';
import { ForbiddenError } from '../../core/errors.js';
import type { Services } from '../../core/services.js';
import type { Api } from '../app.js';
import { actorOf } from '../plugins/auth.js';
import { ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyListQuery, ApiKeyParams } from '../schemas/api-keys.js';
import { errorResponses, pageOf } from '../schemas/common.js';

const tags = ['api-keys'];
const ADMIN = ['admin'] as const;

/** Keys are managed only by admins that are not confined: a confined key must not mint wider ones. */
function requireUnconfined(actor: { domains: readonly string[] | null }) {
  if (actor.domains !== null) {
    throw new ForbiddenError('role_forbidden', 'A domain-confined key may not manage API keys');
  }
}

export async function apiKeyRoutes(app: Api, { services }: { services: Services }) {
  app.post(
    '/v1/api-keys',
    {
      config: { roles: ADMIN },
      schema: {
        tags,
        summary: 'Create an API key; its token is shown only in this response',
        body: ApiKeyCreate,
        response: { 201: ApiKeyCreated, ...errorResponses },
      },
    },
    async (request, reply) => {
      const actor = actorOf(request);
      requireUnconfined(actor);
      const created = await services.apiKeys.create(request.body, actor);
      return reply.code(201).send(created);
    },
  );

  app.get(
    '/v1/api-keys',
    {
      config: { roles: ADMIN },
      schema: {
        tags,
        summary: 'List active API keys',
        querystring: ApiKeyListQuery,
        response: { 200: pageOf(ApiKey), ...errorResponses },
      },
    },
    async (request) => {
      requireUnconfined(actorOf(request));
      return services.apiKeys.list(request.query);
    },
  );

  app.delete(
    '/v1/api-keys/:id',
    {
      config: { roles: ADMIN },
      schema: {
        tags,
        summary: 'Revoke an API key, effective immediately',
        params: ApiKeyParams,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      const actor = actorOf(request);
      requireUnconfined(actor);
      await services.apiKeys.revoke(request.params.id, actor);
      return reply.code(204).send(null);
    },
  );
}
