import type { Services } from '../../core/services.js';
import type { Api } from '../app.js';
import { ALL_ROLES, actorOf } from '../plugins/auth.js';
import { errorResponses } from '../schemas/common.js';
import { FolderList } from '../schemas/folders.js';
import { MailboxParams } from '../schemas/mailboxes.js';

export async function folderRoutes(app: Api, { services }: { services: Services }) {
  app.get(
    '/v1/mailboxes/:address/folders',
    {
      config: { roles: ALL_ROLES },
      schema: {
        tags: ['mail'],
        summary: 'List the folders of a mailbox with their message, unseen and byte counts',
        params: MailboxParams,
        response: { 200: FolderList, ...errorResponses },
      },
    },
    async (request) => {
      const mailbox = await services.mailboxes.find(request.params.address, actorOf(request));
      return { items: await services.mail.folders.usage(mailbox.id) };
    },
  );
}
