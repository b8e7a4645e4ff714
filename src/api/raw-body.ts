import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchemaCompiler } from 'fastify';
import { sendProblem } from './problem.js';
import { compileValidator } from './validation.js';

/** Hands `type` bodies to the routes of the calling plugin (only) as a Buffer of exactly the bytes sent. */
export function acceptRawBodies(app: FastifyInstance, type: string): void {
  app.addContentTypeParser(type, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
}

/**
 * Route options for a raw body of `type`, at most `bodyLimit` bytes: another type is refused
 * (415) before any of it is read, and Ajv, which cannot check bytes, leaves the body alone.
 */
export function rawBody(type: string, bodyLimit: number) {
  const validatorCompiler: FastifySchemaCompiler<object> = (route) =>
    route.httpPart === 'body' ? () => true : compileValidator(route);
  return {
    bodyLimit,
    validatorCompiler,
    async onRequest(request: FastifyRequest, reply: FastifyReply) {
      const given = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (given !== type) {
        return sendProblem(request, reply, { status: 415, code: 'unsupported_media_type', detail: `Send the body as ${type}` });
      }
    },
  };
}
