import { Type } from '@sinclair/typebox';
import { Timestamp } from './common.js';

export const MailSession = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    protocol: Type.Union([Type.Literal('imap'), Type.Literal('pop3')]),
    remoteIp: Type.String(),
    tls: Type.Boolean({ description: 'Whether the session runs over TLS (STARTTLS/STLS or the implicit-TLS port)' }),
    since: Timestamp,
  },
  { description: 'A live POP3 or IMAP session, on any gateway process' },
);

export const MailSessionList = Type.Object({ items: Type.Array(MailSession) });
