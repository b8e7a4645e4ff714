import type { Pop3DeleteMode } from '../core/limits.js';
import type { MailboxChange } from '../core/mailboxes/service.js';
import { type Command, given, type Group, type Input, type Job, PAGE_OPTIONS, STATUSES } from './command.js';
import { batchText, listText, loginCheckText, mailboxTable, mailboxText, quotaPreviewText } from './format.js';

const PROTOCOLS = ['imap', 'pop3'] as const;
const POP3_DELETE_MODES: readonly Pop3DeleteMode[] = ['remove', 'hide', 'trash'];
const PASSWORD_OPTIONS = { 'password-stdin': { type: 'boolean' }, 'password-hash': { type: 'string' } } as const;

/** A command that applies one change to a mailbox and prints the result. */
function update(
  name: string,
  synopsis: string,
  summary: string,
  change: (input: Input) => MailboxChange,
  extra: Pick<Command, 'options' | 'positionals'> = {},
): Command {
  return {
    name,
    synopsis: `<address>${synopsis}`,
    summary,
    positionals: ['address'],
    ...extra,
    prepare(input): Job {
      const address = input.arg('address');
      const patch = change(input);
      return async (services, actor) => {
        const { value } = await services.mailboxes.update(address, patch, actor);
        return { json: value, text: mailboxText(value) };
      };
    },
  };
}

/** Without --reason and --until a plain switch, which forgets an earlier reason and end. */
function protocol(input: Input, enabled: boolean): MailboxChange {
  const which = input.arg('protocol');
  if (!(PROTOCOLS as readonly string[]).includes(which)) throw input.usageError(`expected imap or pop3, got '${which}'`);
  const note = given({ reason: input.option('reason'), until: input.time('until') });
  return { protocols: { [which]: Object.keys(note).length === 0 ? enabled : { enabled, ...note } } };
}

const SWITCH_OPTIONS = { positionals: ['address', 'protocol'], options: { reason: { type: 'string' }, until: { type: 'string' } } } as const;

