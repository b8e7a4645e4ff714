import { InvalidError } from '../../core/errors.js';
import type { Services } from '../../core/services.js';
import type { Api } from '../app.js';
import { actorOf } from '../plugins/auth.js';
import { AuditEvent, AuditEventListQuery } from '../schemas/audit-events.js';
import { errorResponses, pageOf } from '../schemas/common.js';

/**
 * RFC 3339 admits instants the database cannot take (a leap second; year 0 or 10000 once the
 * offset is applied): refused here, not a 500 there.
 */
function instant(value: string | undefined, field: 'from' | 'to'): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  const year = date.getUTCFullYear();
  if (Number.isNaN(year) || year < 1 || year > 9999) {
    throw new InvalidError('invalid_time', `${field} is not a time that can be searched`, { field });
  }
  return date;
}

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
        { ...filter, from: instant(from, 'from'), to: instant(to, 'to') },
        { limit, cursor },
        actorOf(request),
      );
    },
  );
}
