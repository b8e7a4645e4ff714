import { Type } from '@sinclair/typebox';
import type { Services } from '../../core/services.js';
import type { Api } from '../app.js';
import { ALL_ROLES, actorOf } from '../plugins/auth.js';
import { errorResponses } from '../schemas/common.js';
import { MailboxParams } from '../schemas/mailboxes.js';
import { MailSessionList } from '../schemas/sessions.js';

const tags = ['mail'];

export async function sessionRoutes(app: Api, { services }: { services: Services }) {
  app.get(
    '/v1/mailboxes/:address/sessions',
    {
      config: { roles: ALL_ROLES },
      schema: {
        tags,
        summary: 'List the live POP3 and IMAP sessions of a mailbox',
        params: MailboxParams,
        response: { 200: MailSessionList, ...errorResponses },
      },
    },
    async (request) => ({ items: await services.sessions.list(request.params.address, actorOf(request)) }),
  );

  app.delete(
    '/v1/mailboxes/:address/sessions',
    {
      config: { roles: ALL_ROLES },
      schema: {
        tags,
        summary: 'End every live session of a mailbox, on every gateway; clients may log in again',
        params: MailboxParams,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      await services.sessions.endAll(request.params.address, actorOf(request));
      return reply.code(204).send(null);
    },
  );
}
