import { Type } from '@sinclair/typebox';
import type { Services } from '../../core/services.js';
import type { Api } from '../app.js';
import { sendProblem } from '../problem.js';
import { problemResponse } from '../schemas/common.js';

const Health = Type.Object({ status: Type.Literal('ok') });

export async function healthRoutes(app: Api, { services }: { services: Services }) {
  app.get(
    '/healthz',
    { schema: { tags: ['health'], summary: 'The process is alive', security: [], response: { 200: Health } } },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'The process can serve: the database answers',
        security: [],
        response: { 200: Health, 503: problemResponse('The database does not answer') },
      },
    },
    async (request, reply) => {
      try {
        await services.health.check();
      } catch (error) {
        request.log.warn({ err: error }, 'readiness check failed');
        return sendProblem(request, reply, { status: 503, code: 'database_unavailable', detail: 'The database does not answer' });
      }
      return { status: 'ok' as const };
    },
  );
}
