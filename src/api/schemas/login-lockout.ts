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
