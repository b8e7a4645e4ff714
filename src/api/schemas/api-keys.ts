import { Type } from '@sinclair/typebox';
import { DomainName, Nullable, PageQuery, Timestamp } from './common.js';

const Role = Type.Union([Type.Literal('admin'), Type.Literal('provisioner'), Type.Literal('support')], {
  description:
    'admin: everything; provisioner: domains, mailboxes, delivery, import/export; support: read, reset password, toggle protocols, suspend',
});

const Domains = Nullable(
  Type.Array(DomainName, { maxItems: 1000, description: 'Domains the key is confined to; null or absent: all' }),
);

export const ApiKey = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String(),
    role: Role,
    domains: Domains,
    createdAt: Timestamp,
    lastUsedAt: Nullable(Timestamp),
  },
  { description: 'An API key (never its token)' },
);

export const ApiKeyCreated = Type.Object({
  ...ApiKey.properties,
  token: Type.String({ description: 'The bearer token; shown only in this response' }),
});

export const ApiKeyCreate = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 200 }), role: Role, domains: Type.Optional(Domains) },
  { additionalProperties: false },
);

export const ApiKeyParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
export const ApiKeyListQuery = Type.Object(PageQuery, { additionalProperties: false });
