import type { PublicServers } from '../../config.js';
import type { Database } from '../../db/client.js';
import type { Actor } from '../actor.js';
import { normalizeAddress } from '../addresses.js';
import { findDomain } from '../domains/service.js';
import { ConflictError } from '../errors.js';
import type { MailboxService } from '../mailboxes/service.js';

/** SSL: TLS from the first byte (RFC 8314, preferred); STARTTLS: upgraded after connecting. */
export type SocketType = 'SSL' | 'STARTTLS';

export interface ServerEndpoint {
  host: string;
  port: number;
  socketType: SocketType;
}

export interface ProtocolSetup {
  /** Whether this mailbox can use the protocol: allowed for it and offered by this server. */
  enabled: boolean;
  /** Where to connect, implicit TLS first. */
  servers: ServerEndpoint[];
  username: string;
  /** Thunderbird's name for it: a plain password, always inside TLS. */
  authentication: 'password-cleartext';
}

/** Sending goes through the hosting's own SMTP server, with the same login. */
export interface SubmissionSetup {
  server: ServerEndpoint;
  username: string;
  authentication: 'password-cleartext';
}

export interface ClientSetup {
  address: string;
  domain: string;
  imap: ProtocolSetup;
  pop3: ProtocolSetup;
  /** Null when none is configured: Mailroom itself has no SMTP submission. */
  submission: SubmissionSetup | null;
  /** Plain words for support staff to paste to a customer. */
  explanation: string;
}

// Only reads domains, for the unauthenticated autoconfig answers; never audited.
const PUBLIC_LOOKUP: Actor = { id: 'client-setup', name: 'mail client setup', domains: null };

const ABOUT_PROTOCOLS =
  'IMAP keeps your mail on the server and in sync on every device: folders, read and deleted messages look the same everywhere. ' +
  'POP3 downloads the Inbox to one device; other folders are not seen, and mail removed there may vanish from the server ' +
  '(keep "leave a copy on the server" switched on to avoid this). Choose IMAP unless you read mail on a single device.';

function endpoints(host: string, implicitTls: number | null, startTls: number | null): ServerEndpoint[] {
  return [
    ...(implicitTls === null ? [] : [{ host, port: implicitTls, socketType: 'SSL' as const }]),
    ...(startTls === null ? [] : [{ host, port: startTls, socketType: 'STARTTLS' as const }]),
  ];
}

function explain(setup: Omit<ClientSetup, 'explanation'>, suspended: boolean): string {
  const usable = (['imap', 'pop3'] as const).filter((protocol) => setup[protocol].enabled).map((p) => p.toUpperCase());
  const access =
    usable.length === 0
      ? `${setup.address} cannot collect mail with IMAP or POP3 at the moment.`
      : usable.length === 1
        ? `${setup.address} can use ${usable[0]} only.`
        : `${setup.address} can use IMAP or POP3.`;
  const login = `Log in with the full address ${setup.address} and its password; the connection is always encrypted (SSL/TLS or STARTTLS).`;
  const sending = setup.submission
    ? `To send mail, use the SMTP server ${setup.submission.server.host} on port ${setup.submission.server.port} with the same login.`
    : 'Sending mail goes through the outgoing (SMTP) server your provider names, set by hand.';
  const parts = [ABOUT_PROTOCOLS, access, login, sending];
  if (suspended) parts.push('The mailbox is suspended: logins are refused until it is reactivated.');
  return parts.join(' ');
}

/** The one server a single-account profile names: IMAP where the mailbox may use it, else POP3. */
export function preferredIncoming(setup: ClientSetup): { protocol: 'imap' | 'pop3'; server: ServerEndpoint } {
  const protocol = setup.imap.enabled ? 'imap' : setup.pop3.enabled ? 'pop3' : null;
  if (protocol === null) {
    throw new ConflictError('no_protocol_enabled', `${setup.address} may use neither IMAP nor POP3, so no mail client can be set up`);
  }
  return { protocol, server: setup[protocol].servers[0]! };
}

/** What a mail client needs to connect; knows nothing of the formats each client reads it in. */
export function createClientSetupService(db: Database, mailboxes: MailboxService, servers: PublicServers) {
  const imapServers = endpoints(servers.host, servers.imapsPort, servers.imapPort);
  const pop3Servers = endpoints(servers.host, servers.pop3sPort, servers.pop3Port);

  function build(address: string, domain: string, allowed: { imap: boolean; pop3: boolean }, suspended: boolean): ClientSetup {
    const protocol = (enabled: boolean, list: ServerEndpoint[]): ProtocolSetup => ({
      enabled: enabled && list.length > 0,
      servers: list,
      username: address,
      authentication: 'password-cleartext',
    });
    const setup = {
      address,
      domain,
      imap: protocol(allowed.imap, imapServers),
      pop3: protocol(allowed.pop3, pop3Servers),
      submission: servers.submission && { server: servers.submission, username: address, authentication: 'password-cleartext' as const },
    };
    return { ...setup, explanation: explain(setup, suspended) };
  }

  return {
    /** The settings of one mailbox, with the protocols it may not use marked disabled. */
    async forMailbox(address: string, actor: Actor): Promise<ClientSetup> {
      const { value } = await mailboxes.get(address, actor);
      return build(value.address, value.domain, value.protocols, value.status === 'suspended');
    },

    /**
     * The settings for any address of an existing domain, for unauthenticated autoconfiguration.
     * It never looks at the mailbox, so it cannot tell which addresses exist.
     */
    async forAddress(input: string): Promise<ClientSetup> {
      const { address, domain } = normalizeAddress(input);
      await findDomain(db, PUBLIC_LOOKUP, domain);
      return build(address, domain, { imap: true, pop3: true }, false);
    },
  };
}

export type ClientSetupService = ReturnType<typeof createClientSetupService>;
