import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { buildTestApi, PASSWORD, PUBLIC_SERVERS } from '../helpers/api.js';
import { assertProblem } from '../helpers/problem.js';
import { startServer } from '../helpers/server.js';

const READER = fileURLToPath(new URL('./client-setup-reader.py', import.meta.url));

/** The document as a mail client's parser reads it (python's xml.etree or plistlib). */
function read(kind: 'autoconfig' | 'autodiscover' | 'plist', document: string): any {
  const result = spawnSync('python3', [READER, kind], { input: document, encoding: 'utf8', timeout: 30_000 });
  if (result.status !== 0) throw new Error(`python could not read the ${kind} document: ${result.stderr}\n${document}`);
  return JSON.parse(result.stdout);
}

const api = await buildTestApi(t);
const { app, admin } = api;

const OUTLOOK_REQUEST = (inner: string) => `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    ${inner}
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>`;

/** An autodiscover POST as Outlook sends it, with `inner` in its Request (or another whole `body`). */
function discover(inner: string, { url = '/autodiscover/autodiscover.xml', body = OUTLOOK_REQUEST(inner), on = app } = {}) {
  return on.inject({ method: 'POST', url, headers: { 'content-type': 'text/xml' }, payload: body });
}

const DOMAIN = 'setup.test';
// Every character a local part may hold that XML gives a meaning to.
const QUOTED = `o'neil&sons@${DOMAIN}`;

async function setup(method: 'POST' | 'PATCH', url: string, payload: object) {
  const response = await app.inject({ method, url, payload, headers: admin });
  if (response.statusCode >= 300) throw new Error(`${method} ${url}: ${response.body}`);
}

await setup('POST', '/v1/domains', { name: DOMAIN });
await setup('POST', '/v1/mailboxes', { address: `ann@${DOMAIN}`, password: PASSWORD });
await setup('POST', '/v1/mailboxes', { address: `pop@${DOMAIN}`, password: PASSWORD, protocols: { imap: false, pop3: true } });
await setup('POST', '/v1/mailboxes', { address: `none@${DOMAIN}`, password: PASSWORD, protocols: { imap: false, pop3: false } });
await setup('POST', '/v1/mailboxes', { address: QUOTED, password: PASSWORD });

const IMAP_SERVERS = [
  { host: 'mail.example.net', port: 993, socketType: 'SSL' },
  { host: 'mail.example.net', port: 143, socketType: 'STARTTLS' },
];
const POP3_SERVERS = [
  { host: 'mail.example.net', port: 995, socketType: 'SSL' },
  { host: 'mail.example.net', port: 110, socketType: 'STARTTLS' },
];

t.test('client-config: both protocols with their servers, implicit TLS first', async (t) => {
  const response = await app.inject({ method: 'GET', url: `/v1/mailboxes/ANN@${DOMAIN}/client-config`, headers: admin });
  t.equal(response.statusCode, 200);
  const config = response.json();
  const username = `ann@${DOMAIN}`;
  t.same(config.imap, { enabled: true, servers: IMAP_SERVERS, username, authentication: 'password-cleartext' });
  t.same(config.pop3, { enabled: true, servers: POP3_SERVERS, username, authentication: 'password-cleartext' });
  t.equal(config.address, username);
  t.equal(config.domain, DOMAIN);
  t.match(config.explanation, /IMAP keeps your mail on the server/);
  t.match(config.explanation, new RegExp(`${username} can use IMAP or POP3`));
  t.equal(config.submission, null, 'no outgoing server is made up');
  t.match(config.explanation, /outgoing \(SMTP\) server your provider names/);
});

t.test('client-config marks what the mailbox may not use as disabled, and says so', async (t) => {
  const pop = (await app.inject({ method: 'GET', url: `/v1/mailboxes/pop@${DOMAIN}/client-config`, headers: admin })).json();
  t.equal(pop.imap.enabled, false);
  t.equal(pop.pop3.enabled, true);
  t.match(pop.explanation, /can use POP3 only/);
  const none = (await app.inject({ method: 'GET', url: `/v1/mailboxes/none@${DOMAIN}/client-config`, headers: admin })).json();
  t.same([none.imap.enabled, none.pop3.enabled], [false, false]);
  t.match(none.explanation, /cannot collect mail with IMAP or POP3/);

  // A change through the API shows at once.
  await setup('PATCH', `/v1/mailboxes/pop@${DOMAIN}`, { protocols: { imap: true }, status: 'suspended' });
  const changed = (await app.inject({ method: 'GET', url: `/v1/mailboxes/pop@${DOMAIN}/client-config`, headers: admin })).json();
  t.equal(changed.imap.enabled, true);
  t.match(changed.explanation, /suspended/);
  await setup('PATCH', `/v1/mailboxes/pop@${DOMAIN}`, { protocols: { imap: false }, status: 'active' });
});

