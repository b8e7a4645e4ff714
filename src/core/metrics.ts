import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What a pg Pool tells of itself; PGlite has no pool. */
export interface PoolStats {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
}

/** How an LMTP recipient's delivery ended; deferred is a 4xx the MTA retries. */
export type DeliveryOutcome = 'delivered' | 'unknown_mailbox' | 'over_quota' | 'suspended' | 'too_large' | 'deferred';

/**
 * The process's domain metrics, on a registry of their own that the API serves beside its request
 * metrics. Labels take only fixed values, so no client can grow the label sets.
 */
export function createMetrics(pool?: PoolStats) {
  const registry = new Registry();
  const registers = [registry];
  if (pool) {
    const gauges = [
      ['mailroom_db_pool_connections', 'Database connections open in the pool', () => pool.totalCount],
      ['mailroom_db_pool_idle_connections', 'Pool connections open and unused', () => pool.idleCount],
      ['mailroom_db_pool_waiting_queries', 'Queries waiting for a free pool connection', () => pool.waitingCount],
    ] as const;
    for (const [name, help, read] of gauges) {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    }
  }
  return {
    registry,
    sessions: new Gauge<'protocol'>({
      name: 'mailroom_sessions',
      help: 'Logged-in POP3 and IMAP sessions of this process',
      labelNames: ['protocol'],
      registers,
    }),
    logins: new Counter<'protocol' | 'result'>({
      name: 'mailroom_logins_total',
      help: 'POP3 and IMAP logins by result: ok, or why they were refused',
      labelNames: ['protocol', 'result'],
      registers,
    }),
    deliveries: new Counter<'result'>({
      name: 'mailroom_deliveries_total',
      help: 'LMTP recipients by outcome: delivered, or why not (an address refused at RCPT counts as unknown_mailbox)',
      labelNames: ['result'],
      registers,
    }),
    bytesSent: new Counter<'protocol'>({
      name: 'mailroom_bytes_sent_total',
      help: 'Bytes of IMAP FETCH responses and POP3 RETR/TOP messages sent',
      labelNames: ['protocol'],
      registers,
    }),
    commandDuration: new Histogram<'protocol' | 'command'>({
      name: 'mailroom_command_duration_seconds',
      help: 'POP3 and IMAP command latency; unknown commands are "other"',
      labelNames: ['protocol', 'command'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    changeNotifications: new Counter({
      name: 'mailroom_change_notifications_total',
      help: 'Change-feed notifications received by this process',
      registers,
    }),
    changeResyncs: new Counter({
      name: 'mailroom_change_feed_resyncs_total',
      help: 'Change-feed reconnections after which subscribers caught up from the database',
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

