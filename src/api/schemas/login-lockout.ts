import { Type } from '@sinclair/typebox';
import { Nullable, Timestamp } from './common.js';

export const LoginLockout = Type.Object(
  {
    locked: Type.Boolean({ description: 'Whether POP3 and IMAP logins are refused now, even with the right password' }),
    lockedUntil: Nullable(Timestamp),
    recentFailures: Type.Integer({ minimum: 0, description: 'Failed logins to the mailbox counted towards a lockout' }),
  },
  {
    description:
      'Whether too many failed logins have locked the mailbox. Client addresses are locked apart (MAILROOM_LOGIN_FAILURES_PER_IP) and are not shown here.',
  },
);

export const ClientParams = Type.Object({
  ip: Type.String({ maxLength: 64, description: 'The client address, IPv4 or IPv6 (an IPv6 address stands for its /64)' }),
});

export const ClientLockout = Type.Object(
  {
    locked: Type.Boolean({ description: 'Whether POP3 and IMAP logins from the address are refused now, to every mailbox' }),
    lockedUntil: Nullable(Timestamp),
    recentFailures: Type.Integer({ minimum: 0, description: 'Failed logins from the address counted towards a lockout' }),
  },
  { description: 'Whether too many failed logins from one client address have locked it out (MAILROOM_LOGIN_FAILURES_PER_IP).' },
);
