import type { Test } from 'tap';

/** The parts of an app.inject() response the assertions read. */
export interface Injected {
  statusCode: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
  json(): any;
}

/**
 * Asserts an RFC 9457 problem document with our fields, the given status and stable code, and
 * the request id of the response; returns the document for further checks.
 */
export function assertProblem(t: Test, response: Injected, status: number, code: string): Record<string, any> {
  const label = `${status} ${code}`;
  t.equal(response.statusCode, status, `status ${label}`);
  t.match(response.headers['content-type'], /^application\/problem\+json/, `problem+json (${label})`);
  const problem = response.json();
  t.equal(problem.code, code, `code ${label}`);
  t.equal(problem.status, status, `status field (${label})`);
  t.equal(problem.type, `https://mailroom.dev/problems/${code.replaceAll('_', '-')}`, `type (${label})`);
  t.match(problem.title, /^\S.*/, `title (${label})`);
  t.match(problem.detail, /^\S.*/, `detail (${label})`);
  t.equal(problem.requestId, response.headers['x-request-id'], `requestId is the response's (${label})`);
  return problem;
}
