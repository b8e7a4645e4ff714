// The `mailroom` CLI as a user runs it: a child process on a real database (Postgres when the
// suite runs with DATABASE_URL, otherwise embedded in a data dir of its own).
import { userInfo } from 'node:os';
import { Readable } from 'node:stream';
import bcrypt from 'bcryptjs';
import { eq } from 'drizzle-orm';
import t, { type Test } from 'tap';
import { parseChoice, parseCount, parseSize, readFirstLine } from '../src/cli/values.js';
import { verifyPassword } from '../src/core/auth/passwords.js';
import { accounts } from '../src/db/schema/index.js';
import { type CliRun, freshCli } from './helpers/cli.js';

// Every command is a process of its own (with PGlite start-up in embedded mode): some 25 of them
// outlast the suite's default per-file timeout on a busy two-core machine.
t.setTimeout(600_000);

const PASSWORD = 'Correct horse battery 7';
const NEW_PASSWORD = 'another long passphrase 8';
const WEAK_PASSWORD = 'Weakpw1';
const ACTOR = { id: 'cli', name: `cli:${userInfo().username}` };
const ACTOR_ALL = { id: 'test', name: 'test', domains: null };
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** Exit status 0 with nothing on stderr; the parsed JSON of stdout. */
function ok(t: Test, run: CliRun, what: string): any {
  t.equal(run.code, 0, `${what} exits 0 (stderr: ${run.stderr})`);
  t.equal(run.stderr, '', `${what} prints nothing on stderr`);
  return run.stdout === '' ? undefined : JSON.parse(run.stdout);
}

/** Exit status 1 with the error code as one JSON line on stderr; the parsed problem. */
function refused(t: Test, run: CliRun, code: string): any {
  t.equal(run.code, 1, `${code}: exits 1`);
  t.equal(run.stdout, '', `${code}: prints nothing on stdout`);
  t.equal(run.stderr.trimEnd().split('\n').length, 1, `${code}: one line on stderr`);
  const problem = JSON.parse(run.stderr);
  t.equal(problem.code, code);
  t.type(problem.message, 'string');
  return problem;
}

t.test('sizes, counts and choices as typed on the command line', async (t) => {
  const sizes: [string, number | null][] = [
    ['0', 0],
    ['1048576', MiB],
    ['500K', 500 * 1024],
    ['500k', 500 * 1024],
    ['20M', 20 * MiB],
    ['20MB', 20 * MiB],
    ['20MiB', 20 * MiB],
    ['1G', GiB],
    ['1.5g', 1.5 * GiB],
    ['2T', 2 * 1024 ** 4],
    ['512B', 512],
    ['unlimited', null],
    ['Unlimited', null],
  ];
  for (const [text, bytes] of sizes) t.equal(parseSize(text), bytes, text);
  for (const text of ['', 'M', '1.5', '-1', '1X', '1 G G', '10P', '99999999999T', 'lots']) {
    t.throws(() => parseSize(text), { message: /expected bytes or a size like 500K/ }, JSON.stringify(text));
  }
  t.equal(parseCount('0', false), 0);
  t.equal(parseCount('2147483647', false), 2147483647);
  t.equal(parseCount('unlimited', true), null);
  for (const text of ['unlimited', '-1', '1.0', '2147483648', '']) t.throws(() => parseCount(text, false), JSON.stringify(text));
  t.equal(parseChoice('trash', ['remove', 'hide', 'trash']), 'trash');
  t.throws(() => parseChoice('Trash', ['remove', 'hide', 'trash']), { message: "expected remove, hide, trash, got 'Trash'" });
});

t.test('the first line of stdin, without its line ending', async (t) => {
  t.equal(await readFirstLine(Readable.from(['pass', 'word\r\nsecond line\n'])), 'password');
  t.equal(await readFirstLine(Readable.from(['no newline at all'])), 'no newline at all');
  t.equal(await readFirstLine(Readable.from([])), '');
  t.equal(await readFirstLine(Readable.from([' spaces kept \n'])), ' spaces kept ', 'the core judges surrounding spaces');
});

