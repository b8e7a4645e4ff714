import type { FastifyError, FastifyInstance, FastifySchemaValidationError as ValidationIssue } from 'fastify';
import { DomainError, type ErrorKind, isDatabaseUnavailable, loggable } from '../../core/errors.js';
import { type ProblemInput, sendProblem } from '../problem.js';

const STATUS_BY_KIND: Record<ErrorKind, number> = {
  invalid: 422,
  not_found: 404,
  conflict: 409,
  forbidden: 403,
  precondition_failed: 412,
  quota_exceeded: 507,
};

/** Seconds a client is asked to wait when the database is away (a restart takes a few). */
const UNAVAILABLE_RETRY_AFTER = 5;

const FASTIFY_ERRORS: Record<string, { code: string; detail: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'body_too_large', detail: 'The request body is larger than this endpoint accepts' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'unsupported_media_type',
    detail: 'Send the body as application/json',
  },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'malformed_json', detail: 'The body is not valid JSON' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'malformed_json', detail: 'The body is empty but declared as JSON' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'bad_content_length', detail: 'Content-Length does not match the body' },
};

/** Schema violations, each named by its path under `context` (e.g. `body`, `querystring`). */
export function validationProblem(issues: readonly ValidationIssue[], context: string): ProblemInput {
  const errors = issues.map((issue) => {
    const path = `${context}${issue.instancePath}`.replaceAll('/', '.');
    if (issue.keyword === 'additionalProperties') {
      const field = (issue.params as { additionalProperty: string }).additionalProperty;
      return { path: `${path}.${field}`, message: 'is not a known field' };
    }
    if (issue.keyword === 'required') {
      // Name the missing field itself, not the object that lacks it.
      const field = (issue.params as { missingProperty: string }).missingProperty;
      return { path: `${path}.${field}`, message: 'is required' };
    }
    return { path, message: issue.message ?? 'is invalid' };
  });
  const unknownField = issues.some((issue) => issue.keyword === 'additionalProperties');
  return {
    status: 400,
    code: unknownField ? 'unknown_field' : 'validation_failed',
    detail: errors.map((e) => `${e.path} ${e.message}`).join('; '),
    extra: { errors },
  };
}

/** The one mapping of the core's errors to HTTP problems. */
export function domainProblem(error: DomainError): ProblemInput {
  return { status: STATUS_BY_KIND[error.kind], code: error.code, detail: error.message, extra: error.details };
}

function problemFor(error: FastifyError): ProblemInput | null {
  if (error instanceof DomainError) return domainProblem(error);
  if (error.validation) return validationProblem(error.validation, error.validationContext ?? 'body');
  const known = error.code === undefined ? undefined : FASTIFY_ERRORS[error.code];
  if (known) return { status: error.statusCode ?? 400, ...known };
  // Other client errors Fastify raises (bad headers and the like) keep their status.
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return { status: error.statusCode, code: 'bad_request', detail: error.message };
  }
  return null;
}

/** Maps every error to problem+json in one place; 5xx details stay in the log, not the response. */
export function installErrorHandling(app: FastifyInstance): void {
  // Bodies are JSON only. Fastify's built-in text/plain parser would hand the route a string, so
  // a text body got a puzzling 400 "body must be object" instead of 415 unsupported_media_type.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const problem = problemFor(error);
    if (problem) return sendProblem(request, reply, problem);
    if (isDatabaseUnavailable(error)) {
      request.log.warn({ err: loggable(error) }, 'database unavailable');
      reply.header('retry-after', String(UNAVAILABLE_RETRY_AFTER));
      return sendProblem(request, reply, {
        status: 503,
        code: 'database_unavailable',
        detail: `The database does not answer; retry in ${UNAVAILABLE_RETRY_AFTER} seconds`,
      });
    }
    request.log.error({ err: loggable(error) }, 'unhandled error');
    return sendProblem(request, reply, {
      status: 500,
      code: 'internal_error',
      detail: 'Something went wrong on our side; the request id helps support find it in the log',
    });
  });

  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, {
      status: 404,
      code: 'not_found',
      detail: `There is nothing at ${request.method} ${request.url.split('?')[0]}`,
    }),
  );
}
