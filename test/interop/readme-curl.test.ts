import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { startServer } from '../helpers/server.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The shell block of the README's "API by example" section, as a newcomer would paste it. */
function exampleScript(): string {
  const section = README.slice(README.indexOf('## API by example'));
  const match = /```sh\n([\s\S]*?)```/.exec(section);
  if (!match) throw new Error('README has no sh block under "API by example"');
  return match[1]!;
}

t.test('the README quick start serves the API and its curl examples work as written', async (t) => {
  const token = /MAILROOM_ADMIN_TOKEN=(\S+) npm start/.exec(README)?.[1];
  t.ok(token, 'the quick start sets MAILROOM_ADMIN_TOKEN');
  const server = await startServer(t, { MAILROOM_ADMIN_TOKEN: token! });
  const script = exampleScript().replaceAll('http://127.0.0.1:8080', server.url);
  t.match(script, /curl/, 'the examples are curl commands');

  const run = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { encoding: 'utf8', timeout: 60_000 });
  t.equal(run.status, 0, `every example succeeds; stderr: ${run.stderr}`);
  t.match(run.stdout, /"address":"ann@example.com"/);
  t.match(run.stdout, /"token":"mr_/, 'the new API key shows its token once');

  const headers = { authorization: `Bearer ${token}` };
  const ann = await (await fetch(`${server.url}/v1/mailboxes/ann@example.com`, { headers })).json();
  t.same(ann.protocols, { imap: true, pop3: true }, 'the If-Match PATCH switched POP3 on');
  t.equal(ann.pop3DeleteMode, 'trash');
  const bob = await fetch(`${server.url}/v1/mailboxes/bob@example.com`, { headers });
  t.equal(bob.status, 200, 'the mailbox imported with a SHA512-CRYPT hash exists');
  const audit = await (await fetch(`${server.url}/v1/audit-events?target=ann@example.com`, { headers })).json();
  t.same(
    audit.items.map((event: { action: string }) => event.action),
    ['mailbox.password.set', 'mailbox.update', 'mailbox.create'],
  );
  t.notMatch(JSON.stringify(audit), /passphrase/, 'no password in the audit trail');
  t.notMatch(server.output(), /passphrase|quickstart-admin-token/, 'no secret in the server log');
});
