import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { resolve } from 'node:path';

/** A port number, or null when the listener is switched off (`off`). */
export type Port = number | null;

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  host: string;
  httpPort: Port;
  imapPort: Port;
  imapsPort: Port;
  pop3Port: Port;
  pop3sPort: Port;
  lmtpPort: Port;
  /** What mail clients are told to dial (client-config, autoconfig); null ports are not advertised. */
  publicServers: PublicServers;
  dataDir: string;
  /** Set: a real Postgres through `pg`. Unset: embedded PGlite in dataDir. */
  databaseUrl: string | null;
  databasePoolSize: number;
  tlsCertPath: string | null;
  tlsKeyPath: string | null;
  adminToken: string | null;
  logLevel: LogLevel;
  passwordMinLength: number;
  /** Largest JSON request body the API reads, in bytes. */
  apiBodyLimit: number;
  /** API requests per minute per client address and per API key (0: no limit). */
  apiRateLimitPerIp: number;
  apiRateLimitPerKey: number;
  /** Event-loop delay (ms) beyond which the API answers 503 instead of queueing (0: never). */
  apiMaxEventLoopDelayMs: number;
  /** Largest message accepted by any way in (LMTP, API, APPEND, import), in bytes. */
  maxMessageSize: number;
  /** Open POP3 and IMAP connections one client address may hold, each protocol counted apart. */
  maxConnectionsPerIp: number;
  /** IMAP sessions one mailbox may have open from one client address, on every gateway together. */
  maxConnectionsPerMailbox: number;
  /** Failed logins after which a POP3 or IMAP connection is closed. */
  maxAuthFailures: number;
  /** Failed logins from one client address (an IPv6 /64) that lock it out, on every gateway (0: never). */
  loginFailuresPerIp: number;
  /** Failed logins to one mailbox, from any address, that lock it out, even for its right password (0: never). */
  loginFailuresPerMailbox: number;
  /** How long failed logins are counted, and how long a lockout lasts. */
  loginLockSeconds: number;
  /** Longest delay (ms) before a failed login is answered, growing once an address has half its failures. */
  loginMaxDelayMs: number;
  /** How often each process stores the flips of protocol switches whose `until` has passed. */
  protocolSwitchSweepMs: number;
  /** POP3 inactivity timer; RFC 1939 asks for at least ten minutes. */
  pop3IdleTimeoutMs: number;
  /** IMAP autologout timer; RFC 3501 asks for at least thirty minutes. */
  imapIdleTimeoutMs: number;
  /** Time a POP3 or IMAP client has from connecting (TLS handshake included) to logging in. */
  loginTimeoutMs: number;
  /** LMTP client silence after which the connection is closed. */
  lmtpTimeoutMs: number;
  /** Whether IMAP takes passwords without TLS from addresses other than loopback. */
  allowPlaintextAuth: boolean;
  /** Listeners that take a PROXY header (v1 or v2; LMTP: v1) from `proxyTrusted` peers. */
  proxyProtocol: ProxyListener[];
  /** Addresses and CIDR ranges of the load balancers whose PROXY headers are believed, and required. */
  proxyTrusted: string[];
  /** Proxies (addresses, CIDR ranges) whose X-Forwarded-For the API believes; empty: none. */
  apiTrustProxy: string[];
  /** How long `serve` may take to stop after SIGTERM (sessions told, deliveries finished) before it exits anyway. */
  shutdownTimeoutMs: number;
  /** How long a webhook event is retried before it is given up. */
  webhookMaxAgeMs: number;
  /** How long one webhook delivery attempt may take. */
  webhookTimeoutMs: number;
  /** libuv's thread pool size (UV_THREADPOOL_SIZE, read by Node itself): how many passwords a batch hashes at once. */
  threadPoolSize: number;
}

export interface PublicServers {
  host: string;
  imapPort: Port;
  imapsPort: Port;
  pop3Port: Port;
  pop3sPort: Port;
  /** The SMTP submission server of the hosting (Mailroom has none of its own); null: none is advertised. */
  submission: { host: string; port: number; socketType: 'SSL' | 'STARTTLS' } | null;
}

