import { Type } from '@sinclair/typebox';
import type { Services } from '../../core/services.js';
import type { Api } from '../app.js';
import { ALL_ROLES, actorOf } from '../plugins/auth.js';
import { errorResponses } from '../schemas/common.js';
import { LoginCheck } from '../schemas/login-check.js';
import { MailboxParams } from '../schemas/mailboxes.js';

const tags = ['mail'];

export async function loginCheckRoutes(app: Api, { services }: { services: Services }) {
  app.get(
    '/v1/mailboxes/:address/login-check',
    {
      config: { roles: ALL_ROLES },
      schema: {
        tags,
        summary: "Why can't this mailbox log in? Every rule a POP3 or IMAP login goes through, as it stands now",
        description:
          'Mailbox and domain status, each protocol’s switch (with reason, expiry and last login), lockouts of the mailbox and of the client addresses it was used from, the last failed logins and why they failed, quota (which refuses mail, never logins) and password age.',
        params: MailboxParams,
        response: { 200: LoginCheck, ...errorResponses },
      },
    },
    async (request) => services.loginCheck.check(request.params.address, actorOf(request)),
  );

  app.delete(
    '/v1/mailboxes/:address/login-check/lockout',
    {
      config: { roles: ALL_ROLES },
      schema: {
        tags,
        summary: "Lift the mailbox's lockout and forget its failed logins, on every gateway",
        description: 'The same as DELETE /v1/mailboxes/{address}/login-lockout. Client addresses stay locked: see /v1/login-lockouts/clients/{ip}.',
        params: MailboxParams,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      await services.loginThrottle.clear(request.params.address, actorOf(request));
      return reply.code(204).send(null);
    },
  );
}
