import { Type } from '@sinclair/typebox';
import { Address, DomainName, Nullable, PageQuery, Pop3DeleteMode, Protocols, Quota, Status, Timestamp } from './common.js';

const DisplayName = Nullable(Type.String({ maxLength: 256, pattern: '^[^\\u0000-\\u001f\\u007f]*$' }));
const Password = Type.String({ minLength: 1, maxLength: 1024, description: 'Plain text; stored as an argon2id hash' });
const PasswordHash = Type.String({
  minLength: 1,
  maxLength: 512,
  description: 'An existing hash to import: argon2id, bcrypt ($2b$), SHA512-CRYPT ($6$) or SHA256-CRYPT ($5$)',
});

const SwitchReason = Type.String({ minLength: 1, maxLength: 500, pattern: '^[^\\u0000-\\u001f\\u007f]*$', description: 'Why, e.g. a ticket number' });

const ProtocolSwitch = Type.Object(
  {
    enabled: Type.Boolean(),
    reason: Nullable(Type.String()),
    until: Nullable(Timestamp),
    changedAt: Nullable(Timestamp),
  },
  {
    description:
      'until: when the switch flips back by itself (null: it stays); changedAt: when it last changed (null: as the mailbox was created)',
  },
);

/** A switch as PATCH takes it: a plain boolean, which forgets reason and until, or this object. */
const SwitchInput = Type.Union([
  Type.Boolean(),
  Type.Object(
    {
      enabled: Type.Boolean(),
      reason: Type.Optional(Nullable(SwitchReason)),
      until: Type.Optional(Nullable(Type.String({ format: 'date-time', description: 'In the future; the switch flips back by itself then' }))),
    },
    { additionalProperties: false },
  ),
]);

export const Mailbox = Type.Object(
  {
    address: Type.String(),
    domain: Type.String(),
    displayName: DisplayName,
    status: Status,
    protocols: Protocols,
    protocolSwitches: Type.Object(
      { imap: ProtocolSwitch, pop3: ProtocolSwitch },
      { description: 'protocols in detail: why each is switched as it is, since when, and until when' },
    ),
    pop3DeleteMode: Pop3DeleteMode,
    quota: Quota,
    usage: Type.Object({ storageBytes: Type.Integer(), messages: Type.Integer() }),
    lastLogin: Nullable(Type.Object({ at: Timestamp, protocol: Type.String(), ip: Nullable(Type.String()) })),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { description: 'A mailbox account' },
);

/** Any subset of the writable fields, in the resource's own shape. */
const writable = {
  displayName: Type.Optional(DisplayName),
  status: Type.Optional(Status),
  protocols: Type.Optional(
    Type.Object(
      { imap: Type.Optional(SwitchInput), pop3: Type.Optional(SwitchInput) },
      {
        additionalProperties: false,
        description:
          'Per protocol true/false, or {"enabled": false, "reason": "abuse report #123", "until": "2027-01-01T00:00:00Z"}: a reason to show support, and a time at which the switch flips back by itself. A plain boolean clears reason and until.',
      },
    ),
  ),
  pop3DeleteMode: Type.Optional(Pop3DeleteMode),
  quota: Type.Optional(Type.Partial(Quota, { additionalProperties: false })),
};

export const MailboxCreate = Type.Object(
  { address: Address, password: Type.Optional(Password), passwordHash: Type.Optional(PasswordHash), ...writable },
  { additionalProperties: false, description: 'Give exactly one of password and passwordHash' },
);
export const MailboxPatch = Type.Object(writable, { additionalProperties: false });

export const PasswordChange = Type.Object(
  { password: Type.Optional(Password), passwordHash: Type.Optional(PasswordHash) },
  { additionalProperties: false, description: 'Give exactly one of password and passwordHash' },
);

export const MailboxParams = Type.Object({ address: Address });

export const MailboxListQuery = Type.Object(
  {
    ...PageQuery,
    domain: Type.Optional(DomainName),
    q: Type.Optional(Type.String({ maxLength: 320, description: 'Address prefix' })),
    status: Type.Optional(Status),
    protocol: Type.Optional(
      Type.Union([Type.Literal('imap'), Type.Literal('pop3')], { description: 'Only mailboxes with this protocol enabled' }),
    ),
  },
  { additionalProperties: false },
);
