import type { DomainChange } from '../core/domains/service.js';
import { given, type Group, PAGE_OPTIONS, STATUSES } from './command.js';
import { domainTable, domainText, listText } from './format.js';

export const domains: Group = {
  name: 'domains',
  commands: [
    {
      name: 'create',
      synopsis:
        '<name> [--max-mailboxes N] [--max-quota-storage SIZE] [--max-quota-messages N] [--default-quota-storage SIZE] [--default-quota-messages N]',
      summary: 'add a mail domain; limits cap its mailboxes, defaults apply to new mailboxes',
      positionals: ['name'],
      options: {
        'max-mailboxes': { type: 'string' },
        'max-quota-storage': { type: 'string' },
        'max-quota-messages': { type: 'string' },
        'default-quota-storage': { type: 'string' },
        'default-quota-messages': { type: 'string' },
      },
      prepare(input) {
        const name = input.arg('name');
        const change: DomainChange = {
          limits: given({
            maxMailboxes: input.count('max-mailboxes', true),
            maxQuota: given({ storageBytes: input.size('max-quota-storage'), messages: input.count('max-quota-messages', true) }),
          }),
          defaults: {
            quota: given({ storageBytes: input.size('default-quota-storage'), messages: input.count('default-quota-messages', true) }),
          },
        };
        return async (services, actor) => {
          const { value } = await services.domains.create({ name, ...change }, actor);
          return { json: value, text: domainText(value) };
        };
      },
    },
    {
      name: 'list',
      synopsis: '[--q PREFIX] [--status active|suspended] [--limit N] [--cursor C]',
      summary: 'list domains by name, with their mailbox counts',
      options: { q: { type: 'string' }, status: { type: 'string' }, ...PAGE_OPTIONS },
      prepare(input) {
        const filter = given({ q: input.option('q'), status: input.choice('status', STATUSES) });
        const pages = input.pager();
        return async (services, actor) => {
          const page = await pages((p) => services.domains.list(filter, p, actor));
          return { json: page, text: listText(page, domainTable) };
        };
      },
    },
    {
      name: 'show',
      synopsis: '<name>',
      summary: 'show a domain',
      positionals: ['name'],
      prepare(input) {
        const name = input.arg('name');
        return async (services, actor) => {
          const { value } = await services.domains.get(name, actor);
          return { json: value, text: domainText(value) };
        };
      },
    },
    {
      name: 'delete',
      synopsis: '<name>',
      summary: 'delete a domain that has no mailboxes left',
      positionals: ['name'],
      prepare(input) {
        const name = input.arg('name');
        return async (services, actor) => {
          await services.domains.delete(name, actor);
          return { text: `deleted domain ${name}\n` };
        };
      },
    },
  ],
};
