import { Type } from '@sinclair/typebox';
import { ForbiddenError } from '../../core/errors.js';
import type { Services } from '../../core/services.js';
import type { Api } from '../app.js';
import { ifMatch, setEtag } from '../etag.js';
import { ALL_ROLES, actorOf } from '../plugins/auth.js';
import { errorResponses, pageOf, Revisioned } from '../schemas/common.js';
import { Mailbox, MailboxCreate, MailboxListQuery, MailboxParams, MailboxPatch, PasswordChange } from '../schemas/mailboxes.js';

const tags = ['mailboxes'];
const WRITERS = ['admin', 'provisioner'] as const;
/** What support staff may change on a mailbox: switch protocols, suspend and unsuspend. */
const SUPPORT_FIELDS = new Set(['protocols', 'status']);

export async function mailboxRoutes(app: Api, { services }: { services: Services }) {
  app.post(
    '/v1/mailboxes',
    {
      config: { roles: WRITERS },
      schema: {
        tags,
        summary: 'Create a mailbox',
        description: 'Fields left out take the domain’s defaults. Give exactly one of password and passwordHash.',
        body: MailboxCreate,
        response: { 201: { ...Mailbox, ...Revisioned }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { value, revision } = await services.mailboxes.create(request.body, actorOf(request));
      // A local part may hold / ? # and %, which a path must escape; @ may stay as it is.
      const path = encodeURIComponent(value.address).replace('%40', '@');
      setEtag(reply, revision).header('location', `/v1/mailboxes/${path}`).code(201);
      return value;
    },
  );

  app.get(
    '/v1/mailboxes',
    {
      config: { roles: ALL_ROLES },
      schema: {
        tags,
        summary: 'List mailboxes, ordered by address',
        querystring: MailboxListQuery,
        response: { 200: pageOf(Mailbox), ...errorResponses },
      },
    },
    async (request) => {
      const { limit, cursor, ...filter } = request.query;
      return services.mailboxes.list(filter, { limit, cursor }, actorOf(request));
    },
  );

  app.get(
    '/v1/mailboxes/:address',
    {
      config: { roles: ALL_ROLES },
      schema: { tags, summary: 'Read a mailbox', params: MailboxParams, response: { 200: Mailbox, ...errorResponses } },
    },
    async (request, reply) => {
      const { value, revision } = await services.mailboxes.get(request.params.address, actorOf(request));
      setEtag(reply, revision);
      return value;
    },
  );

  app.patch(
    '/v1/mailboxes/:address',
    {
      config: { roles: ALL_ROLES },
      schema: {
        tags,
        summary: 'Change any subset of a mailbox’s writable fields',
        description:
          'Support keys may change only protocols and status. Send If-Match with the ETag you read to refuse the change (412) if someone else changed it first.',
        params: MailboxParams,
        body: MailboxPatch,
        response: { 200: Mailbox, ...errorResponses },
      },
    },
    async (request, reply) => {
      const actor = actorOf(request);
      const forbidden = Object.keys(request.body).filter((field) => !SUPPORT_FIELDS.has(field));
      if (actor.role === 'support' && forbidden.length > 0) {
        throw new ForbiddenError('role_forbidden', `The support role may not change ${forbidden.join(', ')}`);
      }
      const { value, revision } = await services.mailboxes.update(request.params.address, request.body, actor, ifMatch(request));
      setEtag(reply, revision);
      return value;
    },
  );

  app.put(
    '/v1/mailboxes/:address/password',
    {
      config: { roles: ALL_ROLES },
      schema: {
        tags,
        summary: 'Set a new password, or import a password hash',
        description: 'Support keys may set a password but not import a hash.',
        params: MailboxParams,
        body: PasswordChange,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      const actor = actorOf(request);
      if (actor.role === 'support' && request.body.passwordHash !== undefined) {
        throw new ForbiddenError('role_forbidden', 'The support role may not import password hashes');
      }
      await services.mailboxes.setPassword(request.params.address, request.body, actor);
      return reply.code(204).send(null);
    },
  );

  app.delete(
    '/v1/mailboxes/:address',
    {
      config: { roles: WRITERS },
      schema: {
        tags,
        summary: 'Delete a mailbox and all its mail',
        params: MailboxParams,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      await services.mailboxes.delete(request.params.address, actorOf(request), ifMatch(request));
      return reply.code(204).send(null);
    },
  );
}