/** A wrong environment value; its message is the one line the process prints before it stops. */
export class ConfigError extends Error {
  constructor(variable: string, problem: string) {
    // Values are quoted back; a line break pasted into one must not split the line.
    const oneLine = problem.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
    super(`${variable}: ${oneLine}`);
    this.name = 'ConfigError';
  }
}

export const PROXY_LISTENERS = ['imap', 'imaps', 'pop3', 'pop3s', 'lmtp'] as const;
export type ProxyListener = (typeof PROXY_LISTENERS)[number];

type Env = Record<string, string | undefined>;

const HOST_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const WILDCARDS = new Set(['0.0.0.0', '::']);

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function text(env: Env, name: string): string | null {
  const value = env[name]?.trim();
  return value ? value : null;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const value = text(env, name);
  if (value === null) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ConfigError(name, `expected a whole number from ${min} to ${max}, got '${value}'`);
  }
  return Number(value);
}

function port(env: Env, name: string, fallback: number): Port {
  const value = text(env, name);
  if (value?.toLowerCase() === 'off') return null;
  if (value !== null && !/^\d+$/.test(value)) {
    throw new ConfigError(name, `expected a port number from 0 to 65535 or 'off', got '${value}'`);
  }
  return integer(env, name, fallback, 0, 65535);
}

function host(env: Env, name: string, fallback: string): string {
  const value = text(env, name) ?? fallback;
  if (!isIP(value) && !HOST_NAME.test(value)) {
    throw new ConfigError(name, `expected an IP address or host name to bind to, got '${value}'`);
  }
  return value;
}

/** The name clients dial: the bind address when that is one, else this machine's name. */
function publicHost(env: Env, name: string, bindHost: string): string {
  const value = text(env, name);
  if (value === null) return WILDCARDS.has(bindHost) ? hostname().toLowerCase() : bindHost;
  if (WILDCARDS.has(value) || (!isIP(value) && !HOST_NAME.test(value))) {
    throw new ConfigError(name, `expected the host name or address mail clients connect to, got '${value}'`);
  }
  return value.toLowerCase();
}

/** smtps://host[:465] (TLS from the start) or smtp://host[:587] (STARTTLS); never plain text. */
function submission(env: Env, name: string): PublicServers['submission'] {
  const value = text(env, name);
  if (value === null) return null;
  // Not echoed back: a pasted URL may carry a password.
  const wrong = () => new ConfigError(name, 'expected smtps://host[:port] or smtp://host[:port] (STARTTLS), without user, password or path');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw wrong();
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const bare = url.username === '' && url.password === '' && (url.pathname === '' || url.pathname === '/') && !url.search && !url.hash;
  if ((url.protocol !== 'smtps:' && url.protocol !== 'smtp:') || !bare || (!isIP(host) && !HOST_NAME.test(host)) || url.port === '0') {
    throw wrong();
  }
  const implicitTls = url.protocol === 'smtps:';
  const port = url.port === '' ? (implicitTls ? 465 : 587) : Number(url.port);
  return { host: host.toLowerCase(), port, socketType: implicitTls ? 'SSL' : 'STARTTLS' };
}

/** A port clients dial; by default the bound one, unless that is off or picked by the system (0). */
function publicPort(env: Env, name: string, bound: Port): Port {
  const fallback = bound === 0 ? null : bound;
  const value = text(env, name);
  if (value === null) return fallback;
  if (value.toLowerCase() === 'off') return null;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    throw new ConfigError(name, `expected a port number from 1 to 65535 or 'off', got '${value}'`);
  }
  return Number(value);
}

function databaseUrl(env: Env, name: string): string | null {
  const value = text(env, name);
  if (value === null) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(name, 'expected a postgres:// URL');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(name, `expected a postgres:// URL, got the scheme '${url.protocol}'`);
  }
  return value;
}

function logLevel(env: Env, name: string): LogLevel {
  const value = (text(env, name) ?? 'info').toLowerCase();
  if (!LOG_LEVELS.includes(value as LogLevel)) {
    throw new ConfigError(name, `expected one of ${LOG_LEVELS.join(', ')}, got '${value}'`);
  }
  return value as LogLevel;
}

function adminToken(env: Env, name: string): string | null {
  const value = text(env, name);
  if (value !== null && value.length < 16) {
    throw new ConfigError(name, 'must be at least 16 characters long');
  }
  return value;
}

