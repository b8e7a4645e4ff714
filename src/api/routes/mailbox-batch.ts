import type { Services } from '../../core/services.js';
import type { Api } from '../app.js';
import { runMailboxBatch } from '../mailbox-batch.js';
import { actorOf } from '../plugins/auth.js';
import { errorResponses } from '../schemas/common.js';
import { BatchBody, BatchQuery, BatchResponse } from '../schemas/mailbox-batch.js';

const WRITERS = ['admin', 'provisioner'] as const;

export async function mailboxBatchRoutes(app: Api, { services }: { services: Services }) {
  app.post(
    // `::` is a literal colon to Fastify's router.
    '/v1/mailboxes::batch',
    {
      config: { roles: WRITERS },
      schema: {
        tags: ['mailboxes'],
        summary: 'Create, change and delete up to 1,000 mailboxes in one request, each reported on its own',
        description:
          'Every operation is judged as its single request would be and gets its own result: created, updated, unchanged, deleted, or failed with a problem object. A failure never undoes the others, unless atomic=true: then any failure changes nothing and the answer is 422 batch_failed with the same results. dryRun=true checks everything and changes nothing. Passwords are hashed in parallel; a batch of 1,000 creations takes seconds to tens of seconds, mostly argon2.',
        querystring: BatchQuery,
        body: BatchBody,
        response: { 200: BatchResponse, ...errorResponses },
      },
    },
    async (request) => runMailboxBatch(services, request.body.items, request.query, actorOf(request)),
  );
}
