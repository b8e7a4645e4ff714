import type { FastifyReply, FastifyRequest } from 'fastify';

export interface ProblemInput {
  status: number;
  code: string;
  detail: string;
  extra?: Record<string, unknown>;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  428: 'Precondition Required',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  507: 'Insufficient Storage',
};

/** A problem document's own fields; one inside another answer (a batch's item) has no more. */
export function problemFields(problem: ProblemInput) {
  return {
    type: `https://mailroom.dev/problems/${problem.code.replaceAll('_', '-')}`,
    title: TITLES[problem.status] ?? 'Error',
    status: problem.status,
    code: problem.code,
    detail: problem.detail,
  };
}

/** The RFC 9457 problem document of a request. */
export function problemDocument(request: FastifyRequest, problem: ProblemInput) {
  return { ...problemFields(problem), instance: request.url.split('?')[0], requestId: request.id, ...problem.extra };
}

/** Sends an RFC 9457 problem document; the one way every API error leaves the server. */
export function sendProblem(request: FastifyRequest, reply: FastifyReply, problem: ProblemInput): FastifyReply {
  return reply
    .code(problem.status)
    // Also here, as the onRequest hook that sets it does not run for requests the router refused.
    .header('x-request-id', request.id)
    .type('application/problem+json')
    .send(problemDocument(request, problem));
}
