import { createHash } from 'node:crypto';
import { type ClientSetup, preferredIncoming, type ServerEndpoint } from '../core/client-setup/service.js';

const PROTOCOLS = ['imap', 'pop3'] as const;

/** Text for an XML element or attribute; characters XML 1.0 cannot hold at all are dropped. */
export function escapeXml(value: string | number): string {
  return String(value)
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** Each usable protocol with its servers (at least one), IMAP first: the order clients take as preference. */
function usable(setup: ClientSetup) {
  return PROTOCOLS.filter((protocol) => setup[protocol].enabled).map((protocol) => ({ protocol, ...setup[protocol] }));
}

const NO_SUBMISSION =
  'Mailroom serves IMAP and POP3 only and has no SMTP submission service, and none is configured (MAILROOM_SUBMISSION_URL), so no outgoing server is given here: set the one your provider names by hand.';

function thunderbirdServer(element: string, type: string, server: ServerEndpoint, username: string, authentication: string): string {
  return `    <${element} type="${type}">
      <hostname>${escapeXml(server.host)}</hostname>
      <port>${server.port}</port>
      <socketType>${server.socketType}</socketType>
      <username>${escapeXml(username)}</username>
      <authentication>${authentication}</authentication>
    </${element}>
`;
}

/** Thunderbird autoconfig, clientConfig version 1.1. */
export function autoconfigXml(setup: ClientSetup): string {
  const domain = escapeXml(setup.domain);
  const incoming = usable(setup).flatMap(({ protocol, servers, username, authentication }) =>
    servers.map((server) => thunderbirdServer('incomingServer', protocol, server, username, authentication)),
  );
  const { submission } = setup;
  const outgoing = submission
    ? thunderbirdServer('outgoingServer', 'smtp', submission.server, submission.username, submission.authentication)
    : `    <!-- ${NO_SUBMISSION} -->\n`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="${domain}">
    <domain>${domain}</domain>
    <displayName>${domain}</displayName>
    <displayShortName>${domain}</displayShortName>
${incoming.join('')}${outgoing}  </emailProvider>
</clientConfig>
`;
}

const AUTODISCOVER = 'http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006';
export const OUTLOOK_SCHEMA = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a';

function outlookProtocol(type: string, server: ServerEndpoint, username: string): string {
  return `      <Protocol>
        <Type>${type}</Type>
        <Server>${escapeXml(server.host)}</Server>
        <Port>${server.port}</Port>
        <LoginName>${escapeXml(username)}</LoginName>
        <DomainRequired>off</DomainRequired>
        <SPA>off</SPA>
        <SSL>on</SSL>
        <Encryption>${server.socketType === 'SSL' ? 'SSL' : 'TLS'}</Encryption>
        <AuthRequired>on</AuthRequired>
      </Protocol>
`;
}

/** Outlook's plain-old-XML autodiscover answer: one Protocol per usable protocol, its preferred server. */
export function autodiscoverXml(setup: ClientSetup): string {
  const protocols = usable(setup).map(({ protocol, servers, username }) =>
    outlookProtocol(protocol === 'imap' ? 'IMAP' : 'POP3', servers[0]!, username),
  );
  const { submission } = setup;
  const outgoing = submission ? outlookProtocol('SMTP', submission.server, submission.username) : '';
  const note = submission ? '' : `    <!-- ${NO_SUBMISSION} -->\n`;
  return `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="${AUTODISCOVER}">
  <Response xmlns="${OUTLOOK_SCHEMA}">
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
${protocols.join('')}${outgoing}    </Account>
${note}  </Response>
</Autodiscover>
`;
}

/** An autodiscover error: 600 for a request it cannot read, 601 for a response schema it does not give. */
export function autodiscoverErrorXml(code: 600 | 601, message: string): string {
  return `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="${AUTODISCOVER}">
  <Response>
    <Error>
      <ErrorCode>${code}</ErrorCode>
      <Message>${escapeXml(message)}</Message>
      <DebugData />
    </Error>
  </Response>
</Autodiscover>
`;
}

/**
 * The same UUID for the same address and purpose, so a downloaded profile installed again
 * replaces the old one instead of adding a second account.
 */
function stableUuid(address: string, purpose: string): string {
  const hex = createHash('sha256').update(`${purpose}\0${address}`).digest('hex');
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`.toUpperCase();
}

/** An Apple configuration profile with one com.apple.mail.managed payload; the device asks for the password. */
export function mobileconfigPlist(setup: ClientSetup): string {
  const { protocol, server } = preferredIncoming(setup);
  const { submission } = setup;
  const outgoing = submission
    ? `
      <key>OutgoingMailServerAuthentication</key>
      <string>EmailAuthPassword</string>
      <key>OutgoingMailServerHostName</key>
      <string>${escapeXml(submission.server.host)}</string>
      <key>OutgoingMailServerPortNumber</key>
      <integer>${submission.server.port}</integer>
      <key>OutgoingMailServerUseSSL</key>
      <true/>
      <key>OutgoingMailServerUsername</key>
      <string>${escapeXml(submission.username)}</string>
      <key>OutgoingPasswordSameAsIncomingPassword</key>
      <true/>`
    : '';
  const description = submission
    ? `Mail for ${setup.address}.`
    : `Receives mail for ${setup.address}. Set the outgoing (SMTP) server your provider names by hand.`;
  const address = escapeXml(setup.address);
  const id = createHash('sha256').update(setup.address).digest('hex').slice(0, 16);
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>PayloadContent</key>
  <array>
    <dict>
      <key>EmailAccountDescription</key>
      <string>${address}</string>
      <key>EmailAccountType</key>
      <string>${protocol === 'imap' ? 'EmailTypeIMAP' : 'EmailTypePOP'}</string>
      <key>EmailAddress</key>
      <string>${address}</string>
      <key>IncomingMailServerAuthentication</key>
      <string>EmailAuthPassword</string>
      <key>IncomingMailServerHostName</key>
      <string>${escapeXml(server.host)}</string>
      <key>IncomingMailServerPortNumber</key>
      <integer>${server.port}</integer>
      <key>IncomingMailServerUseSSL</key>
      <true/>
      <key>IncomingMailServerUsername</key>
      <string>${address}</string>${outgoing}
      <key>PayloadDescription</key>
      <string>${escapeXml(description)}</string>
      <key>PayloadDisplayName</key>
      <string>${address}</string>
      <key>PayloadIdentifier</key>
      <string>mailroom.${id}.mail</string>
      <key>PayloadType</key>
      <string>com.apple.mail.managed</string>
      <key>PayloadUUID</key>
      <string>${stableUuid(setup.address, 'mail')}</string>
      <key>PayloadVersion</key>
      <integer>1</integer>
    </dict>
  </array>
  <key>PayloadDisplayName</key>
  <string>${escapeXml(`Mail settings for ${setup.address}`)}</string>
  <key>PayloadIdentifier</key>
  <string>mailroom.${id}</string>
  <key>PayloadRemovalDisallowed</key>
  <false/>
  <key>PayloadType</key>
  <string>Configuration</string>
  <key>PayloadUUID</key>
  <string>${stableUuid(setup.address, 'profile')}</string>
  <key>PayloadVersion</key>
  <integer>1</integer>
</dict>
</plist>
`;
}
