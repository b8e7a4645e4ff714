import { Type } from '@sinclair/typebox';
import { Nullable, PageQuery, Timestamp } from './common.js';

const Fields = Nullable(Type.Object({}, { additionalProperties: true, description: 'Changed fields only; never secrets' }));

export const AuditEvent = Type.Object(
  {
    id: Type.String(),
    at: Timestamp,
    actor: Type.Object({ id: Type.String(), name: Type.String() }),
    action: Type.String({ examples: ['mailbox.update'] }),
    targetType: Type.String(),
    target: Type.String(),
    domain: Nullable(Type.String()),
    before: Fields,
    after: Fields,
    requestId: Nullable(Type.String()),
    ip: Nullable(Type.String()),
  },
  { description: 'One recorded change' },
);

export const AuditEventListQuery = Type.Object(
  {
    ...PageQuery,
    target: Type.Optional(Type.String({ maxLength: 320, description: 'A mailbox address, domain name or API key id' })),
    actor: Type.Optional(Type.String({ maxLength: 64, description: 'API key id' })),
    action: Type.Optional(Type.String({ maxLength: 64 })),
    from: Type.Optional(Type.String({ format: 'date-time' })),
    to: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);
