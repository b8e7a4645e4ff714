import type { Services } from '../../core/services.js';
import type { Api } from '../app.js';
import { actorOf } from '../plugins/auth.js';
import { AuditEvent, AuditEventListQuery } from '../schemas/audit-events.js';
import { errorResponses, pageOf } from '../schemas/common.js';

export async function auditEventRoutes(app: Api, { services }: { services: Services }) {
  app.get(
    '/v1/audit-events',
    {
      config: { roles: ['admin', 'support'] },
      schema: {
        tags: ['audit'],
        summary: 'List audit events, newest first',
        querystring: AuditEventListQuery,
        response: { 200: pageOf(AuditEvent), ...errorResponses },
      },
    },
    async (request) => {
      const { limit, cursor, from, to, ...filter } = request.query;
      return services.audit.list(
        { ...filter, from: from === undefined ? undefined : new Date(from), to: to === undefined ? undefined : new Date(to) },
        { limit, cursor },
        actorOf(request),
      );
    },
  );
}
