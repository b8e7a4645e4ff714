import { Type } from '@sinclair/typebox';

const ServerEndpoint = Type.Object({
  host: Type.String(),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  socketType: Type.Union([Type.Literal('SSL'), Type.Literal('STARTTLS')], {
    description: 'SSL: TLS from the first byte (preferred); STARTTLS: plain connection upgraded before login',
  }),
});

const ProtocolSetup = Type.Object({
  enabled: Type.Boolean({ description: 'Whether this mailbox can use the protocol: allowed for it and offered by this server' }),
  servers: Type.Array(ServerEndpoint, { description: 'Where to connect, implicit TLS first' }),
  username: Type.String({ description: 'The full mailbox address' }),
  authentication: Type.Literal('password-cleartext', { description: 'The mailbox password, sent inside TLS' }),
});

const SubmissionSetup = Type.Object({
  server: ServerEndpoint,
  username: Type.String({ description: 'The full mailbox address' }),
  authentication: Type.Literal('password-cleartext', { description: 'The mailbox password, sent inside TLS' }),
});

export const ClientConfig = Type.Object(
  {
    address: Type.String(),
    domain: Type.String(),
    imap: ProtocolSetup,
    pop3: ProtocolSetup,
    submission: Type.Union([SubmissionSetup, Type.Null()], {
      description: 'The SMTP server for sending (MAILROOM_SUBMISSION_URL); null when none is configured, as Mailroom has no SMTP submission of its own',
    }),
    explanation: Type.String({ description: 'IMAP and POP3 in plain words, and what this mailbox may use, for a customer' }),
  },
  { description: 'What to type into a mail client' },
);

export const AutoconfigQuery = Type.Object({
  emailaddress: Type.String({ minLength: 3, maxLength: 320, pattern: '^[^@\\s]+@[^@\\s]+$', description: 'The address being set up' }),
});

/** A text document (XML or plist) in the given media type, for the OpenAPI document. */
export const documentOf = (type: string, description: string) => ({
  description,
  content: { [type]: { schema: Type.Unsafe<string>({ type: 'string' }) } },
});
