import type { FastifyReply, FastifyRequest } from 'fastify';
import { InvalidError } from '../core/errors.js';

export function setEtag(reply: FastifyReply, revision: string): FastifyReply {
  return reply.header('etag', `"${revision}"`);
}

/**
 * The revisions an If-Match header accepts: undefined when absent or `*` (no check).
 * Weak tags never match, as RFC 9110 asks for strong comparison here.
 */
export function ifMatch(request: FastifyRequest): string[] | undefined {
  const header = request.headers['if-match'];
  if (header === undefined || header.trim() === '*') return undefined;
  const tags = header.split(',').map((tag) => tag.trim());
  if (!tags.every((tag) => /^(W\/)?"[^"]*"$/.test(tag))) {
    throw new InvalidError('invalid_if_match', 'If-Match must be * or a list of quoted ETags', { field: 'If-Match' });
  }
  return tags.filter((tag) => !tag.startsWith('W/')).map((tag) => tag.slice(1, -1));
}
