import { loggable } from './core/errors.js';
import { type ChangeFeed, createChangeFeed } from './core/events/feed.js';
import { GATEWAY_HEARTBEAT_MS, type NewSession } from './core/sessions/service.js';
import type { Services } from './core/services.js';
import type { DatabaseHandle } from './db/client.js';
import { inProcessLocks, postgresLocks } from './db/session-locks.js';

export interface GatewayLog {
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

/** What the POP3 and IMAP doors of one process share: the change feed, maildrop locks, the session list. */
export interface Gateway {
  feed: ChangeFeed;
  /**
   * Exclusive POP3 access to a mailbox across every process; null when another session has it.
   * onLost runs if the lock vanishes while held (the database restarted): the holder must stop.
   */
  lockMaildrop(accountId: number, onLost: () => void): Promise<(() => Promise<void>) | null>;
  /** Refused with too_many_connections when `maxPerAddress` sessions of the mailbox and address are live. */
  registerSession(session: NewSession, maxPerAddress?: number): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export async function startGateway(
  database: DatabaseHandle,
  services: Services,
  options: { databaseUrl: string | null; log: GatewayLog },
): Promise<Gateway> {
  const { log } = options;
  const holders = new Map<number, () => void>();
  const locks =
    options.databaseUrl === null
      ? inProcessLocks()
      : postgresLocks(options.databaseUrl, (keys) => {
          log.warn({ sessions: keys.length }, 'the maildrop lock session was lost; the POP3 sessions holding locks are ended');
          for (const key of keys) {
            const onLost = holders.get(key);
            holders.delete(key);
            onLost?.();
          }
        });
  const feed = createChangeFeed(database, log, services.metrics);
  // Subscribed for the gateway's lifetime, so the feed's LISTEN session stays open: otherwise a
  // lone login opens it and its logout closes it again (~9 ms a login).
  const unsubscribe = await feed.subscribe(() => {});
  const gatewayId = await services.sessions.startGateway();
  const heartbeat = setInterval(() => {
    services.sessions.heartbeat(gatewayId).catch((error) => log.warn({ err: loggable(error) }, 'gateway heartbeat failed'));
    services.loginThrottle.forgetExpired().catch((error) => log.warn({ err: loggable(error) }, 'forgetting old failed logins failed'));
  }, GATEWAY_HEARTBEAT_MS);
  heartbeat.unref();
  return {
    feed,
    async lockMaildrop(accountId, onLost) {
      if (!(await locks.tryLock(accountId))) return null;
      holders.set(accountId, onLost);
      return async () => {
        // A lost lock may have been taken again since, by another session: that one is not ours to free.
        if (holders.get(accountId) !== onLost) return;
        holders.delete(accountId);
        await locks.unlock(accountId);
      };
    },
    async registerSession(session, maxPerAddress) {
      const id = await services.sessions.register(gatewayId, session, maxPerAddress);
      services.metrics.sessions.inc({ protocol: session.protocol });
      return () => {
        services.metrics.sessions.dec({ protocol: session.protocol });
        return services.sessions.unregister(session.accountId, id);
      };
    },
    async close() {
      clearInterval(heartbeat);
      await unsubscribe();
      await services.sessions.stopGateway(gatewayId).catch((error) => log.warn({ err: loggable(error) }, 'gateway deregistration failed'));
      await locks.close();
    },
  };
}