function flag(env: Env, name: string): boolean {
  const value = text(env, name)?.toLowerCase() ?? 'false';
  if (value === 'true' || value === '1' || value === 'yes') return true;
  if (value === 'false' || value === '0' || value === 'no') return false;
  throw new ConfigError(name, `'${value}' is not true or false`);
}

function list(env: Env, name: string, fallback: string): string[] {
  return (text(env, name) ?? fallback)
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

function proxyListeners(env: Env, name: string): ProxyListener[] {
  const names = list(env, name, '').map((entry) => entry.toLowerCase());
  const unknown = names.find((entry) => !(PROXY_LISTENERS as readonly string[]).includes(entry));
  if (unknown !== undefined) throw new ConfigError(name, `'${unknown}' is not one of ${PROXY_LISTENERS.join(', ')}`);
  return [...new Set(names)] as ProxyListener[];
}

function addresses(env: Env, name: string, fallback: string): string[] {
  const entries = list(env, name, fallback);
  for (const entry of entries) {
    const [address = '', bits, ...extra] = entry.split('/');
    const family = isIP(address);
    const max = family === 6 ? 128 : 32;
    if (family === 0 || extra.length > 0 || (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > max))) {
      throw new ConfigError(name, `expected IP addresses or CIDR ranges, got '${entry}'`);
    }
  }
  return entries;
}