t.test('usage and configuration mistakes exit 2 with one line before any database work', async (t) => {
  const cli = await freshCli(t);
  const cases: { args: string[]; error: RegExp; stdin?: string; env?: Record<string, string>; usage?: RegExp }[] = [
    { args: [], error: /^mailroom: no command given$/, usage: /mailboxes set-password <address>/ },
    { args: ['frobnicate'], error: /^mailroom: unknown command 'frobnicate'$/, usage: /domains create <name>/ },
    { args: ['domains'], error: /^mailroom: domains: missing command$/, usage: /domains delete <name>/ },
    { args: ['domains', 'list', '--bogus'], error: /^mailroom: unknown option '--bogus'$/, usage: /^usage: mailroom domains list/m },
    { args: ['domains', 'show'], error: /^mailroom: missing argument <name>$/, usage: /^usage: mailroom domains show <name>$/m },
    { args: ['mailboxes', 'enable', 'ann@example.com', 'smtp'], error: /expected imap or pop3, got 'smtp'/ },
    { args: ['mailboxes', 'set-quota', 'ann@example.com'], error: /give --storage, --messages or both/ },
    { args: ['mailboxes', 'set-quota', 'ann@example.com', '--storage', '12X'], error: /--storage: expected bytes or a size/ },
    { args: ['mailboxes', 'list', '--limit', '0'], error: /--limit: expected a whole number from 1 to 500, got '0'/ },
    { args: ['mailboxes', 'create', 'ann@example.com'], error: /exactly one of --password-stdin and --password-hash/ },
    { args: ['mailboxes', 'create', 'ann@example.com', '--password-stdin'], stdin: '', error: /first line of stdin is empty/ },
    { args: ['mailboxes', 'create', 'a@example.com', `--password=${PASSWORD}`], error: /unknown option '--password'; .*--password-stdin/ },
    { args: ['mailboxes', 'set-password', 'a@example.com', PASSWORD], error: /too many arguments; expected <address>$/ },
    { args: ['api-keys', 'create', '--name', 'x', '--role', 'root'], error: /--role: expected admin, provisioner, support/ },
    { args: ['migrate', '--force'], error: /^mailroom: unknown option '--force'$/ },
    { args: ['migrate'], env: { MAILROOM_HTTP_PORT: 'abc' }, error: /^mailroom: configuration error: MAILROOM_HTTP_PORT: .*'abc'$/ },
    { args: ['domains', 'list', '--json'], env: { DATABASE_URL: 'mysql://x' }, error: /^mailroom: configuration error: DATABASE_URL/ },
  ];
  // Two at a time: nothing here opens the database, so the runs cannot disturb each other.
  const runs: CliRun[] = [];
  for (let i = 0; i < cases.length; i += 2) {
    runs.push(...(await Promise.all(cases.slice(i, i + 2).map((c) => cli.run(c.args, { stdin: c.stdin, env: c.env })))));
  }
  cases.forEach((c, i) => {
    const run = runs[i]!;
    const name = `mailroom ${c.args.join(' ')}`;
    t.equal(run.code, 2, `${name}: exits 2 (stderr: ${run.stderr})`);
    t.equal(run.stdout, '', `${name}: nothing on stdout`);
    const [first, ...rest] = run.stderr.trimEnd().split('\n');
    t.match(first, c.error, `${name}: says what is wrong on the first line`);
    if (c.env) t.same(rest, [], `${name}: a configuration error is that one line`);
    else t.match(rest[0], /usage/, `${name}: followed by the usage`);
    if (c.usage) t.match(rest.join('\n'), c.usage, `${name}: the usage that fits`);
    t.notMatch(run.stderr, /\bat \S+:\d+/, `${name}: no stack trace`);
  });

  const help = await cli.run(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /mailboxes disable <address> imap\|pop3/, '--help prints the usage on stdout');
  t.notMatch(cli.transcript(), PASSWORD, 'a password given as an argument is never echoed');
});

