import { Type } from '@sinclair/typebox';
import type { Services } from '../../core/services.js';
import type { Api } from '../app.js';
import { ifMatch, setEtag } from '../etag.js';
import { ALL_ROLES, actorOf } from '../plugins/auth.js';
import { errorResponses, pageOf, Revisioned } from '../schemas/common.js';
import { Domain, DomainCreate, DomainListQuery, DomainParams, DomainPatch } from '../schemas/domains.js';

const tags = ['domains'];
const WRITERS = ['admin', 'provisioner'] as const;

export async function domainRoutes(app: Api, { services }: { services: Services }) {
  app.post(
    '/v1/domains',
    {
      config: { roles: WRITERS },
      schema: {
        tags,
        summary: 'Create a domain',
        body: DomainCreate,
        response: { 201: { ...Domain, ...Revisioned }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { value, revision } = await services.domains.create(request.body, actorOf(request));
      setEtag(reply, revision).header('location', `/v1/domains/${value.name}`).code(201);
      return value;
    },
  );

  app.get(
    '/v1/domains',
    {
      config: { roles: ALL_ROLES },
      schema: {
        tags,
        summary: 'List domains, ordered by name',
        querystring: DomainListQuery,
        response: { 200: pageOf(Domain), ...errorResponses },
      },
    },
    async (request) => {
      const { limit, cursor, ...filter } = request.query;
      return services.domains.list(filter, { limit, cursor }, actorOf(request));
    },
  );

  app.get(
    '/v1/domains/:domain',
    {
      config: { roles: ALL_ROLES },
      schema: { tags, summary: 'Read a domain', params: DomainParams, response: { 200: Domain, ...errorResponses } },
    },
    async (request, reply) => {
      const { value, revision } = await services.domains.get(request.params.domain, actorOf(request));
      setEtag(reply, revision);
      return value;
    },
  );

  app.patch(
    '/v1/domains/:domain',
    {
      config: { roles: WRITERS },
      schema: {
        tags,
        summary: 'Change any subset of a domain’s writable fields',
        description: 'Send If-Match with the ETag you read to refuse the change (412) if someone else changed it first.',
        params: DomainParams,
        body: DomainPatch,
        response: { 200: Domain, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { value, revision } = await services.domains.update(
        request.params.domain,
        request.body,
        actorOf(request),
        ifMatch(request),
      );
      setEtag(reply, revision);
      return value;
    },
  );

  app.delete(
    '/v1/domains/:domain',
    {
      config: { roles: WRITERS },
      schema: {
        tags,
        summary: 'Delete a domain that has no mailboxes left',
        params: DomainParams,
        response: { 204: Type.Null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      await services.domains.delete(request.params.domain, actorOf(request), ifMatch(request));
      return reply.code(204).send(null);
    },
  );
}
