import { DELIVERY_STATUSES } from '../core/webhooks/service.js';
import { type Group, type Input, PAGE_OPTIONS } from './command.js';
import { deliveryTable, listText, webhookTable, webhookText } from './format.js';

/** A comma-separated option as a list; left out: null (all). */
function list(input: Input, name: string): string[] | null {
  const text = input.option(name);
  if (text === undefined) return null;
  const items = text.split(',').map((item) => item.trim()).filter((item) => item !== '');
  if (items.length === 0) throw input.usageError(`--${name}: expected a comma-separated list`);
  return items;
}

export const webhooks: Group = {
  name: 'webhooks',
  commands: [
    {
      name: 'create',
      synopsis: '<url> [--events mailbox.created,mailbox.deleted,...] [--domains a.com,b.com]',
      summary: 'send mailbox events (all, or those listed) of every domain, or of those listed, to the URL; prints the signing secret, shown only this once',
      positionals: ['url'],
      options: { events: { type: 'string' }, domains: { type: 'string' } },
      prepare(input) {
        const url = input.arg('url');
        const events = list(input, 'events');
        const domains = list(input, 'domains');
        return async (services, actor) => {
          const webhook = await services.webhooks.create({ url, events, domains }, actor);
          return { json: webhook, text: webhookText(webhook) };
        };
      },
    },
    {
      name: 'list',
      synopsis: '[--limit N] [--cursor C]',
      summary: 'list the webhooks (never their secrets)',
      options: PAGE_OPTIONS,
      prepare(input) {
        const pages = input.pager();
        return async (services) => {
          const page = await pages((p) => services.webhooks.list(p));
          return { json: page, text: listText(page, webhookTable) };
        };
      },
    },
    {
      name: 'get',
      synopsis: '<id>',
      summary: 'show a webhook',
      positionals: ['id'],
      prepare(input) {
        const id = input.arg('id');
        return async (services) => {
          const webhook = await services.webhooks.get(id);
          return { json: webhook, text: webhookText(webhook) };
        };
      },
    },
    {
      name: 'deliveries',
      synopsis: '<id> [--status pending|delivered|failed] [--limit N] [--cursor C]',
      summary: 'the delivery log: events sent to the webhook, newest first, with each attempt',
      positionals: ['id'],
      options: { status: { type: 'string' }, ...PAGE_OPTIONS },
      prepare(input) {
        const id = input.arg('id');
        const status = input.choice('status', DELIVERY_STATUSES);
        const pages = input.pager();
        return async (services) => {
          const page = await pages((p) => services.webhooks.deliveries(id, { status }, p));
          return { json: page, text: listText(page, deliveryTable) };
        };
      },
    },
    {
      name: 'delete',
      synopsis: '<id>',
      summary: 'delete a webhook; events not yet delivered to it are dropped',
      positionals: ['id'],
      prepare(input) {
        const id = input.arg('id');
        return async (services, actor) => {
          await services.webhooks.delete(id, actor);
          return { text: `deleted webhook ${id}\n` };
        };
      },
    },
  ],
};
