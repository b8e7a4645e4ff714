import { createHmac } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Database } from '../../db/client.js';
import { loggable } from '../errors.js';

export interface DispatcherSettings {
  /** An event not delivered this long after it happened is given up. */
  maxAgeMs: number;
  /** How long one attempt may take, connecting included. */
  timeoutMs: number;
  /** The wait after the first failed attempt; it doubles with each further one, up to retryMaxMs, with jitter. */
  retryMinMs: number;
  retryMaxMs: number;
  /** How often an idle dispatcher looks for due deliveries. */
  pollMs: number;
  /** Deliveries one process sends at a time. */
  concurrency: number;
}

/** What start() does not take from the configuration. */
export const DISPATCH_DEFAULTS = { retryMinMs: 1000, retryMaxMs: 3_600_000, pollMs: 1000, concurrency: 8 } as const;

export interface DispatcherLog {
  warn(details: object, message: string): void;
}

/** Delivered and given-up deliveries stay in the log this long. */
const LOG_RETENTION = sql`interval '30 days'`;
const PRUNE_EVERY_MS = 3_600_000;
/** An attempt's error is cut to this many characters in the delivery log. */
const MAX_ERROR_LENGTH = 300;

interface Due {
  id: string;
  attempt: number;
  url: string;
  secret: string;
  type: string;
  body: string;
}

