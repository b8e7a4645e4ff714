import { Type } from '@sinclair/typebox';
import type { Services } from '../../core/services.js';
import type { Api } from '../app.js';
import { ALL_ROLES, actorOf } from '../plugins/auth.js';
import { errorResponses } from '../schemas/common.js';
import { ClientLockout, ClientParams, LoginLockout } from '../schemas/login-lockout.js';
import { MailboxParams } from '../schemas/mailboxes.js';

const tags = ['mail'];

export async function loginLockoutRoutes(app: Api, { services }: { services: Services }) {
  app.get(
    '/v1/mailboxes/:address/login-lockout',
    {
      config: { roles: ALL_ROLES },
      schema: {
        tags,
        summary: 'Whether failed logins have locked the mailbox out of POP3 and IMAP',
        params: MailboxParams,
        response: { 200: LoginLockout, ...errorResponses },
      },
    },
    async (request) => services.loginThrottle.get(request.params.address, actorOf(request)),
  );

  app.delete(
    '/v1/mailboxes/:address/login-lockout',
    {
      config: { roles: ALL_ROLES },
      schema: {
        tags,
        summary: "Lift the mailbox's lockout and forget its failed logins, on every gateway",
        params: MailboxParams,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      await services.loginThrottle.clear(request.params.address, actorOf(request));
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/login-lockouts/clients/:ip',
    {
      config: { roles: ALL_ROLES },
      schema: {
        tags,
        summary: 'Whether failed logins have locked a client address out of POP3 and IMAP',
        description: 'Client addresses belong to no domain: a key confined to domains gets 403.',
        params: ClientParams,
        response: { 200: ClientLockout, ...errorResponses },
      },
    },
    async (request) => services.loginThrottle.getClient(request.params.ip, actorOf(request)),
  );

  app.delete(
    '/v1/login-lockouts/clients/:ip',
    {
      config: { roles: ALL_ROLES },
      schema: {
        tags,
        summary: "Lift a client address's lockout and forget its failed logins, on every gateway",
        description: 'For an office whose users share one address. A key confined to domains gets 403.',
        params: ClientParams,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      await services.loginThrottle.clearClient(request.params.ip, actorOf(request));
      return reply.code(204).send(null);
    },
  );
}
