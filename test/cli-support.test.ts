// The support commands of the `mailroom` CLI as a user runs them: protocol switches with a reason
// and an end, the login check and the quota preview (child processes on a real database).
import t, { type Test } from 'tap';
import { type CliRun, freshCli } from './helpers/cli.js';

// A dozen processes, each opening the database (embedded: starting PGlite): slow on a busy machine.
t.setTimeout(600_000);

const PASSWORD = 'Correct horse battery 7';
const ACTOR = { id: 'test', name: 'test', domains: null };
const ADDRESS = 'ann@support.test';

function ok(t: Test, run: CliRun, what: string): any {
  t.equal(run.code, 0, `${what} exits 0 (stderr: ${run.stderr})`);
  t.equal(run.stderr, '', `${what} prints nothing on stderr`);
  return run.stdout === '' ? undefined : JSON.parse(run.stdout);
}

const cli = await freshCli(t);
await cli.withDatabase(async (services) => {
  await services.domains.create({ name: 'support.test', limits: { maxQuota: { storageBytes: 1024 * 1024, messages: null } } }, ACTOR);
  await services.mailboxes.create({ address: ADDRESS, password: PASSWORD }, ACTOR);
  await services.mail.deliver(Buffer.from('Subject: hello\r\n\r\nhello\r\n'), [ADDRESS]);
});

t.test('disable and enable take --reason and --until; without them the switch is plain', async (t) => {
  const until = new Date(Date.now() + 3_600_000).toISOString();
  const disabled = ok(t, await cli.run(['mailboxes', 'disable', ADDRESS, 'pop3', '--reason', 'abuse report #123', '--until', until, '--json']), 'disable');
  t.same(disabled.protocols, { imap: true, pop3: false });
  t.match(disabled.protocolSwitches.pop3, { enabled: false, reason: 'abuse report #123', until, changedAt: String });
  const shown = await cli.run(['mailboxes', 'show', ADDRESS]);
  t.match(shown.stdout, /^protocols: +imap$/m);
  t.match(shown.stdout, new RegExp(`^pop3: +off \\(abuse report #123\\) until ${until.replaceAll('.', '\\.')}$`, 'm'));

  const past = await cli.run(['mailboxes', 'disable', ADDRESS, 'imap', '--until', '2020-01-01T00:00:00Z', '--json']);
  t.equal(past.code, 1);
  t.match(JSON.parse(past.stderr), { code: 'invalid_protocol_until', field: 'protocols.imap.until' });
  for (const bad of ['tomorrow', '2030-01-01T00:00:00']) {
    const run = await cli.run(['mailboxes', 'disable', ADDRESS, 'imap', '--until', bad]);
    t.equal(run.code, 2, `--until ${bad} is a usage error`);
    t.match(run.stderr, /^mailroom: --until: expected a time such as 2027-01-01T00:00:00Z/);
  }

  const enabled = ok(t, await cli.run(['mailboxes', 'enable', ADDRESS, 'pop3', '--json']), 'enable');
  t.match(enabled.protocolSwitches.pop3, { enabled: true, reason: null, until: null });
});

t.test('login-check, as JSON (the API document) and for a person', async (t) => {
  await cli.withDatabase(async (services) => {
    await services.login.login({ address: ADDRESS, password: 'not it', protocol: 'imap', ip: '192.0.2.7' }).catch(() => {});
    await services.login.plaintextRefused({ address: ADDRESS, protocol: 'pop3', ip: '192.0.2.8' });
  });
  const check = ok(t, await cli.run(['mailboxes', 'login-check', ADDRESS, '--json']), 'login-check --json');
  t.match(check, {
    address: ADDRESS,
    canLogIn: { imap: true, pop3: true },
    blockers: [],
    failedLogins: [
      { protocol: 'pop3', ip: '192.0.2.8', reason: 'tls_required' },
      { protocol: 'imap', ip: '192.0.2.7', reason: 'wrong_password' },
    ],
    quota: { usage: { messages: 1 }, newMailRefused: false },
    password: { ageDays: 0 },
  });
  const text = await cli.run(['mailboxes', 'login-check', ADDRESS]);
  t.equal(text.code, 0);
  t.match(text.stdout, /^can log in: +imap yes, pop3 yes$/m);
  t.match(text.stdout, /^Nothing blocks a login\.$/m);
  t.match(text.stdout, /^\S+ +pop3 +192\.0\.2\.8 +tls_required$/m);
  t.match(text.stdout, /^\S+ +imap +192\.0\.2\.7 +wrong_password$/m);
  const missing = await cli.run(['mailboxes', 'login-check', 'nobody@support.test']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /^mailroom: mailbox_not_found: /);
});

t.test('quota-preview: what a quota would mean, and the refusal the change would get', async (t) => {
  const small = ok(t, await cli.run(['mailboxes', 'quota-preview', ADDRESS, '--storage', '10', '--json']), 'quota-preview');
  t.match(small, {
    quota: { storageBytes: 10, messages: null },
    currentQuota: { storageBytes: 1024 * 1024, messages: null },
    newMailRefused: true,
    refusedBy: ['storageBytes'],
    domainMaxQuota: { storageBytes: 1024 * 1024, messages: null },
    rejection: null,
  });
  const big = ok(t, await cli.run(['mailboxes', 'quota-preview', ADDRESS, '--storage', '2M', '--json']), 'above the domain');
  t.match(big.rejection, { code: 'quota_above_domain_limit', message: String, field: 'quota', maxQuota: { storageBytes: 1024 * 1024 } });
  const text = await cli.run(['mailboxes', 'quota-preview', ADDRESS, '--storage', '2M']);
  t.equal(text.code, 0);
  t.match(text.stdout, /^change: +would be refused: quota_above_domain_limit: /m);
  t.match(text.stdout, /^domain allows: +at most 1 MiB, unlimited messages$/m);
  const usage = await cli.run(['mailboxes', 'quota-preview', ADDRESS]);
  t.equal(usage.code, 2);
  t.match(usage.stderr, /give --storage, --messages or both/);
  await cli.withDatabase(async (services) => {
    t.same((await services.mailboxes.get(ADDRESS, ACTOR)).value.quota, { storageBytes: 1024 * 1024, messages: null }, 'nothing changed');
  });
});