t.test('client-config and mobileconfig need an API key; every role may read them; unknown mailboxes are 404', async (t) => {
  for (const path of ['client-config', 'mobileconfig']) {
    const anonymous = await app.inject({ method: 'GET', url: `/v1/mailboxes/ann@${DOMAIN}/${path}` });
    assertProblem(t, anonymous, 401, 'unauthenticated');
    const support = await app.inject({ method: 'GET', url: `/v1/mailboxes/ann@${DOMAIN}/${path}`, headers: await api.keyFor('support') });
    t.equal(support.statusCode, 200, `${path}: support may read it`);
    const missing = await app.inject({ method: 'GET', url: `/v1/mailboxes/nobody@${DOMAIN}/${path}`, headers: admin });
    assertProblem(t, missing, 404, 'mailbox_not_found');
  }
});

t.test('a server that offers only some ports advertises only those', async (t) => {
  const partial = await buildTestApi(t, { publicServers: { ...PUBLIC_SERVERS, imapPort: null, pop3Port: null, pop3sPort: null } });
  for (const request of [
    { method: 'POST' as const, url: '/v1/domains', payload: { name: DOMAIN } },
    { method: 'POST' as const, url: '/v1/mailboxes', payload: { address: `ann@${DOMAIN}`, password: PASSWORD } },
  ]) {
    t.equal((await partial.app.inject({ ...request, headers: partial.admin })).statusCode, 201);
  }
  const config = (await partial.app.inject({ method: 'GET', url: `/v1/mailboxes/ann@${DOMAIN}/client-config`, headers: partial.admin })).json();
  t.same(config.imap.servers, [IMAP_SERVERS[0]]);
  t.same([config.pop3.enabled, config.pop3.servers], [false, []], 'POP3 is not offered, so not usable');
  t.match(config.explanation, /can use IMAP only/);
  const autoconfig = await partial.app.inject({ method: 'GET', url: `/mail/config-v1.1.xml?emailaddress=ann@${DOMAIN}` });
  t.same(read('autoconfig', autoconfig.body).incoming.map((s: any) => `${s.type} ${s.port}`), ['imap 993']);
});

t.test('a configured submission server is the outgoing server everywhere', async (t) => {
  const submission = { host: 'smtp.example.net', port: 587, socketType: 'STARTTLS' as const };
  const sending = await buildTestApi(t, { publicServers: { ...PUBLIC_SERVERS, submission } });
  for (const request of [
    { method: 'POST' as const, url: '/v1/domains', payload: { name: DOMAIN } },
    { method: 'POST' as const, url: '/v1/mailboxes', payload: { address: `ann@${DOMAIN}`, password: PASSWORD } },
  ]) {
    t.equal((await sending.app.inject({ ...request, headers: sending.admin })).statusCode, 201);
  }
  const get = (url: string) => sending.app.inject({ method: 'GET', url, headers: sending.admin });
  const config = (await get(`/v1/mailboxes/ann@${DOMAIN}/client-config`)).json();
  t.same(config.submission, { server: submission, username: `ann@${DOMAIN}`, authentication: 'password-cleartext' });
  t.match(config.explanation, /SMTP server smtp.example.net on port 587/);

  const autoconfig = read('autoconfig', (await get(`/mail/config-v1.1.xml?emailaddress=ann@${DOMAIN}`)).body);
  t.same(autoconfig.outgoing, [
    { type: 'smtp', hostname: 'smtp.example.net', port: '587', socketType: 'STARTTLS', username: `ann@${DOMAIN}`, authentication: 'password-cleartext' },
  ]);
  const autodiscover = await discover(`<EMailAddress>ann@${DOMAIN}</EMailAddress>`, { on: sending.app });
  t.match(read('autodiscover', autodiscover.body).protocols[2], { Type: 'SMTP', Server: 'smtp.example.net', Port: '587', Encryption: 'TLS' });
  const profile = read('plist', (await get(`/v1/mailboxes/ann@${DOMAIN}/mobileconfig`)).body).PayloadContent[0];
  t.match(profile, {
    OutgoingMailServerHostName: 'smtp.example.net',
    OutgoingMailServerPortNumber: 587,
    OutgoingMailServerUseSSL: true,
    OutgoingMailServerUsername: `ann@${DOMAIN}`,
    OutgoingPasswordSameAsIncomingPassword: true,
  });
});