interface Outcome {
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body" under the secret>`, as the README tells receivers to check. */
export function signature(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Why an attempt got no HTTP answer, without the stack: a refused connection, a timeout. */
function describe(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && error.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  if (error instanceof Error && error.name === 'AbortError') return 'stopped by a shutdown';
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const text = cause instanceof Error ? cause.message : String(cause);
  return text.slice(0, MAX_ERROR_LENGTH);
}

/**
 * Sends the outbox: takes due deliveries (`FOR UPDATE SKIP LOCKED`, so any number of processes can
 * run one side by side), leases them for the length of an attempt, posts each signed event and
 * logs the attempt; a failure is retried with exponential backoff and jitter until the event is
 * maxAgeMs old. At least once: a process that dies mid-attempt leaves the lease to run out, and a
 * receiver that answered but was not heard gets the event again, under the same delivery id.
 */
export function startWebhookDispatcher(db: Database, settings: DispatcherSettings, log: DispatcherLog) {
  const stopping = new AbortController();
  const leaseMs = settings.timeoutMs + 30_000;
  let wake: (() => void) | null = null;
  let lastPrune = 0;

  async function claim(): Promise<Due[]> {
    const result = await db.execute(sql`
      with due as (
        select id from webhook_deliveries
        where status = 'pending' and next_attempt_at <= now()
        order by next_attempt_at
        limit ${settings.concurrency}
        for update skip locked
      ),
      claimed as (
        update webhook_deliveries d
        set attempts = d.attempts + 1, next_attempt_at = now() + ${leaseMs} * interval '1 millisecond'
        from due where d.id = due.id
        returning d.id, d.webhook_id, d.event_id, d.attempts
      )
      select c.id, c.attempts, w.url, w.secret, e.id as event_id, e.type, e.domain, e.mailbox, e.data, e.occurred_at
      from claimed c join webhooks w on w.id = c.webhook_id join webhook_events e on e.id = c.event_id`);
    // node-postgres and PGlite both answer { rows }; jsonb arrives parsed, timestamps as Date.
    const rows = (result as unknown as { rows: Record<string, unknown>[] }).rows;
    return rows.map((row) => ({
      id: row.id as string,
      attempt: Number(row.attempts),
      url: row.url as string,
      secret: row.secret as string,
      type: row.type as string,
      body: JSON.stringify({
        id: String(row.event_id),
        type: row.type,
        occurredAt: new Date(row.occurred_at as string | Date).toISOString(),
        domain: row.domain,
        mailbox: row.mailbox,
        data: row.data,
      }),
    }));
  }

  async function send(due: Due): Promise<Outcome> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    try {
      const response = await fetch(due.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Mailroom-Webhooks/1',
          'mailroom-event': due.type,
          'mailroom-delivery': due.id,
          'mailroom-signature': signature(due.secret, Math.floor(Date.now() / 1000), due.body),
        },
        body: due.body,
        // A redirect is a failure to fix at the subscriber, not a place to send signed events to.
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(settings.timeoutMs), stopping.signal]),
      });
      // The answer's body is of no interest; cancelling it frees the connection.
      await response.body?.cancel();
      const ok = response.status >= 200 && response.status < 300;
      return { statusCode: response.status, error: ok ? null : `HTTP ${response.status}`, durationMs: elapsed() };
    } catch (error) {
      return { statusCode: null, error: describe(error, settings.timeoutMs), durationMs: elapsed() };
    }
  }

  /** Half the doubled wait, plus a random part of the other half, so failing receivers are not hit in step. */
  function backoff(attempt: number): number {
    const ceiling = Math.min(settings.retryMaxMs, settings.retryMinMs * 2 ** Math.min(attempt - 1, 40));
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  /** Logs the attempt; the delivery is done, given up (the last attempt is made at maxAge), or due again later. */
  async function record(due: Due, outcome: Outcome): Promise<void> {
    const delivered = outcome.error === null;
    const deadline = sql`d.created_at + ${settings.maxAgeMs} * interval '1 millisecond'`;
    const finished = sql`(${delivered}::boolean or ${deadline} <= now())`;
    const result = await db.execute(sql`
      with updated as (
        update webhook_deliveries d
        set status = case when ${delivered}::boolean then 'delivered' when ${deadline} <= now() then 'failed' else 'pending' end,
            next_attempt_at = case when ${finished} then d.next_attempt_at
              else least(now() + ${backoff(due.attempt)} * interval '1 millisecond', ${deadline}) end,
            finished_at = case when ${finished} then now() end
        -- A lease that ran out let another dispatcher take the delivery: its attempt decides.
        where d.id = ${due.id} and d.attempts = ${due.attempt} and d.status = 'pending'
        returning d.status
      ),
      logged as (
        insert into webhook_attempts (delivery_id, attempt, status_code, error, duration_ms)
        select id, ${due.attempt}, ${outcome.statusCode}::int, ${outcome.error}::text, ${outcome.durationMs}::int
        from webhook_deliveries where id = ${due.id}
      )
      select status from updated`);
    const [row] = (result as unknown as { rows: { status: string }[] }).rows;
    if (row?.status === 'failed') {
      log.warn({ delivery: due.id, event: due.type, attempts: due.attempt, error: outcome.error }, 'webhook delivery given up');
    }
  }

  async function prune(): Promise<void> {
    lastPrune = Date.now();
    await db.execute(sql`delete from webhook_deliveries where finished_at < now() - ${LOG_RETENTION}`);
    await db.execute(sql`delete from webhook_events e where e.occurred_at < now() - ${LOG_RETENTION}
      and not exists (select 1 from webhook_deliveries d where d.event_id = e.id)`);
  }

  /** Sends one batch of due deliveries; answers how many there were. */
  async function dispatchDue(): Promise<number> {
    if (Date.now() - lastPrune > PRUNE_EVERY_MS) await prune();
    const due = await claim();
    await Promise.all(due.map(async (delivery) => record(delivery, await send(delivery))));
    return due.length;
  }

  function pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(), ms);
      const done = () => {
        clearTimeout(timer);
        wake = null;
        resolve();
      };
      wake = done;
    });
  }

  const running = (async () => {
    while (!stopping.signal.aborted) {
      let sent = 0;
      try {
        sent = await dispatchDue();
      } catch (error) {
        // The database is away, most likely: the deliveries wait, and so does this loop.
        log.warn({ err: loggable(error) }, 'webhook dispatch failed; retrying');
      }
      // A full batch suggests more are due at once.
      if (sent < settings.concurrency && !stopping.signal.aborted) await pause(settings.pollMs);
    }
  })();

  return {
    /** Ends attempts in flight (logged as failed, retried later) and the loop; call before closing the database. */
    async stop(): Promise<void> {
      stopping.abort();
      wake?.();
      await running;
    },
  };
}

export type WebhookDispatcher = ReturnType<typeof startWebhookDispatcher>;
