import { ROLES } from '../core/api-keys/service.js';
import { type Group, PAGE_OPTIONS } from './command.js';
import { apiKeyTable, apiKeyText, listText } from './format.js';

export const apiKeys: Group = {
  name: 'api-keys',
  commands: [
    {
      name: 'create',
      synopsis: '--name N --role admin|provisioner|support [--domains a.com,b.com]',
      summary: 'make an API key, confined to the domains if given; prints its token, which is shown only this once',
      options: { name: { type: 'string' }, role: { type: 'string' }, domains: { type: 'string' } },
      prepare(input) {
        const name = input.option('name');
        const role = input.choice('role', ROLES);
        if (name === undefined) throw input.usageError('missing option --name');
        if (name.length > 200) throw input.usageError('--name: at most 200 characters');
        if (role === undefined) throw input.usageError('missing option --role');
        const list = input.option('domains');
        const domains = list === undefined ? null : list.split(',').map((d) => d.trim()).filter((d) => d !== '');
        if (domains?.length === 0) throw input.usageError('--domains: expected a comma-separated list of domains');
        return async (services, actor) => {
          const key = await services.apiKeys.create({ name, role, domains }, actor);
          return { json: key, text: apiKeyText(key) };
        };
      },
    },
    {
      name: 'list',
      synopsis: '[--limit N] [--cursor C]',
      summary: 'list the active API keys (never their tokens)',
      options: PAGE_OPTIONS,
      prepare(input) {
        const pages = input.pager();
        return async (services) => {
          const page = await pages((p) => services.apiKeys.list(p));
          return { json: page, text: listText(page, apiKeyTable) };
        };
      },
    },
    {
      name: 'revoke',
      synopsis: '<id>',
      summary: 'revoke an API key at once',
      positionals: ['id'],
      prepare(input) {
        const id = input.arg('id');
        return async (services, actor) => {
          await services.apiKeys.revoke(id, actor);
          return { text: `revoked API key ${id}\n` };
        };
      },
    },
  ],
};
