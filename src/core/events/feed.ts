import type { DatabaseHandle, Unlisten } from '../../db/client.js';
import type { Metrics } from '../metrics.js';
import { type AccountChangeReason, CHANGE_CHANNEL, type Change } from './changes.js';

/** Where the feed reports what it drops; a pino logger (Fastify's `app.log`) fits. */
export interface ChangeFeedLogger {
  warn(details: object, message: string): void;
}

export interface ChangeFeed {
  /**
   * Calls listener with every change published from now on, by any process on the database.
   * Resolves once listening, so a change committed after that is never missed; listener may be
   * called a little earlier. onResync runs when notifications may have been lost (the database
   * connection was re-established): the subscriber must catch up from the database.
   * A listener that throws or rejects is logged and keeps its subscription.
   */
  subscribe(listener: (change: Change) => void | Promise<void>, onResync?: () => void | Promise<void>): Promise<Unlisten>;
}

interface Subscriber {
  listener: (change: Change) => void | Promise<void>;
  onResync: (() => void | Promise<void>) | undefined;
}

/**
 * One LISTEN per process, however many sessions subscribe: it starts with the first subscriber
 * and stops when the last one leaves.
 */
export function createChangeFeed(
  handle: DatabaseHandle,
  log: ChangeFeedLogger = { warn() {} },
  metrics?: Pick<Metrics, 'changeNotifications' | 'changeResyncs'>,
): ChangeFeed {
  const subscribers = new Set<Subscriber>();
  let listening: Promise<Unlisten> | undefined;

  function deliver(payload: string): void {
    metrics?.changeNotifications.inc();
    const change = parseChange(payload);
    if (change === null) {
      log.warn({ channel: CHANGE_CHANNEL, payload: payload.slice(0, 200) }, 'ignored a malformed change notification');
      return;
    }
    for (const subscriber of [...subscribers]) {
      callSafely(() => subscriber.listener(change), (error) => log.warn({ err: error, change }, 'a change listener failed'));
    }
  }

  function resync(): void {
    metrics?.changeResyncs.inc();
    for (const { onResync } of [...subscribers]) {
      if (onResync) callSafely(onResync, (error) => log.warn({ err: error }, 'a change feed resync failed'));
    }
  }

  async function startListening(): Promise<Unlisten> {
    const started = handle.listen(CHANGE_CHANNEL, deliver, resync);
    listening = started;
    try {
      return await started;
    } catch (error) {
      // Let the next subscriber try again rather than inherit this failure.
      if (listening === started) listening = undefined;
      throw error;
    }
  }

  return {
    async subscribe(listener, onResync) {
      const subscriber: Subscriber = { listener, onResync };
      subscribers.add(subscriber);
      try {
        await (listening ?? startListening());
      } catch (error) {
        subscribers.delete(subscriber);
        throw error;
      }
      let unsubscribed: Promise<void> | undefined;
      return () =>
        (unsubscribed ??= (async () => {
          subscribers.delete(subscriber);
          if (subscribers.size > 0 || listening === undefined) return;
          const stopping = listening;
          listening = undefined;
          await (await stopping)();
        })());
    },
  };
}

function callSafely(fn: () => void | Promise<void>, onError: (error: unknown) => void): void {
  try {
    const result = fn();
    if (result instanceof Promise) result.catch(onError);
  } catch (error) {
    onError(error);
  }
}

/** A notification can come from another process or a hand-typed pg_notify: trust nothing. */
export function parseChange(payload: string): Change | null {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const fields = value as Record<string, unknown>;
  if (!isId(fields.accountId) || typeof fields.kind !== 'string' || !Object.hasOwn(IS_VALID, fields.kind)) return null;
  return IS_VALID[fields.kind as Change['kind']](fields) ? (value as Change) : null;
}

/** Keyed by every kind and reason, so adding one to `Change` fails to compile until it is checked here. */
const IS_VALID: { [Kind in Change['kind']]: (fields: Record<string, unknown>) => boolean } = {
  messages: (fields) => isId(fields.folderId) && isId(fields.modseq),
  folders: () => true,
  account: (fields) => typeof fields.reason === 'string' && Object.hasOwn(ACCOUNT_CHANGE_REASONS, fields.reason),
};
const ACCOUNT_CHANGE_REASONS: Record<AccountChangeReason, true> = {
  protocols: true,
  suspended: true,
  password: true,
  deleted: true,
  sessions: true,
};

function isId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
