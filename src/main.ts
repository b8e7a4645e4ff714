import type { Config, ProxyListener } from './config.js';
import { buildApp } from './api/app.js';
import { loggable } from './core/errors.js';
import { createServices } from './core/services.js';
import { DISPATCH_DEFAULTS, startWebhookDispatcher, type WebhookDispatcher } from './core/webhooks/dispatcher.js';
import { connect, type DatabaseHandle } from './db/client.js';
import { lockDataDir } from './db/data-dir-lock.js';
import { type Gateway, startGateway } from './gateway.js';
import { startImap } from './imap/server.js';
import { type LmtpServer, startLmtpServer } from './lmtp/server.js';
import { createLogger } from './log.js';
import { trustList } from './net/proxy-protocol.js';
import { loadTlsCertificate, type TlsCertificate } from './net/tls.js';
import { startPop3 } from './pop3/server.js';

// Generous for long UID sets; literals (message bodies) are bounded by the message size instead.
const IMAP_MAX_LINE = 64 * 1024;
const IMAP_MAX_BAD_COMMANDS = 20;
// Ample for the longest command line over a slow link; a client dripping bytes is let go.
const LINE_TIMEOUT_MS = 60_000;

/** The parts `mailroom serve --only` can start; `webhooks` sends the webhook outbox. */
export const PARTS = ['api', 'imap', 'pop3', 'lmtp', 'webhooks'] as const;
export type Part = (typeof PARTS)[number];

export interface Running {
  /** Where each started listener is reachable, e.g. { api: 'http://127.0.0.1:8080', imaps: 'imaps://127.0.0.1:1993' }. */
  urls: Record<string, string>;
  /** SIGHUP: new TLS connections get the certificate and key files as they are now. */
  reloadTls(): Promise<void>;
  close(): Promise<void>;
}

/** Opens the database for config, migrated and ready; embedded data is locked to this process. */
export async function openDatabase(config: Config): Promise<DatabaseHandle> {
  const unlock = config.databaseUrl === null ? await lockDataDir(config.dataDir) : async () => {};
  try {
    const handle = await connect({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.databasePoolSize });
    await handle.migrate();
    return {
      ...handle,
      async close() {
        await handle.close();
        await unlock();
      },
    };
  } catch (error) {
    await unlock();
    throw error;
  }
}

export function servicesFor(db: DatabaseHandle, config: Config) {
  return createServices(db.db, {
    passwordPolicy: { minLength: config.passwordMinLength },
    bootstrapToken: config.adminToken,
    maxMessageSize: config.maxMessageSize,
    loginThrottle: {
      failuresPerIp: config.loginFailuresPerIp,
      failuresPerMailbox: config.loginFailuresPerMailbox,
      lockSeconds: config.loginLockSeconds,
      maxDelayMs: config.loginMaxDelayMs,
    },
    publicServers: config.publicServers,
    pool: db.pool,
    hashConcurrency: config.threadPoolSize,
  });
}

