import { INBOX, normalizeFolderName } from '../../core/mailstore/folders.js';
import type { Services } from '../../core/services.js';
import type { Api } from '../app.js';
import { actorOf } from '../plugins/auth.js';
import { acceptRawBodies, rawBody } from '../raw-body.js';
import { errorResponses } from '../schemas/common.js';
import { MailboxParams } from '../schemas/mailboxes.js';
import { Delivered, DeliverQuery, RawMessage } from '../schemas/messages.js';
import { InvalidError } from '../../core/errors.js';

export interface MailRouteOptions {
  services: Services;
  /** Largest message accepted, in bytes. */
  maxMessageSize: number;
  /** Largest mbox the import reads, in bytes. */
  maxImportSize: number;
}

export async function messageRoutes(app: Api, { services, maxMessageSize }: MailRouteOptions) {
  acceptRawBodies(app, 'message/rfc822');

  app.post(
    '/v1/mailboxes/:address/messages',
    {
      config: { roles: ['admin', 'provisioner'] },
      ...rawBody('message/rfc822', maxMessageSize),
      schema: {
        tags: ['mail'],
        summary: 'Deliver one message to a folder (INBOX unless ?folder= says otherwise)',
        description:
          'The body is stored byte for byte, unflagged, dated now, and counts against the quota: over quota answers 507 quota_exceeded, a body over MAILROOM_MAX_MESSAGE_SIZE 413, an unknown folder 404 folder_not_found. Roles: admin, provisioner.',
        consumes: ['message/rfc822'],
        params: MailboxParams,
        querystring: DeliverQuery,
        body: RawMessage,
        response: { 201: Delivered, ...errorResponses },
      },
    },
    async (request, reply) => {
      const actor = actorOf(request);
      const mailbox = await services.mailboxes.find(request.params.address, actor);
      const folder = normalizeFolderName(request.query.folder ?? INBOX);
      if (request.body.length === 0) throw new InvalidError('empty_message', 'The message is empty');
      const [result] = await services.mail.deliver(request.body, [mailbox.address], folder);
      if (!result!.delivered) throw result!.error;
      await services.audit.recordAfter(actor, {
        action: 'mailbox.message.deliver',
        targetType: 'mailbox',
        target: mailbox.address,
        domain: mailbox.address.slice(mailbox.address.lastIndexOf('@') + 1),
        after: { folder, uid: result!.uid, size: result!.size },
      });
      reply.code(201);
      return { uid: result!.uid, size: result!.size, folder };
    },
  );
}
