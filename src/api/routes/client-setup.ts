import { InvalidError } from '../../core/errors.js';
import type { Services } from '../../core/services.js';
import type { Api } from '../app.js';
import { autoconfigXml, autodiscoverErrorXml, autodiscoverXml, mobileconfigPlist, OUTLOOK_SCHEMA } from '../client-setup-formats.js';
import { ALL_ROLES, actorOf } from '../plugins/auth.js';
import { AutoconfigQuery, ClientConfig, documentOf } from '../schemas/client-setup.js';
import { errorResponses } from '../schemas/common.js';
import { MailboxParams } from '../schemas/mailboxes.js';

const tags = ['client setup'];
// An autodiscover request is a few hundred bytes; nothing bigger is read.
const AUTODISCOVER_BODY_LIMIT = 16 * 1024;
const XML_TYPES = ['text/xml', 'application/xml'];

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** The text of the first `name` element, any namespace prefix, with XML's character references resolved. */
function elementText(xml: string, name: string): string | null {
  const match = new RegExp(`<(?:[\\w.-]+:)?${name}\\s*>([^<]*)</(?:[\\w.-]+:)?${name}\\s*>`).exec(xml);
  if (!match) return null;
  return match[1]!.replace(/&(?:#x([0-9a-f]{1,6})|#(\d{1,7})|(\w+));/gi, (whole, hex, dec, named) => {
    const code = hex ? parseInt(hex, 16) : dec ? Number(dec) : null;
    if (code !== null) return code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    return ENTITIES[named] ?? whole;
  });
}

export async function clientSetupRoutes(app: Api, { services }: { services: Services }) {
  // A string, parsed by elementText: no XML parser, so no entity expansion or external DTDs.
  app.addContentTypeParser(XML_TYPES, { parseAs: 'string', bodyLimit: AUTODISCOVER_BODY_LIMIT }, (_request, body, done) =>
    done(null, body),
  );

  app.get(
    '/v1/mailboxes/:address/client-config',
    {
      config: { roles: ALL_ROLES },
      schema: {
        tags,
        summary: 'The IMAP and POP3 settings to type into a mail client, with a plain explanation for the customer',
        params: MailboxParams,
        response: { 200: ClientConfig, ...errorResponses },
      },
    },
    async (request) => services.clientSetup.forMailbox(request.params.address, actorOf(request)),
  );

  app.get(
    '/v1/mailboxes/:address/mobileconfig',
    {
      config: { roles: ALL_ROLES },
      schema: {
        tags,
        summary: 'An Apple configuration profile (iPhone, iPad, Mac Mail) for the mailbox',
        description:
          'One com.apple.mail.managed payload for IMAP, or POP3 when IMAP is off for the mailbox (409 no_protocol_enabled when both are). It holds no password: the device asks for it.',
        params: MailboxParams,
        produces: ['application/x-apple-aspen-config'],
        response: { 200: documentOf('application/x-apple-aspen-config', 'The profile, a property list'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const setup = await services.clientSetup.forMailbox(request.params.address, actorOf(request));
      const name = setup.address.replace(/[^\w@.+-]/g, '_');
      reply.type('application/x-apple-aspen-config').header('content-disposition', `attachment; filename="${name}.mobileconfig"`);
      return mobileconfigPlist(setup);
    },
  );

  for (const url of ['/.well-known/autoconfig/mail/config-v1.1.xml', '/mail/config-v1.1.xml']) {
    app.get(
      url,
      {
        config: { addressLimited: true },
        schema: {
          tags,
          summary: 'Thunderbird autoconfiguration for an address of a domain served here',
          description:
            'Unauthenticated. Answers the same for every address of an existing domain, so it tells nothing about which mailboxes exist; 404 for a domain not served here. Lists no outgoing server: Mailroom has no SMTP submission.',
          security: [],
          querystring: AutoconfigQuery,
          produces: ['application/xml'],
          response: { 200: documentOf('application/xml', 'clientConfig version 1.1'), ...errorResponses },
        },
      },
      async (request, reply) => {
        const setup = await services.clientSetup.forAddress(request.query.emailaddress);
        return reply.type('application/xml; charset=utf-8').send(autoconfigXml(setup));
      },
    );
  }

  // Outlook asks both spellings; the router is case-sensitive.
  for (const url of ['/autodiscover/autodiscover.xml', '/Autodiscover/Autodiscover.xml']) {
    app.post(
      url,
      {
        config: { addressLimited: true },
        schema: {
          tags,
          summary: 'Outlook autodiscover (plain old XML) for an address of a domain served here',
          description:
            'Unauthenticated; the body is an autodiscover Request with EMailAddress. The same answer for every address of an existing domain; 404 for a domain not served here; an autodiscover Error (600) for a request without a usable address.',
          security: [],
          consumes: XML_TYPES,
          response: {
            200: documentOf('text/xml', 'Account with IMAP and POP3 Protocol entries'),
            400: documentOf('text/xml', 'An autodiscover Error'),
            ...errorResponses,
          },
        },
      },
      async (request, reply) => {
        reply.type('text/xml; charset=utf-8');
        const body = typeof request.body === 'string' ? request.body : '';
        const schema = elementText(body, 'AcceptableResponseSchema');
        if (schema !== null && schema.trim() !== OUTLOOK_SCHEMA) {
          return reply.code(400).send(autodiscoverErrorXml(601, 'Only the Outlook response schema (2006a) is served'));
        }
        const address = elementText(body, 'EMailAddress');
        try {
          if (address === null) throw new InvalidError('invalid_address', 'No EMailAddress in the request');
          return reply.send(autodiscoverXml(await services.clientSetup.forAddress(address)));
        } catch (error) {
          if (!(error instanceof InvalidError)) throw error;
          return reply.code(400).send(autodiscoverErrorXml(600, 'The request names no valid EMailAddress'));
        }
      },
    );
  }
}