t.test('domains, mailboxes and API keys from create to delete', async (t) => {
  const cli = await freshCli(t);
  const run = (args: string[], stdin?: string) => cli.run(args, { stdin });
  const importedHash = bcrypt.hashSync(NEW_PASSWORD, 4);

  await t.test('domains create and list, with sizes and paging', async (t) => {
    const created = ok(
      t,
      await run([
        'domains', 'create', 'Example.COM', '--max-mailboxes', '3', '--max-quota-messages', '100000',
        '--default-quota-storage', '20M', '--default-quota-messages', '1000', '--json',
      ]),
      'domains create',
    );
    t.match(created, {
      name: 'example.com',
      status: 'active',
      mailboxCount: 0,
      limits: { maxMailboxes: 3, maxQuota: { storageBytes: null, messages: 100000 } },
      defaults: { quota: { storageBytes: 20 * MiB, messages: 1000 }, protocols: { imap: true, pop3: true } },
    });
    const other = ok(t, await run(['domains', 'create', 'other.org', '--max-quota-storage', '2T', '--json']), 'a second domain');
    t.same(other.limits.maxQuota, { storageBytes: 2 * 1024 ** 4, messages: null });

    const all = ok(t, await run(['domains', 'list', '--json']), 'domains list');
    t.same(all.items.map((d: { name: string }) => d.name), ['example.com', 'other.org']);
    t.equal(all.nextCursor, null);
    t.same(all.items[0], created, 'a list item is the resource create returned');
    const first = ok(t, await run(['domains', 'list', '--limit', '1', '--json']), 'one page');
    t.same(first.items.map((d: { name: string }) => d.name), ['example.com']);
    t.type(first.nextCursor, 'string');
    const second = ok(t, await run(['domains', 'list', '--limit', '1', '--cursor', first.nextCursor, '--json']), 'the next page');
    t.same(second.items.map((d: { name: string }) => d.name), ['other.org']);
    t.equal(second.nextCursor, null);

    const table = await run(['domains', 'list', '--q', 'oth', '--status', 'active']);
    t.equal(table.code, 0);
    t.match(table.stdout, /^NAME +STATUS +MAILBOXES/);
    t.match(table.stdout, /^other\.org +active +0 /m);
    t.notMatch(table.stdout, /example\.com/, '--q filters by prefix');

    const shown = await run(['domains', 'show', 'example.com']);
    t.equal(shown.code, 0);
    t.match(shown.stdout, /^name: +example\.com$/m);
    t.match(shown.stdout, /^mailboxes: +0 of at most 3$/m);
    t.match(shown.stdout, /^default quota: +20 MiB, 1000 messages$/m);
    t.match(shown.stdout, /^largest quota: +unlimited, 100000 messages$/m);
  });

  await t.test('mailboxes create and list', async (t) => {
    const ann = ok(
      t,
      await run(
        [
          'mailboxes', 'create', 'Ann@Example.com', '--password-stdin', '--display-name', 'Ann Example', '--quota-storage', '500M',
          '--quota-messages', '50', '--no-pop3', '--pop3-delete-mode', 'trash', '--json',
        ],
        `${PASSWORD}\nthe second line is not read\n`,
      ),
      'mailboxes create with --password-stdin',
    );
    t.match(ann, {
      address: 'ann@example.com',
      domain: 'example.com',
      displayName: 'Ann Example',
      status: 'active',
      protocols: { imap: true, pop3: false },
      pop3DeleteMode: 'trash',
      quota: { storageBytes: 500 * MiB, messages: 50 },
      usage: { storageBytes: 0, messages: 0 },
      lastLogin: null,
    });
    refused(t, await run(['mailboxes', 'create', 'ann@example.com', '--password-stdin', '--json'], `${PASSWORD}\n`), 'mailbox_exists');
    const weak = refused(t, await run(['mailboxes', 'create', 'bob@example.com', '--password-stdin', '--json'], `${WEAK_PASSWORD}\n`), 'password_too_weak');
    t.equal(weak.field, 'password', 'the problem carries the core’s details');

    refused(
      t,
      await run(['mailboxes', 'create', 'eve@example.com', '--password-stdin', '--display-name', 'Eve\u0007', '--json'], `${PASSWORD}\n`),
      'invalid_display_name',
    );
    const bob = ok(t, await run(['mailboxes', 'create', 'bob@example.com', '--password-hash', importedHash, '--json']), 'create with a hash');
    t.match(bob, { address: 'bob@example.com', protocols: { imap: true, pop3: true }, quota: { storageBytes: 20 * MiB, messages: 1000 } });

    const pop3 = ok(t, await run(['mailboxes', 'list', '--domain', 'example.com', '--protocol', 'pop3', '--json']), 'filtered');
    t.same(pop3.items.map((m: { address: string }) => m.address), ['bob@example.com']);
    t.equal(pop3.nextCursor, null);

    const table = await run(['mailboxes', 'list']);
    t.equal(table.code, 0);
    t.match(table.stdout, /^ADDRESS +STATUS +PROTOCOLS +STORAGE +MESSAGES +DISPLAY NAME$/m);
    t.match(table.stdout, /^ann@example\.com +active +imap +0 B \/ 500 MiB +0 \/ 50 +Ann Example$/m);
    t.match(table.stdout, /^bob@example\.com +active +imap, pop3 +0 B \/ 20 MiB +0 \/ 1000$/m);

    const shown = await run(['mailboxes', 'show', 'ann@example.com']);
    t.equal(shown.code, 0);
    t.match(shown.stdout, /^display name: +Ann Example$/m);
    t.match(shown.stdout, /^protocols: +imap$/m);
    t.match(shown.stdout, /^storage: +0 B of 500 MiB$/m);
    t.match(shown.stdout, /^last login: +never$/m);
  });

  await t.test('mailboxes set-password from stdin', async (t) => {
    const set = await run(['mailboxes', 'set-password', 'ann@example.com', '--password-stdin', '--json'], `${NEW_PASSWORD}\n`);
    t.equal(ok(t, set, 'set-password'), undefined, 'with --json, nothing to print (the API answers 204)');
    await cli.withDatabase(async (services, db) => {
      const [row] = await db.select().from(accounts).where(eq(accounts.address, 'ann@example.com'));
      t.ok((await verifyPassword(row!.passwordHash, NEW_PASSWORD)).valid, 'the new password verifies');
      t.notOk((await verifyPassword(row!.passwordHash, PASSWORD)).valid, 'the old one no longer does');
      const events = await services.audit.list({ target: 'ann@example.com' }, { limit: 10 }, ACTOR_ALL);
      t.same(
        events.items.map((e) => [e.action, e.actor]),
        [
          ['mailbox.password.set', ACTOR],
          ['mailbox.create', ACTOR],
        ],
        'audited as the CLI and the user who ran it',
      );
      t.notMatch(JSON.stringify(events), new RegExp(`${PASSWORD}|${NEW_PASSWORD}`), 'no password in the audit trail');
    });
  });

  await t.test('quota, protocols and suspension', async (t) => {
    const quota = ok(t, await run(['mailboxes', 'set-quota', 'ann@example.com', '--storage', 'unlimited', '--messages', '75', '--json']), 'set-quota');
    t.same(quota.quota, { storageBytes: null, messages: 75 }, '`unlimited` is null');
    t.same(ok(t, await run(['mailboxes', 'disable', 'ann@example.com', 'imap', '--json']), 'disable').protocols, { imap: false, pop3: false });
    t.same(ok(t, await run(['mailboxes', 'enable', 'ann@example.com', 'pop3', '--json']), 'enable').protocols, { imap: false, pop3: true });
    t.equal(ok(t, await run(['mailboxes', 'suspend', 'ann@example.com', '--json']), 'suspend').status, 'suspended');
    const shown = ok(t, await run(['mailboxes', 'show', 'ann@example.com', '--json']), 'show');
    t.match(shown, { status: 'suspended', protocols: { imap: false, pop3: true }, quota: { storageBytes: null, messages: 75 } });
    t.equal(ok(t, await run(['mailboxes', 'unsuspend', 'ann@example.com', '--json']), 'unsuspend').status, 'active');
  });

  await t.test('unlocking a mailbox locked by failed logins', async (t) => {
    const locked = await cli.withDatabase(async (services) => {
      for (let i = 1; i <= 50; i++) {
        await services.loginThrottle.failed({ ip: `192.0.2.${i}`, protocol: 'imap', mailbox: 'bob@example.com' });
      }
      return services.loginThrottle.get('bob@example.com', ACTOR_ALL);
    });
    t.equal(locked.locked, true, 'locked at the default 50 failures');
    t.equal(ok(t, await run(['mailboxes', 'unlock', 'bob@example.com', '--json']), 'unlock --json'), undefined);
    const again = await run(['mailboxes', 'unlock', 'bob@example.com']);
    t.same([again.code, again.stdout], [0, 'lifted the login lockout of bob@example.com\n']);
    await cli.withDatabase(async (services) => {
      t.same(await services.loginThrottle.get('bob@example.com', ACTOR_ALL), { locked: false, lockedUntil: null, recentFailures: 0 });
      const [event] = (await services.audit.list({ target: 'bob@example.com' }, { limit: 1 }, ACTOR_ALL)).items;
      t.match(event, { action: 'mailbox.login_lockout.clear', actor: ACTOR });
    });
  });

  await t.test('deleting', async (t) => {
    const notEmpty = refused(t, await run(['domains', 'delete', 'example.com', '--json']), 'domain_not_empty');
    t.equal(notEmpty.mailboxCount, 2);
    t.equal(ok(t, await run(['mailboxes', 'delete', 'ann@example.com', '--json']), 'delete --json'), undefined);
    const bob = await run(['mailboxes', 'delete', 'bob@example.com']);
    t.same([bob.code, bob.stdout], [0, 'deleted mailbox bob@example.com\n']);
    const deleted = await run(['domains', 'delete', 'example.com']);
    t.same([deleted.code, deleted.stdout, deleted.stderr], [0, 'deleted domain example.com\n', ''], 'once its mailboxes are gone');
    const missing = await run(['domains', 'show', 'example.com']);
    t.equal(missing.code, 1);
    t.match(missing.stderr, /^mailroom: domain_not_found: .+\n$/, 'a refusal without --json is one line: code and message');
  });

  await t.test('api-keys create, list and revoke', async (t) => {
    const provisioner = ok(
      t,
      await run(['api-keys', 'create', '--name', 'provisioning', '--role', 'provisioner', '--domains', 'Other.org, example.net', '--json']),
      'api-keys create',
    );
    t.match(provisioner, { name: 'provisioning', role: 'provisioner', domains: ['example.net', 'other.org'], token: /^mr_/ });
    const human = await run(['api-keys', 'create', '--name', 'support desk', '--role', 'support']);
    t.equal(human.code, 0);
    t.match(human.stdout, /^role: +support$/m);
    t.match(human.stdout, /^domains: +all$/m);
    const token = /^token: +(mr_\S+)/m.exec(human.stdout)?.[1];
    t.ok(token, 'the human output shows the token once');

    t.equal(ok(t, await run(['api-keys', 'revoke', provisioner.id, '--json']), 'revoke'), undefined);
    const listed = ok(t, await run(['api-keys', 'list', '--json']), 'api-keys list');
    t.match(listed, { items: [{ name: 'support desk', role: 'support', domains: null, lastUsedAt: null }], nextCursor: null });
    t.equal(listed.items.length, 1, 'the revoked key is gone');
    t.notMatch(JSON.stringify(listed), /"token"|mr_/, 'a list never shows tokens');

    await cli.withDatabase(async (services) => {
      t.equal(await services.apiKeys.authenticate(provisioner.token), null, 'the revoked token no longer authenticates');
      t.match(await services.apiKeys.authenticate(token!), { role: 'support', domains: null }, 'the printed token works');
    });
  });

  t.notMatch(cli.transcript(), new RegExp(`${PASSWORD}|${NEW_PASSWORD}|${WEAK_PASSWORD}`), 'no password ever printed');
});
