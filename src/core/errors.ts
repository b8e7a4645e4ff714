import { DrizzleQueryError } from 'drizzle-orm/errors';
/**
 * Errors every door understands. Core services throw them; each door (API, IMAP, POP3, LMTP)
 * maps them to its own protocol in one place. `code` is stable and machine-readable.
 */
export type ErrorKind =
  | 'invalid'
  | 'not_found'
  | 'conflict'
  | 'forbidden'
  | 'precondition_failed'
  | 'quota_exceeded';

export class DomainError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly code: string,
    message: string,
    /** Extra machine-readable facts, e.g. which field was wrong. Never secrets. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export class InvalidError extends DomainError {
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super('invalid', code, message, details);
  }
}

export class NotFoundError extends DomainError {
  constructor(code: string, message: string) {
    super('not_found', code, message);
  }
}

export class ConflictError extends DomainError {
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super('conflict', code, message, details);
  }
}

export class ForbiddenError extends DomainError {
  constructor(code: string, message: string) {
    super('forbidden', code, message);
  }
}

/** The caller's view of the resource is stale (If-Match). */
export class PreconditionFailedError extends DomainError {
  constructor(message: string) {
    super('precondition_failed', 'revision_mismatch', message);
  }
}

/** Storing this would take the mailbox past its quota; the mail already there is kept. */
export class QuotaExceededError extends DomainError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('quota_exceeded', 'quota_exceeded', message, details);
  }
}

/**
 * What of an error may be logged. Drizzle writes a failed query's parameters into its message,
 * and those can be message bodies, password hashes or tokens; the query text and the driver's
 * error (with its SQLSTATE code) are kept, the values are not.
 */
export function loggable(error: unknown): unknown {
  if (!(error instanceof DrizzleQueryError)) return error;
  // Not its stack either: that starts with the message.
  return new Error(`Failed query: ${error.query}`, { cause: error.cause });
}

/** Socket errors of a database connection that cannot be opened or was lost. */
const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/** What pg and its pool say, without a code, when a connection dies, times out or is unusable. */
const CONNECTION_MESSAGES =
  /^(Connection terminated|timeout expired|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed)/;

/**
 * True when error means the database could not be reached, or the connection was lost mid-query
 * (restart, network): the request may succeed later, so doors answer "try again" (503, 451,
 * [UNAVAILABLE], [SYS/TEMP]) rather than report a bug. SQLSTATE class 08 is a connection
 * exception; 57P01-57P03 a server shutting down or starting; 53300 too many connections.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && (/^08|^57P0[123]$|^53300$/.test(code) || CONNECTION_ERRNOS.has(code))) return true;
    if (CONNECTION_MESSAGES.test(cause.message)) return true;
  }
  return false;
}