/** The composition root: config -> database -> core services -> doors. */
export async function start(config: Config, parts: readonly Part[] = PARTS): Promise<Running> {
  const database = await openDatabase(config);
  const services = servicesFor(database, config);
  const urls: Running['urls'] = {};
  const log = createLogger(config.logLevel);
  const app = await buildApp({
    services,
    logger: log.child({ part: 'api' }),
    bodyLimit: config.apiBodyLimit,
    maxMessageSize: config.maxMessageSize,
    trustProxy: config.apiTrustProxy,
    limits: { perIp: config.apiRateLimitPerIp, perKey: config.apiRateLimitPerKey, maxEventLoopDelayMs: config.apiMaxEventLoopDelayMs },
  });
  let lmtp: LmtpServer | null = null;
  let gateway: Gateway | null = null;
  let tls: TlsCertificate | null = null;
  let dispatcher: WebhookDispatcher | null = null;
  const mailDoors: { close(): Promise<void> }[] = [];
  const proxyTrusted = trustList(config.proxyTrusted);
  const proxyOn = (listener: ProxyListener) => (config.proxyProtocol.includes(listener) ? proxyTrusted : undefined);
  // Every process sweeps, whichever parts it runs: a switch flips once however many there are.
  const sweep = setInterval(() => {
    services.protocolSwitches.expire().catch((error) => app.log.warn({ err: loggable(error) }, 'expiring protocol switches failed'));
  }, config.protocolSwitchSweepMs);
  sweep.unref();
  // Doors stop before the database closes, so a delivery in progress can still commit and be
  // answered; each door stops accepting at once, tells its sessions goodbye and waits for them.
  const close = async () => {
    clearInterval(sweep);
    await Promise.all([lmtp?.close(), ...mailDoors.map((door) => door.close()), app.close(), dispatcher?.stop()]);
    await gateway?.close();
    await database.close();
  };
  try {
    if (parts.includes('lmtp') && config.lmtpPort !== null) {
      lmtp = await startLmtpServer(
        {
          services,
          maxMessageSize: config.maxMessageSize,
          socketTimeout: config.lmtpTimeoutMs,
          logger: log.child({ part: 'lmtp' }),
          // A transaction cut before its reply could be stored and then retried: the shutdown deadline rules.
          closeTimeout: config.shutdownTimeoutMs,
          ...(proxyOn('lmtp') ? { useProxy: config.proxyTrusted } : {}),
        },
        config.host,
        config.lmtpPort,
      );
      urls.lmtp = lmtp.url;
    }
    const wantImap = parts.includes('imap') && (config.imapPort !== null || config.imapsPort !== null);
    const wantPop3 = parts.includes('pop3') && (config.pop3Port !== null || config.pop3sPort !== null);
    if (wantImap || wantPop3) {
      tls = await loadTlsCertificate(
        { certPath: config.tlsCertPath, keyPath: config.tlsKeyPath, dataDir: config.dataDir },
        log.child({ part: 'tls' }),
      );
      gateway = await startGateway(database, services, { databaseUrl: config.databaseUrl, log: log.child({ part: 'gateway' }) });
      if (wantImap) {
        const imap = await startImap({
          host: config.host,
          port: config.imapPort,
          securePort: config.imapsPort,
          maxConnectionsPerIp: config.maxConnectionsPerIp,
          proxyFrom: { plain: proxyOn('imap'), secure: proxyOn('imaps') },
          context: {
            services,
            gateway,
            tls,
            log: log.child({ part: 'imap' }),
            limits: {
              maxLineLength: IMAP_MAX_LINE,
              maxLiteralSize: config.maxMessageSize,
              maxBadCommands: IMAP_MAX_BAD_COMMANDS,
              maxAuthFailures: config.maxAuthFailures,
              maxConnectionsPerMailbox: config.maxConnectionsPerMailbox,
              idleTimeoutMs: config.imapIdleTimeoutMs,
              loginTimeoutMs: config.loginTimeoutMs,
              lineTimeoutMs: LINE_TIMEOUT_MS,
              allowPlaintextAuth: config.allowPlaintextAuth,
            },
          },
        });
        mailDoors.push(imap);
        if (imap.ports.imap !== undefined) urls.imap = `imap://${config.host}:${imap.ports.imap}`;
        if (imap.ports.imaps !== undefined) urls.imaps = `imaps://${config.host}:${imap.ports.imaps}`;
      }
      if (wantPop3) {
        const pop3 = await startPop3({
          host: config.host,
          port: config.pop3Port,
          securePort: config.pop3sPort,
          proxyFrom: { plain: proxyOn('pop3'), secure: proxyOn('pop3s') },
          tls,
          maxConnectionsPerIp: config.maxConnectionsPerIp,
          context: {
            login: services.login,
            mail: services.mail,
            metrics: services.metrics,
            lockMaildrop: gateway.lockMaildrop,
            registerSession: gateway.registerSession,
            subscribe: (listener, onResync) => gateway!.feed.subscribe(listener, onResync),
            idleTimeoutMs: config.pop3IdleTimeoutMs,
            loginTimeoutMs: config.loginTimeoutMs,
            lineTimeoutMs: LINE_TIMEOUT_MS,
            maxAuthFailures: config.maxAuthFailures,
            allowPlaintextAuth: config.allowPlaintextAuth,
            log: log.child({ part: 'pop3' }),
          },
        });
        mailDoors.push(pop3);
        if (pop3.ports.pop3 !== undefined) urls.pop3 = `pop3://${config.host}:${pop3.ports.pop3}`;
        if (pop3.ports.pop3s !== undefined) urls.pop3s = `pop3s://${config.host}:${pop3.ports.pop3s}`;
      }
    }
    if (parts.includes('webhooks')) {
      dispatcher = startWebhookDispatcher(
        database.db,
        { ...DISPATCH_DEFAULTS, maxAgeMs: config.webhookMaxAgeMs, timeoutMs: config.webhookTimeoutMs },
        app.log.child({ part: 'webhooks' }),
      );
    }
    // Last, so /readyz answers only once every door is listening.
    if (parts.includes('api') && config.httpPort !== null) {
      urls.api = await app.listen({ host: config.host, port: config.httpPort });
    }
  } catch (error) {
    await close();
    throw error;
  }
  log.info({ database: database.mode, urls }, 'mailroom started');
  return { urls, reloadTls: async () => tls?.reload(), close };
}