/** Reads and validates the whole configuration; the only place that looks at the environment. */
export function loadConfig(env: Env = process.env): Config {
  const tlsCertPath = text(env, 'MAILROOM_TLS_CERT');
  const tlsKeyPath = text(env, 'MAILROOM_TLS_KEY');
  if ((tlsCertPath === null) !== (tlsKeyPath === null)) {
    throw new ConfigError(
      tlsCertPath === null ? 'MAILROOM_TLS_CERT' : 'MAILROOM_TLS_KEY',
      'MAILROOM_TLS_CERT and MAILROOM_TLS_KEY must be set together',
    );
  }
  const bindHost = host(env, 'MAILROOM_HOST', '127.0.0.1');
  const imapPort = port(env, 'MAILROOM_IMAP_PORT', 1143);
  const imapsPort = port(env, 'MAILROOM_IMAPS_PORT', 1993);
  const pop3Port = port(env, 'MAILROOM_POP3_PORT', 1110);
  const pop3sPort = port(env, 'MAILROOM_POP3S_PORT', 1995);
  const proxyProtocol = proxyListeners(env, 'MAILROOM_PROXY_PROTOCOL');
  const proxyTrusted = addresses(env, 'MAILROOM_PROXY_TRUSTED', '127.0.0.1,::1');
  // smtp-server compares the peer with each entry as a plain address.
  const range = proxyTrusted.find((entry) => entry.includes('/'));
  if (proxyProtocol.includes('lmtp') && range !== undefined) {
    throw new ConfigError('MAILROOM_PROXY_TRUSTED', `LMTP takes single addresses only, not the range '${range}'`);
  }
  return {
    host: bindHost,
    httpPort: port(env, 'MAILROOM_HTTP_PORT', 8080),
    imapPort,
    imapsPort,
    pop3Port,
    pop3sPort,
    lmtpPort: port(env, 'MAILROOM_LMTP_PORT', 2424),
    publicServers: {
      host: publicHost(env, 'MAILROOM_PUBLIC_HOST', bindHost),
      imapPort: publicPort(env, 'MAILROOM_PUBLIC_IMAP_PORT', imapPort),
      imapsPort: publicPort(env, 'MAILROOM_PUBLIC_IMAPS_PORT', imapsPort),
      pop3Port: publicPort(env, 'MAILROOM_PUBLIC_POP3_PORT', pop3Port),
      pop3sPort: publicPort(env, 'MAILROOM_PUBLIC_POP3S_PORT', pop3sPort),
      submission: submission(env, 'MAILROOM_SUBMISSION_URL'),
    },
    dataDir: resolve(text(env, 'MAILROOM_DATA_DIR') ?? './data'),
    databaseUrl: databaseUrl(env, 'DATABASE_URL'),
    databasePoolSize: integer(env, 'MAILROOM_DB_POOL_SIZE', 10, 1, 1000),
    tlsCertPath: tlsCertPath && resolve(tlsCertPath),
    tlsKeyPath: tlsKeyPath && resolve(tlsKeyPath),
    adminToken: adminToken(env, 'MAILROOM_ADMIN_TOKEN'),
    logLevel: logLevel(env, 'MAILROOM_LOG_LEVEL'),
    passwordMinLength: integer(env, 'MAILROOM_PASSWORD_MIN_LENGTH', 10, 1, 1024),
    apiBodyLimit: integer(env, 'MAILROOM_API_BODY_LIMIT', 1024 * 1024, 1024, 1024 * 1024 * 1024),
    apiRateLimitPerIp: integer(env, 'MAILROOM_API_RATE_LIMIT_PER_IP', 6000, 0, 10_000_000),
    apiRateLimitPerKey: integer(env, 'MAILROOM_API_RATE_LIMIT_PER_KEY', 3000, 0, 10_000_000),
    apiMaxEventLoopDelayMs: integer(env, 'MAILROOM_API_MAX_EVENT_LOOP_DELAY', 1000, 0, 60_000),
    maxMessageSize: integer(env, 'MAILROOM_MAX_MESSAGE_SIZE', 50 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxConnectionsPerIp: integer(env, 'MAILROOM_MAX_CONNECTIONS_PER_IP', 50, 1, 100_000),
    // Dovecot's mail_max_userip_connections: one misbehaving device cannot take them all.
    maxConnectionsPerMailbox: integer(env, 'MAILROOM_MAX_CONNECTIONS_PER_MAILBOX', 10, 1, 10_000),
    maxAuthFailures: integer(env, 'MAILROOM_MAX_AUTH_FAILURES', 3, 1, 100),
    // Stricter per address than per mailbox: one source guessing is stopped first, while spraying
    // one mailbox from many addresses still locks it in the end.
    loginFailuresPerIp: integer(env, 'MAILROOM_LOGIN_FAILURES_PER_IP', 20, 0, 100_000),
    loginFailuresPerMailbox: integer(env, 'MAILROOM_LOGIN_FAILURES_PER_MAILBOX', 50, 0, 100_000),
    loginLockSeconds: integer(env, 'MAILROOM_LOGIN_LOCK_SECONDS', 900, 1, 86_400),
    loginMaxDelayMs: integer(env, 'MAILROOM_LOGIN_MAX_DELAY', 5000, 0, 60_000),
    protocolSwitchSweepMs: integer(env, 'MAILROOM_PROTOCOL_SWITCH_SWEEP', 30, 1, 3600) * 1000,
    pop3IdleTimeoutMs: integer(env, 'MAILROOM_POP3_IDLE_TIMEOUT', 600, 600, 86_400) * 1000,
    imapIdleTimeoutMs: integer(env, 'MAILROOM_IMAP_IDLE_TIMEOUT', 1800, 1800, 86_400) * 1000,
    loginTimeoutMs: integer(env, 'MAILROOM_LOGIN_TIMEOUT', 60, 1, 3600) * 1000,
    // RFC 5321 §4.5.3.2.7 gives a client 5 minutes between commands.
    lmtpTimeoutMs: integer(env, 'MAILROOM_LMTP_TIMEOUT', 300, 10, 3600) * 1000,
    allowPlaintextAuth: flag(env, 'MAILROOM_ALLOW_PLAINTEXT_AUTH'),
    proxyProtocol,
    proxyTrusted,
    apiTrustProxy: addresses(env, 'MAILROOM_API_TRUST_PROXY', ''),
    // Under the 30 s a container orchestrator waits before it kills.
    shutdownTimeoutMs: integer(env, 'MAILROOM_SHUTDOWN_TIMEOUT', 25, 1, 3600) * 1000,
    // Three days, as a receiver down over a weekend still gets everything; the log keeps 30.
    webhookMaxAgeMs: integer(env, 'MAILROOM_WEBHOOK_MAX_AGE', 259_200, 60, 2_592_000) * 1000,
    webhookTimeoutMs: integer(env, 'MAILROOM_WEBHOOK_TIMEOUT', 10, 1, 300) * 1000,
    // libuv's own default and ceiling.
    threadPoolSize: integer(env, 'UV_THREADPOOL_SIZE', 4, 1, 1024),
  };
}
