import { randomBytes } from 'node:crypto';
import { type Bindings, type ChildLoggerOptions, type LogFn, pino } from 'pino';
import type { LogLevel } from './config.js';

/** What every part logs through: the process's pino logger or a child of it (Fastify's `app.log` is one). */
export interface Logger {
  level: string;
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
  child(bindings: Bindings, options?: ChildLoggerOptions): Logger;
}

/** The process's logger: one JSON object per line, to standard output unless `destination` is given. */
export function createLogger(level: LogLevel, destination?: { write(line: string): void }): pino.Logger {
  // Fastify's request serializer leaves headers out; should a line carry them anyway, these stay hidden.
  const options = { level, redact: ['req.headers.authorization', 'req.headers.cookie'] };
  return destination ? pino(options, destination) : pino(options);
}

export type SessionProtocol = 'imap' | 'pop3' | 'lmtp';

/**
 * The logger of one client connection: every line it writes carries the session id (a new short
 * random one unless the library gave one, as smtp-server does), the protocol and the client's address.
 */
export function sessionLogger<L extends { child(bindings: Bindings): L }>(
  log: L,
  proto: SessionProtocol,
  ip: string,
  session = randomBytes(5).toString('hex'),
): L {
  return log.child({ session, proto, ip });
}

/** A user name as a client sent it, for a log line: no longer than the longest address (RFC 5321), however long it was. */
export const givenUser = (name: string) => name.slice(0, 320);
