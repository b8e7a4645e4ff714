import type { Services } from '../../core/services.js';
import type { Api } from '../app.js';
import { ALL_ROLES, actorOf } from '../plugins/auth.js';
import { domainProblem } from '../plugins/errors.js';
import { problemDocument } from '../problem.js';
import { errorResponses } from '../schemas/common.js';
import { MailboxParams } from '../schemas/mailboxes.js';
import { QuotaCandidate, QuotaPreview } from '../schemas/quota-preview.js';

export async function quotaPreviewRoutes(app: Api, { services }: { services: Services }) {
  app.post(
    // `::` is Fastify's escape for a literal colon: the path is /v1/mailboxes/{address}/quota:preview.
    '/v1/mailboxes/:address/quota::preview',
    {
      config: { roles: ALL_ROLES },
      schema: {
        tags: ['mailboxes'],
        summary: 'What a quota would mean for the mailbox, without changing it',
        description:
          'Current usage against the candidate, whether new mail would be refused, the percentage used, and whether PATCH would refuse the quota (above the domain’s largest): then `rejection` is the very problem PATCH would answer.',
        params: MailboxParams,
        body: QuotaCandidate,
        response: { 200: QuotaPreview, ...errorResponses },
      },
    },
    async (request) => {
      const { rejection, ...preview } = await services.quotaPreview.preview(request.params.address, request.body, actorOf(request));
      return { ...preview, rejection: rejection && problemDocument(request, domainProblem(rejection)) };
    },
  );
}