export const mailboxes: Group = {
  name: 'mailboxes',
  commands: [
    {
      name: 'create',
      synopsis:
        '<address> (--password-stdin | --password-hash HASH) [--display-name X] [--quota-storage SIZE] [--quota-messages N] [--no-imap] [--no-pop3] [--pop3-delete-mode remove|hide|trash]',
      summary: 'add a mailbox; what is left out comes from its domain’s defaults',
      positionals: ['address'],
      options: {
        ...PASSWORD_OPTIONS,
        'display-name': { type: 'string' },
        'quota-storage': { type: 'string' },
        'quota-messages': { type: 'string' },
        'no-imap': { type: 'boolean' },
        'no-pop3': { type: 'boolean' },
        'pop3-delete-mode': { type: 'string' },
      },
      async prepare(input) {
        const address = input.arg('address');
        const change: MailboxChange = given({
          displayName: input.option('display-name'),
          quota: given({ storageBytes: input.size('quota-storage'), messages: input.count('quota-messages', true) }),
          protocols: given({ imap: input.flag('no-imap') ? false : undefined, pop3: input.flag('no-pop3') ? false : undefined }),
          pop3DeleteMode: input.choice('pop3-delete-mode', POP3_DELETE_MODES),
        });
        const password = await input.password();
        return async (services, actor) => {
          const { value } = await services.mailboxes.create({ address, ...change, ...password }, actor);
          return { json: value, text: mailboxText(value) };
        };
      },
    },
    {
      name: 'list',
      synopsis: '[--domain D] [--q PREFIX] [--status active|suspended] [--protocol imap|pop3] [--limit N] [--cursor C]',
      summary: 'list mailboxes by address; --protocol lists those with it enabled',
      options: { domain: { type: 'string' }, q: { type: 'string' }, status: { type: 'string' }, protocol: { type: 'string' }, ...PAGE_OPTIONS },
      prepare(input) {
        const filter = given({
          domain: input.option('domain'),
          q: input.option('q'),
          status: input.choice('status', STATUSES),
          protocol: input.choice('protocol', PROTOCOLS),
        });
        const pages = input.pager();
        return async (services, actor) => {
          const page = await pages((p) => services.mailboxes.list(filter, p, actor));
          return { json: page, text: listText(page, mailboxTable) };
        };
      },
    },
    {
      name: 'show',
      synopsis: '<address>',
      summary: 'show a mailbox, its quota and usage',
      positionals: ['address'],
      prepare(input) {
        const address = input.arg('address');
        return async (services, actor) => {
          const { value } = await services.mailboxes.get(address, actor);
          return { json: value, text: mailboxText(value) };
        };
      },
    },
    {
      name: 'set-password',
      synopsis: '<address> (--password-stdin | --password-hash HASH)',
      summary: 'set a new password (first line of stdin) or import a hash; takes effect at once',
      positionals: ['address'],
      options: PASSWORD_OPTIONS,
      async prepare(input) {
        const address = input.arg('address');
        const password = await input.password();
        return async (services, actor) => {
          await services.mailboxes.setPassword(address, password, actor);
          return { text: `password set for ${address}\n` };
        };
      },
    },
    update(
      'set-quota',
      ' [--storage SIZE|unlimited] [--messages N|unlimited]',
      'change the quota; a value left out stays as it is',
      (input) => {
        const quota = given({ storageBytes: input.size('storage'), messages: input.count('messages', true) });
        if (Object.keys(quota).length === 0) throw input.usageError('give --storage, --messages or both');
        return { quota };
      },
      { options: { storage: { type: 'string' }, messages: { type: 'string' } } },
    ),
    update(
      'enable',
      ' imap|pop3 [--reason TEXT] [--until TIME]',
      'allow the mailbox to use IMAP or POP3; with --until, only until then',
      (input) => protocol(input, true),
      SWITCH_OPTIONS,
    ),
    update(
      'disable',
      ' imap|pop3 [--reason TEXT] [--until TIME]',
      'stop IMAP or POP3 for the mailbox at once, saying why; with --until, it comes back by itself then',
      (input) => protocol(input, false),
      SWITCH_OPTIONS,
    ),
    update('suspend', '', 'refuse logins to the mailbox until it is unsuspended', () => ({ status: 'suspended' })),
    update('unsuspend', '', 'make a suspended mailbox active again', () => ({ status: 'active' })),
    {
      name: 'login-check',
      synopsis: '<address>',
      summary: "why the mailbox can or cannot log in: status, protocols, lockouts, the last failed logins, quota, password age",
      positionals: ['address'],
      prepare(input) {
        const address = input.arg('address');
        return async (services, actor) => {
          const check = await services.loginCheck.check(address, actor);
          return { json: check, text: loginCheckText(check) };
        };
      },
    },
    {
      name: 'quota-preview',
      synopsis: '<address> [--storage SIZE|unlimited] [--messages N|unlimited]',
      summary: 'what a quota would mean (usage, whether new mail is refused, whether the domain allows it); changes nothing',
      positionals: ['address'],
      options: { storage: { type: 'string' }, messages: { type: 'string' } },
      prepare(input) {
        const address = input.arg('address');
        const quota = given({ storageBytes: input.size('storage'), messages: input.count('messages', true) });
        if (Object.keys(quota).length === 0) throw input.usageError('give --storage, --messages or both');
        return async (services, actor) => {
          const { rejection, ...preview } = await services.quotaPreview.preview(address, quota, actor);
          // A refusal in the shape the CLI prints refusals in.
          const refusal = rejection && { code: rejection.code, message: rejection.message, ...rejection.details };
          return { json: { ...preview, rejection: refusal }, text: quotaPreviewText({ ...preview, rejection }) };
        };
      },
    },
    {
      name: 'unlock',
      synopsis: '<address>',
      summary: 'lift a lockout after too many failed logins, so the right password works again',
      positionals: ['address'],
      prepare(input) {
        const address = input.arg('address');
        return async (services, actor) => {
          await services.loginThrottle.clear(address, actor);
          return { text: `lifted the login lockout of ${address}\n` };
        };
      },
    },
    {
      name: 'batch',
      synopsis: '<file.json|-> [--dry-run] [--atomic]',
      summary:
        'create, change and delete up to 1,000 mailboxes as POST /v1/mailboxes:batch does: the file (- for stdin) holds {"items": [...]} or the array of items; --dry-run changes nothing, --atomic all or nothing',
      positionals: ['file'],
      options: { 'dry-run': { type: 'boolean' }, atomic: { type: 'boolean' } },
      async prepare(input) {
        const text = await input.file('file');
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch (error) {
          throw input.usageError(`<file>: not JSON: ${(error as Error).message}`);
        }
        const items = Array.isArray(parsed) ? parsed : (parsed as { items?: unknown } | null)?.items;
        if (!Array.isArray(items) || items.length === 0) {
          throw input.usageError('<file>: expected {"items": [...]} or an array of operations, at least one');
        }
        const options = { dryRun: input.flag('dry-run'), atomic: input.flag('atomic') };
        return async (services, actor) => {
          // The API's own item checks and results; loaded only here, as the rest of the CLI needs no schemas.
          const { runMailboxBatch } = await import('../api/mailbox-batch.js');
          const answer = await runMailboxBatch(services, items, options, actor);
          return { json: answer, text: batchText(answer, options.dryRun), failed: answer.counts.failed > 0 };
        };
      },
    },
    {
      name: 'delete',
      synopsis: '<address>',
      summary: 'delete a mailbox and all its mail',
      positionals: ['address'],
      prepare(input) {
        const address = input.arg('address');
        return async (services, actor) => {
          await services.mailboxes.delete(address, actor);
          return { text: `deleted mailbox ${address}\n` };
        };
      },
    },
  ],
};