t.test('mobileconfig: an Apple profile with the IMAP account and no password', async (t) => {
  const response = await app.inject({ method: 'GET', url: `/v1/mailboxes/ann@${DOMAIN}/mobileconfig`, headers: admin });
  t.equal(response.statusCode, 200);
  t.equal(response.headers['content-type'], 'application/x-apple-aspen-config');
  t.match(response.headers['content-disposition'], `attachment; filename="ann@${DOMAIN}.mobileconfig"`);
  const profile = read('plist', response.body);
  t.equal(profile.PayloadType, 'Configuration');
  t.equal(profile.PayloadVersion, 1);
  t.match(profile.PayloadUUID, /^[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
  t.equal(profile.PayloadContent.length, 1);
  const mail = profile.PayloadContent[0];
  t.match(mail, {
    PayloadType: 'com.apple.mail.managed',
    EmailAccountType: 'EmailTypeIMAP',
    EmailAddress: `ann@${DOMAIN}`,
    IncomingMailServerHostName: 'mail.example.net',
    IncomingMailServerPortNumber: 993,
    IncomingMailServerUseSSL: true,
    IncomingMailServerUsername: `ann@${DOMAIN}`,
    IncomingMailServerAuthentication: 'EmailAuthPassword',
  });
  t.notOk(Object.keys(mail).some((key) => /Password$|^Outgoing/.test(key)), 'no password key, no outgoing server made up');
  t.notOk(response.body.includes(PASSWORD), 'the password is nowhere');
  t.not(mail.PayloadUUID, profile.PayloadUUID);
  const again = await app.inject({ method: 'GET', url: `/v1/mailboxes/ann@${DOMAIN}/mobileconfig`, headers: admin });
  t.equal(again.body, response.body, 'the same profile each time, so installing it again replaces the account');
});

t.test('mobileconfig falls back to POP3, and refuses a mailbox that may use neither', async (t) => {
  const pop = await app.inject({ method: 'GET', url: `/v1/mailboxes/pop@${DOMAIN}/mobileconfig`, headers: admin });
  t.match(read('plist', pop.body).PayloadContent[0], { EmailAccountType: 'EmailTypePOP', IncomingMailServerPortNumber: 995 });
  const none = await app.inject({ method: 'GET', url: `/v1/mailboxes/none@${DOMAIN}/mobileconfig`, headers: admin });
  assertProblem(t, none, 409, 'no_protocol_enabled');
});

t.test('values are escaped: a local part with & and an apostrophe reads back exactly', async (t) => {
  const profile = await app.inject({ method: 'GET', url: `/v1/mailboxes/${encodeURIComponent(QUOTED)}/mobileconfig`, headers: admin });
  t.equal(profile.statusCode, 200);
  t.equal(read('plist', profile.body).PayloadContent[0].IncomingMailServerUsername, QUOTED);
  t.equal(profile.headers['content-disposition'], `attachment; filename="o_neil_sons@${DOMAIN}.mobileconfig"`);
  const autoconfig = await app.inject({ method: 'GET', url: `/mail/config-v1.1.xml?emailaddress=${encodeURIComponent(QUOTED)}` });
  t.equal(read('autoconfig', autoconfig.body).incoming[0].username, QUOTED);
  const escaped = QUOTED.replace('&', '&amp;').replace("'", '&apos;');
  const autodiscover = await discover(`<EMailAddress>${escaped}</EMailAddress>`);
  t.equal(read('autodiscover', autodiscover.body).protocols[0].LoginName, QUOTED);
});

for (const path of ['/.well-known/autoconfig/mail/config-v1.1.xml', '/mail/config-v1.1.xml']) {
  t.test(`Thunderbird autoconfig at ${path}`, async (t) => {
    const response = await app.inject({ method: 'GET', url: `${path}?emailaddress=ann@${DOMAIN}` });
    t.equal(response.statusCode, 200);
    t.equal(response.headers['content-type'], 'application/xml; charset=utf-8');
    const config = read('autoconfig', response.body);
    t.same(
      { ...config, incoming: config.incoming.map((s: any) => [s.type, s.hostname, s.port, s.socketType, s.username, s.authentication]) },
      {
        version: '1.1',
        id: DOMAIN,
        domains: [DOMAIN],
        incoming: [
          ['imap', 'mail.example.net', '993', 'SSL', `ann@${DOMAIN}`, 'password-cleartext'],
          ['imap', 'mail.example.net', '143', 'STARTTLS', `ann@${DOMAIN}`, 'password-cleartext'],
          ['pop3', 'mail.example.net', '995', 'SSL', `ann@${DOMAIN}`, 'password-cleartext'],
          ['pop3', 'mail.example.net', '110', 'STARTTLS', `ann@${DOMAIN}`, 'password-cleartext'],
        ],
        outgoing: [],
      },
    );
    t.match(response.body, /<!-- Mailroom serves IMAP and POP3 only and has no SMTP submission/);
  });
}

t.test('autoconfig answers only for domains served here', async (t) => {
  const unknown = await app.inject({ method: 'GET', url: '/mail/config-v1.1.xml?emailaddress=ann@elsewhere.test' });
  assertProblem(t, unknown, 404, 'domain_not_found');
  const unicode = await app.inject({ method: 'GET', url: `/mail/config-v1.1.xml?emailaddress=${encodeURIComponent('ann@bücher.test')}` });
  assertProblem(t, unicode, 404, 'domain_not_found');
});

t.test('autoconfig refuses a missing or garbled address', async (t) => {
  assertProblem(t, await app.inject({ method: 'GET', url: '/mail/config-v1.1.xml' }), 400, 'validation_failed');
  for (const garbled of ['nonsense', `two@@${DOMAIN}`, `sp ace@${DOMAIN}`, '@', 'x'.repeat(400) + `@${DOMAIN}`]) {
    const response = await app.inject({ method: 'GET', url: `/mail/config-v1.1.xml?emailaddress=${encodeURIComponent(garbled)}` });
    assertProblem(t, response, 400, 'validation_failed');
  }
  // Shaped like an address, but no valid one: refused as the rest of the API refuses it.
  for (const invalid of ['ann@setup_test', `a..b@${DOMAIN}`]) {
    const response = await app.inject({ method: 'GET', url: `/mail/config-v1.1.xml?emailaddress=${encodeURIComponent(invalid)}` });
    assertProblem(t, response, 422, 'invalid_address');
  }
});

/** The answer with the asked address taken out: what would tell one address from another. */
const withoutAddress = (body: string, address: string) => body.replaceAll(address, '<address>');

t.test('autoconfig and autodiscover tell nothing about which mailboxes exist', async (t) => {
  // pop@ has IMAP off and none@ has both off: a leak of the mailbox's settings would show.
  for (const existing of [`ann@${DOMAIN}`, `pop@${DOMAIN}`, `none@${DOMAIN}`]) {
    const missing = `nobody-${existing}`;
    const autoconfig = (address: string) => app.inject({ method: 'GET', url: `/mail/config-v1.1.xml?emailaddress=${address}` });
    const [a, b] = [await autoconfig(existing), await autoconfig(missing)];
    t.equal(a.statusCode, b.statusCode);
    t.equal(withoutAddress(a.body, existing), withoutAddress(b.body, missing), `autoconfig: ${existing} reads as a missing one`);
    t.equal(a.headers['content-type'], b.headers['content-type']);
    const autodiscover = (address: string) => discover(`<EMailAddress>${address}</EMailAddress>`);
    const [c, d] = [await autodiscover(existing), await autodiscover(missing)];
    t.equal(c.statusCode, d.statusCode);
    t.equal(withoutAddress(c.body, existing), withoutAddress(d.body, missing), `autodiscover: ${existing} reads as a missing one`);
  }
});

t.test('Outlook autodiscover answers IMAP and POP3 Protocol entries, at both spellings', async (t) => {
  for (const url of ['/autodiscover/autodiscover.xml', '/Autodiscover/Autodiscover.xml']) {
    const response = await discover(`<EMailAddress>Ann@${DOMAIN}</EMailAddress>`, { url });
    t.equal(response.statusCode, 200, url);
    t.equal(response.headers['content-type'], 'text/xml; charset=utf-8');
    const common = { Server: 'mail.example.net', LoginName: `ann@${DOMAIN}`, DomainRequired: 'off', SPA: 'off', SSL: 'on', AuthRequired: 'on' };
    t.same(read('autodiscover', response.body), {
      accountType: 'email',
      action: 'settings',
      protocols: [
        { Type: 'IMAP', Port: '993', Encryption: 'SSL', ...common },
        { Type: 'POP3', Port: '995', Encryption: 'SSL', ...common },
      ],
    });
  }
});

t.test('autodiscover: unknown domain 404, unreadable request an autodiscover Error', async (t) => {
  assertProblem(t, await discover('<EMailAddress>ann@elsewhere.test</EMailAddress>'), 404, 'domain_not_found');
  for (const [label, response] of [
    ['no EMailAddress', await discover('')],
    ['a garbled address', await discover('<EMailAddress>not an address</EMailAddress>')],
    ['an empty body', await app.inject({ method: 'POST', url: '/autodiscover/autodiscover.xml', headers: { 'content-type': 'text/xml' } })],
    ['a JSON body', await app.inject({ method: 'POST', url: '/autodiscover/autodiscover.xml', payload: { EMailAddress: `ann@${DOMAIN}` } })],
  ] as const) {
    t.equal(response.statusCode, 400, label);
    t.equal(response.headers['content-type'], 'text/xml; charset=utf-8', label);
    t.same(read('autodiscover', response.body), { errorCode: '600', message: 'The request names no valid EMailAddress' }, label);
  }
  const mobile = await discover('', {
    body: `<Autodiscover><Request><EMailAddress>ann@${DOMAIN}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006</AcceptableResponseSchema></Request></Autodiscover>`,
  });
  t.equal(mobile.statusCode, 400);
  t.equal(read('autodiscover', mobile.body).errorCode, '601', 'ActiveSync is not served');
  // No XML parser reads the body, so an entity bomb is just text.
  const bomb = await discover('', {
    body: `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "${'x'.repeat(100)}"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><Autodiscover><Request><EMailAddress>&b;@${DOMAIN}</EMailAddress></Request></Autodiscover>`,
  });
  t.equal(read('autodiscover', bomb.body).errorCode, '600');
  const huge = await discover('', { body: `<EMailAddress>ann@${DOMAIN}</EMailAddress>${' '.repeat(64 * 1024)}` });
  assertProblem(t, huge, 413, 'body_too_large');
});

t.test('autoconfig and autodiscover count against the client address limit, so domains cannot be probed fast', async (t) => {
  const limited = await buildTestApi(t, { limits: { perIp: 2, perKey: 0, maxEventLoopDelayMs: 0 } });
  const autoconfig = () => limited.app.inject({ method: 'GET', url: '/mail/config-v1.1.xml?emailaddress=ann@probe.test' });
  t.equal((await autoconfig()).statusCode, 404);
  t.equal((await discover('<EMailAddress>ann@probe.test</EMailAddress>', { on: limited.app })).statusCode, 404);
  assertProblem(t, await autoconfig(), 429, 'rate_limited');
  assertProblem(t, await discover('<EMailAddress>ann@probe.test</EMailAddress>', { on: limited.app }), 429, 'rate_limited');
});

t.test('`mailroom serve` tells the public name and ports it is configured with, not its bind address', async (t) => {
  const token = 'client-setup-admin-token-0123';
  // The mail listeners are off here; a proxy in front is what clients dial.
  const server = await startServer(t, { MAILROOM_ADMIN_TOKEN: token, MAILROOM_PUBLIC_HOST: 'imap.hosting.example', MAILROOM_PUBLIC_IMAPS_PORT: '993' });
  const created = await fetch(`${server.url}/v1/domains`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: DOMAIN }),
  });
  t.equal(created.status, 201);
  const response = await fetch(`${server.url}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=ann@${DOMAIN}`);
  t.equal(response.status, 200);
  t.same(
    read('autoconfig', await response.text()).incoming.map((s: any) => `${s.type} ${s.hostname}:${s.port} ${s.socketType}`),
    ['imap imap.hosting.example:993 SSL'],
  );
});
