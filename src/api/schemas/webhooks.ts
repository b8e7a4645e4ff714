import { Type } from '@sinclair/typebox';
import { EVENT_TYPES } from '../../core/webhooks/events.js';
import { DomainName, Nullable, PageQuery, Timestamp } from './common.js';

const EventType = Type.Union(
  EVENT_TYPES.map((type) => Type.Literal(type)),
  { description: 'mailbox.quota_crossed: usage reached 80, 95 or 100 % of the storage or message quota (once per upward crossing)' },
);

const Events = Nullable(Type.Array(EventType, { maxItems: 100, description: 'Event types sent; null or absent: all' }));
const Domains = Nullable(
  Type.Array(DomainName, { maxItems: 1000, description: 'Only events of mailboxes in these domains; null or absent: all' }),
);

export const Webhook = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    url: Type.String(),
    events: Events,
    domains: Domains,
    createdAt: Timestamp,
  },
  { description: 'A webhook (never its secret)' },
);

export const WebhookCreated = Type.Object({
  ...Webhook.properties,
  secret: Type.String({ description: 'The key of the Mailroom-Signature HMAC; shown only in this response' }),
});

export const WebhookCreate = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2048, description: 'https:// (or http://) URL the events are POSTed to; no user or password in it' }),
    events: Type.Optional(Events),
    domains: Type.Optional(Domains),
  },
  { additionalProperties: false },
);

export const WebhookParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
export const WebhookListQuery = Type.Object(PageQuery, { additionalProperties: false });

export const DeliveryListQuery = Type.Object(
  {
    ...PageQuery,
    status: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')])),
  },
  { additionalProperties: false },
);

export const Delivery = Type.Object(
  {
    id: Type.String({ format: 'uuid', description: 'Sent as Mailroom-Delivery, the same on every attempt' }),
    event: Type.Object({
      id: Type.String({ description: 'The event id in the body' }),
      type: Type.String(),
      domain: Type.String(),
      mailbox: Type.String(),
      occurredAt: Timestamp,
    }),
    status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')], {
      description: 'failed: given up after MAILROOM_WEBHOOK_MAX_AGE',
    }),
    nextAttemptAt: Nullable(Timestamp),
    finishedAt: Nullable(Timestamp),
    attempts: Type.Array(
      Type.Object({
        attempt: Type.Integer(),
        at: Timestamp,
        statusCode: Nullable(Type.Integer({ description: 'null: no HTTP answer' })),
        error: Nullable(Type.String()),
        durationMs: Type.Integer(),
      }),
    ),
  },
  { description: 'One event sent to one webhook, with every attempt' },
);
