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
