import { Type } from '@sinclair/typebox';
import { Nullable, Quota, Status, Timestamp } from './common.js';
import { LoginLockout } from './login-lockout.js';

const Usage = Type.Object({ storageBytes: Type.Integer(), messages: Type.Integer() });

const ProtocolState = Type.Object({
  enabled: Type.Boolean({ description: 'Whether the protocol is switched on now (an expired switch has flipped back already)' }),
  reason: Nullable(Type.String({ description: 'Why support switched it, as given' })),
  until: Nullable(Timestamp),
  changedAt: Nullable(Timestamp),
  lastLogin: Nullable(Type.Object({ at: Timestamp, ip: Nullable(Type.String()) }, { description: 'The last successful login over this protocol' })),
});

export const QuotaState = {
  percentUsed: Type.Object(
    { storageBytes: Nullable(Type.Number()), messages: Nullable(Type.Number()) },
    { description: 'Usage as a percentage of each limit, to one decimal; null where unlimited; a limit of 0 is 100' },
  ),
  newMailRefused: Type.Boolean({
    description: 'Whether usage has reached a limit, so new mail (LMTP, APPEND, COPY, import) is refused; logins are not',
  }),
  refusedBy: Type.Array(Type.Union([Type.Literal('storageBytes'), Type.Literal('messages')]), { description: 'The limits reached' }),
};

export const LoginCheck = Type.Object(
  {
    address: Type.String(),
    canLogIn: Type.Object(
      { imap: Type.Boolean(), pop3: Type.Boolean() },
      { description: 'Whether the right password gets in now over each protocol, from a client address that is not locked out' },
    ),
    blockers: Type.Array(
      Type.Object({
        code: Type.Union(
          ['mailbox_suspended', 'domain_suspended', 'protocol_disabled', 'mailbox_locked', 'client_address_locked'].map((code) => Type.Literal(code)),
        ),
        detail: Type.String(),
      }),
      { description: 'Everything that refuses logins now, in plain words; empty when nothing does' },
    ),
    status: Status,
    domain: Type.Object({ name: Type.String(), status: Status }),
    protocols: Type.Object({ imap: ProtocolState, pop3: ProtocolState }),
    lockout: { ...LoginLockout, description: 'The lockout of the mailbox itself after failed logins (DELETE …/login-check/lockout lifts it)' },
    clientAddresses: Type.Array(
      Type.Object({
        address: Type.String({ description: 'An IPv4 address, or the /64 of an IPv6 one' }),
        locked: Type.Boolean({ description: 'Whether logins from it are refused now, to every mailbox' }),
        lockedUntil: Nullable(Timestamp),
        recentFailures: Nullable(
          Type.Integer({ description: 'Its failed logins counted towards a lockout, to any mailbox; null for keys confined to domains' }),
        ),
      }),
      { description: 'The client addresses of the failed logins below and of the last logins, each with its own lockout' },
    ),
    failedLogins: Type.Array(
      Type.Object({
        at: Timestamp,
        protocol: Type.Union([Type.Literal('imap'), Type.Literal('pop3')]),
        ip: Type.String(),
        reason: Type.Union(
          ['wrong_password', 'protocol_disabled', 'suspended', 'locked', 'tls_required'].map((reason) => Type.Literal(reason)),
          {
            description:
              'wrong_password; protocol_disabled and suspended (told only after the right password); locked (the mailbox or the client address was locked out, the password was not checked); tls_required (the client sent the address without TLS from another host)',
          },
        ),
      }),
      { description: 'The last failed logins, newest first (at most 20 are kept)' },
    ),
    quota: Type.Object(
      { limits: Quota, usage: Usage, ...QuotaState },
      { description: 'Over quota refuses new mail, never a login' },
    ),
    password: Type.Object({
      changedAt: Timestamp,
      ageDays: Type.Integer({ minimum: 0, description: 'Whole days since the password was set' }),
    }),
    checkedAt: Timestamp,
  },
  { description: 'Why a mailbox can or cannot log in over POP3 and IMAP, as it stands now' },
);
