import { Type } from '@sinclair/typebox';
import { ForbiddenError } from '../../core/errors.js';
import type { Services } from '../../core/services.js';
import type { Api } from '../app.js';
import { actorOf } from '../plugins/auth.js';
import { errorResponses, pageOf } from '../schemas/common.js';
import { Delivery, DeliveryListQuery, Webhook, WebhookCreate, WebhookCreated, WebhookListQuery, WebhookParams } from '../schemas/webhooks.js';

const tags = ['webhooks'];
const ADMIN = ['admin'] as const;

const DELIVERY_DESCRIPTION = `Each event is POSTed as JSON {"id", "type", "occurredAt", "domain", "mailbox", "data"} with the headers
Mailroom-Event (the type), Mailroom-Delivery (an id, the same on every attempt: drop repeats) and
Mailroom-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 under the secret of "<t>.<raw body>">.
A receiver recomputes the HMAC over the bytes it got, compares in constant time and refuses an old t.
Any 2xx is success; anything else (or no answer within MAILROOM_WEBHOOK_TIMEOUT) is retried with
exponential backoff and jitter until the event is MAILROOM_WEBHOOK_MAX_AGE old. Delivery is at least
once and in no particular order.`;

/** Webhooks are managed only by admins that are not confined, as API keys are: they see every domain's events. */
function requireUnconfined(actor: { domains: readonly string[] | null }) {
  if (actor.domains !== null) {
    throw new ForbiddenError('role_forbidden', 'A domain-confined key may not manage webhooks');
  }
}

export async function webhookRoutes(app: Api, { services }: { services: Services }) {
  app.post(
    '/v1/webhooks',
    {
      config: { roles: ADMIN },
      schema: {
        tags,
        summary: 'Subscribe a URL to mailbox events; the signing secret is shown only in this response',
        description: DELIVERY_DESCRIPTION,
        body: WebhookCreate,
        response: { 201: WebhookCreated, ...errorResponses },
      },
    },
    async (request, reply) => {
      const actor = actorOf(request);
      requireUnconfined(actor);
      const created = await services.webhooks.create(request.body, actor);
      return reply.code(201).header('location', `/v1/webhooks/${created.id}`).send(created);
    },
  );

  app.get(
    '/v1/webhooks',
    {
      config: { roles: ADMIN },
      schema: { tags, summary: 'List webhooks', querystring: WebhookListQuery, response: { 200: pageOf(Webhook), ...errorResponses } },
    },
    async (request) => {
      requireUnconfined(actorOf(request));
      return services.webhooks.list(request.query);
    },
  );

  app.get(
    '/v1/webhooks/:id',
    {
      config: { roles: ADMIN },
      schema: { tags, summary: 'Read a webhook', params: WebhookParams, response: { 200: Webhook, ...errorResponses } },
    },
    async (request) => {
      requireUnconfined(actorOf(request));
      return services.webhooks.get(request.params.id);
    },
  );

  app.get(
    '/v1/webhooks/:id/deliveries',
    {
      config: { roles: ADMIN },
      schema: {
        tags,
        summary: 'The delivery log: events sent to the webhook, newest first, each with its attempts',
        params: WebhookParams,
        querystring: DeliveryListQuery,
        response: { 200: pageOf(Delivery), ...errorResponses },
      },
    },
    async (request) => {
      requireUnconfined(actorOf(request));
      const { limit, cursor, status } = request.query;
      return services.webhooks.deliveries(request.params.id, { status }, { limit, cursor });
    },
  );

  app.delete(
    '/v1/webhooks/:id',
    {
      config: { roles: ADMIN },
      schema: {
        tags,
        summary: 'Delete a webhook; events not yet delivered to it are dropped',
        params: WebhookParams,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      const actor = actorOf(request);
      requireUnconfined(actor);
      await services.webhooks.delete(request.params.id, actor);
      return reply.code(204).send(null);
    },
  );
}
