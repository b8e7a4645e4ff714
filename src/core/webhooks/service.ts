import { randomBytes, randomUUID } from 'node:crypto';
import { and, asc, desc, eq, gt, inArray, lt } from 'drizzle-orm';
import type { Database } from '../../db/client.js';
import { webhookAttempts, webhookDeliveries, webhookEvents, webhooks } from '../../db/schema/index.js';
import type { Actor } from '../actor.js';
import { normalizeDomain } from '../addresses.js';
import type { AuditService } from '../audit/service.js';
import { InvalidError, NotFoundError } from '../errors.js';
import { decodeCursor, type Page, type PageRequest, toPage } from '../pagination.js';
import { EVENT_TYPES, type EventType } from './events.js';

export interface WebhookView {
  id: string;
  url: string;
  /** Null: every event type. */
  events: EventType[] | null;
  /** Null: every domain. */
  domains: string[] | null;
  createdAt: string;
}

export interface WebhookInput {
  url: string;
  events?: string[] | null;
  domains?: string[] | null;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'delivered', 'failed'];

export interface DeliveryView {
  /** The Mailroom-Delivery header: the same on every attempt. */
  id: string;
  event: { id: string; type: string; domain: string; mailbox: string; occurredAt: string };
  status: DeliveryStatus;
  /** When the next attempt is due; null once delivered or given up. */
  nextAttemptAt: string | null;
  finishedAt: string | null;
  attempts: { attempt: number; at: string; statusCode: number | null; error: string | null; durationMs: number }[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_URL_LENGTH = 2048;

type WebhookRow = typeof webhooks.$inferSelect;

function view(row: WebhookRow): WebhookView {
  return {
    id: row.id,
    url: row.url,
    events: row.eventTypes as EventType[] | null,
    domains: row.domains,
    createdAt: row.createdAt.toISOString(),
  };
}

/** http(s) only, and no user or password in it: the URL is shown in lists and audit events. */
function checkUrl(input: string): string {
  const wrong = (why: string) => new InvalidError('invalid_url', `The webhook URL ${why}`, { field: 'url' });
  let url: URL;
  try {
    url = new URL(input.trim());
  } catch {
    throw wrong('is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw wrong('must start with https:// or http://');
  if (url.username !== '' || url.password !== '') throw wrong('must not hold a user name or password; the signature authenticates');
  if (url.hash !== '') throw wrong('must not have a #fragment');
  if (url.href.length > MAX_URL_LENGTH) throw wrong(`must be at most ${MAX_URL_LENGTH} characters long`);
  return url.href;
}

/** A list left out (or null) means all; an empty one is a mistake, as for API keys. */
function checkEvents(events: string[] | null | undefined): EventType[] | null {
  if (events === undefined || events === null) return null;
  const unknown = events.filter((type) => !(EVENT_TYPES as readonly string[]).includes(type));
  if (events.length === 0 || unknown.length > 0) {
    throw new InvalidError(
      'invalid_events',
      events.length === 0
        ? 'List the event types the webhook wants, or leave events out for all'
        : `Unknown event types: ${unknown.join(', ').slice(0, 200)}; known: ${EVENT_TYPES.join(', ')}`,
      { field: 'events' },
    );
  }
  return [...new Set(events as EventType[])].sort();
}

function checkDomains(domains: string[] | null | undefined): string[] | null {
  if (domains === undefined || domains === null) return null;
  if (domains.length === 0) {
    throw new InvalidError('invalid_domains', 'List the domains the webhook is confined to, or leave domains out for all', {
      field: 'domains',
    });
  }
  return [...new Set(domains.map(normalizeDomain))].sort();
}

/** Webhooks and their delivery log; the dispatcher (dispatcher.ts) sends what they queue. */
export function createWebhookService(db: Database, audit: AuditService) {
  const missing = (id: string) => new NotFoundError('webhook_not_found', `There is no webhook ${id.slice(0, 64)}`);

  async function find(id: string): Promise<WebhookRow> {
    if (!UUID.test(id)) throw missing(id);
    const [row] = await db.select().from(webhooks).where(eq(webhooks.id, id));
    if (!row) throw missing(id);
    return row;
  }

  return {
    /** The signing secret is returned here and never again. */
    async create(input: WebhookInput, actor: Actor): Promise<WebhookView & { secret: string }> {
      const url = checkUrl(input.url);
      const eventTypes = checkEvents(input.events);
      const domains = checkDomains(input.domains);
      const secret = `whsec_${randomBytes(32).toString('base64url')}`;
      const id = randomUUID();
      return db.transaction(async (tx) => {
        const [row] = await tx.insert(webhooks).values({ id, url, eventTypes, domains, secret }).returning();
        await audit.record(tx, actor, {
          action: 'webhook.create',
          targetType: 'webhook',
          target: id,
          domain: null,
          after: { url, events: eventTypes, domains },
        });
        return { ...view(row!), secret };
      });
    },

    /** Oldest first. */
    async list(page: PageRequest): Promise<Page<WebhookView>> {
      const after = page.cursor === undefined ? undefined : decodeCursor<string>(page.cursor, 'string');
      if (after !== undefined && !UUID.test(after)) {
        throw new InvalidError('invalid_cursor', 'The cursor is not one this API handed out', { field: 'cursor' });
      }
      const rows = await db
        .select()
        .from(webhooks)
        .where(after === undefined ? undefined : gt(webhooks.id, after))
        .orderBy(asc(webhooks.id))
        .limit(page.limit + 1);
      return toPage(rows, page.limit, (row) => row.id, view);
    },

    async get(id: string): Promise<WebhookView> {
      return view(await find(id));
    },

    /** Effective at once: its undelivered events are dropped with its delivery log. */
    async delete(id: string, actor: Actor): Promise<void> {
      if (!UUID.test(id)) throw missing(id);
      await db.transaction(async (tx) => {
        const [row] = await tx.delete(webhooks).where(eq(webhooks.id, id)).returning();
        if (!row) throw missing(id);
        await audit.record(tx, actor, {
          action: 'webhook.delete',
          targetType: 'webhook',
          target: id,
          domain: null,
          before: { url: row.url, events: row.eventTypes, domains: row.domains },
        });
      });
    },

    /** The delivery log, newest event first, each delivery with its attempts. */
    async deliveries(id: string, filter: { status?: DeliveryStatus }, page: PageRequest): Promise<Page<DeliveryView>> {
      await find(id);
      const rows = await db
        .select({ delivery: webhookDeliveries, event: webhookEvents })
        .from(webhookDeliveries)
        .innerJoin(webhookEvents, eq(webhookEvents.id, webhookDeliveries.eventId))
        .where(
          and(
            eq(webhookDeliveries.webhookId, id),
            filter.status === undefined ? undefined : eq(webhookDeliveries.status, filter.status),
            page.cursor === undefined ? undefined : lt(webhookDeliveries.eventId, decodeCursor<number>(page.cursor, 'number')),
          ),
        )
        .orderBy(desc(webhookDeliveries.eventId))
        .limit(page.limit + 1);
      const shown = rows.slice(0, page.limit).map((row) => row.delivery.id);
      const attempts =
        shown.length === 0
          ? []
          : await db
              .select()
              .from(webhookAttempts)
              .where(inArray(webhookAttempts.deliveryId, shown))
              .orderBy(asc(webhookAttempts.deliveryId), asc(webhookAttempts.id));
      return toPage(
        rows,
        page.limit,
        (row) => row.event.id,
        ({ delivery, event }): DeliveryView => ({
          id: delivery.id,
          event: {
            id: String(event.id),
            type: event.type,
            domain: event.domain,
            mailbox: event.mailbox,
            occurredAt: event.occurredAt.toISOString(),
          },
          status: delivery.status,
          nextAttemptAt: delivery.status === 'pending' ? delivery.nextAttemptAt.toISOString() : null,
          finishedAt: delivery.finishedAt?.toISOString() ?? null,
          attempts: attempts
            .filter((attempt) => attempt.deliveryId === delivery.id)
            .map((attempt) => ({
              attempt: attempt.attempt,
              at: attempt.at.toISOString(),
              statusCode: attempt.statusCode,
              error: attempt.error,
              durationMs: attempt.durationMs,
            })),
        }),
      );
    },
  };
}

export type WebhookService = ReturnType<typeof createWebhookService>;
