import { Type } from '@sinclair/typebox';
import { DomainName, Nullable, PageQuery, Pop3DeleteMode, Protocols, Quota, Status, Timestamp } from './common.js';

const SuspendedDelivery = Type.Union([Type.Literal('receive'), Type.Literal('reject')], {
  description: 'Whether suspended mailboxes of the domain still receive mail (receive) or refuse it (reject)',
});

const DomainDefaults = Type.Object(
  { quota: Quota, protocols: Protocols, pop3DeleteMode: Pop3DeleteMode },
  { additionalProperties: false, description: 'What a new mailbox gets when its request leaves a field out' },
);

const DomainLimits = Type.Object(
  {
    maxMailboxes: Nullable(Type.Integer({ minimum: 0, maximum: 2147483647 })),
    maxQuota: Type.Object(Quota.properties, {
      additionalProperties: false,
      description: 'The largest quota one mailbox may have; null means no ceiling',
    }),
  },
  { additionalProperties: false },
);

export const Domain = Type.Object(
  {
    name: Type.String({ description: 'ASCII (punycode), lowercase' }),
    unicodeName: Type.String(),
    status: Status,
    suspendedDelivery: SuspendedDelivery,
    defaults: DomainDefaults,
    limits: DomainLimits,
    mailboxCount: Type.Integer(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { description: 'A mail domain' },
);

/** Any subset of the writable fields, in the resource's own shape. */
const writable = {
  status: Type.Optional(Status),
  suspendedDelivery: Type.Optional(SuspendedDelivery),
  defaults: Type.Optional(
    Type.Object(
      {
        quota: Type.Optional(Type.Partial(Quota, { additionalProperties: false })),
        protocols: Type.Optional(Type.Partial(Protocols, { additionalProperties: false })),
        pop3DeleteMode: Type.Optional(Pop3DeleteMode),
      },
      { additionalProperties: false },
    ),
  ),
  limits: Type.Optional(
    Type.Object(
      {
        maxMailboxes: Type.Optional(DomainLimits.properties.maxMailboxes),
        maxQuota: Type.Optional(Type.Partial(Quota, { additionalProperties: false })),
      },
      { additionalProperties: false },
    ),
  ),
};

export const DomainCreate = Type.Object({ name: DomainName, ...writable }, { additionalProperties: false });
export const DomainPatch = Type.Object(writable, { additionalProperties: false });

export const DomainParams = Type.Object({ domain: DomainName });

export const DomainListQuery = Type.Object(
  {
    ...PageQuery,
    q: Type.Optional(Type.String({ maxLength: 253, description: 'Name prefix' })),
    status: Type.Optional(Status),
  },
  { additionalProperties: false },
);
