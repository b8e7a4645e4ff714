// `mailroom webhooks ...` and `mailroom mailboxes batch` as a user runs them: child processes on a
// real database, with the REST API's results.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import t, { type Test } from 'tap';
import { type CliRun, freshCli } from '../helpers/cli.js';

// Every command is a process of its own, with PGlite's start-up in embedded mode: some thirty of
// them on a busy two-core machine.
t.setTimeout(900_000);

const PASSWORD = 'Correct horse battery 7';

function ok(t: Test, run: CliRun, what: string): any {
  t.equal(run.code, 0, `${what} exits 0 (stderr: ${run.stderr})`);
  t.equal(run.stderr, '', `${what} prints nothing on stderr`);
  return run.stdout === '' ? undefined : JSON.parse(run.stdout);
}

function refused(t: Test, run: CliRun, code: string): any {
  t.equal(run.code, 1, `${code}: exits 1`);
  t.equal(run.stdout, '', `${code}: nothing on stdout`);
  t.equal(run.stderr.trimEnd().split('\n').length, 1, `${code}: one line on stderr`);
  const problem = JSON.parse(run.stderr);
  t.equal(problem.code, code);
  return problem;
}

const cli = await freshCli(t);
const dir = await mkdtemp(join(tmpdir(), 'mailroom-batch-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
ok(t, await cli.run(['domains', 'create', 'example.com', '--json']), 'a domain');

t.test('webhooks create, list, get, deliveries and delete; the secret shows once', async (t) => {
  const created = ok(
    t,
    await cli.run(['webhooks', 'create', 'https://hooks.example.net/in', '--events', 'mailbox.created,mailbox.deleted', '--domains', 'Example.com', '--json']),
    'create',
  );
  t.match(created, { id: String, url: 'https://hooks.example.net/in', events: ['mailbox.created', 'mailbox.deleted'], domains: ['example.com'], secret: /^whsec_/ });
  const listed = ok(t, await cli.run(['webhooks', 'list', '--json']), 'list');
  const { secret, ...shown } = created;
  t.same(listed, { items: [shown], nextCursor: null });
  t.same(ok(t, await cli.run(['webhooks', 'get', created.id, '--json']), 'get'), shown);
  const table = await cli.run(['webhooks', 'list']);
  t.match(table.stdout, new RegExp(`${created.id}\\s+https://hooks.example.net/in\\s+mailbox.created,mailbox.deleted\\s+example.com`));

  // A mailbox made with the CLI is an event in the outbox, sent once a server runs.
  ok(t, await cli.run(['mailboxes', 'create', 'ann@example.com', '--password-stdin', '--json'], { stdin: `${PASSWORD}\n` }), 'a mailbox');
  const log = ok(t, await cli.run(['webhooks', 'deliveries', created.id, '--json']), 'deliveries');
  t.match(log.items, [{ status: 'pending', attempts: [], event: { type: 'mailbox.created', mailbox: 'ann@example.com' } }]);
  t.match((await cli.run(['webhooks', 'deliveries', created.id])).stdout, /mailbox\.created\s+ann@example\.com\s+pending\s+0/);

  t.equal(ok(t, await cli.run(['webhooks', 'delete', created.id, '--json']), 'delete'), undefined);
  refused(t, await cli.run(['webhooks', 'get', created.id, '--json']), 'webhook_not_found');
  refused(t, await cli.run(['webhooks', 'create', 'ftp://example.net/', '--json']), 'invalid_url');
  refused(t, await cli.run(['webhooks', 'create', 'https://example.net/', '--events', 'mailbox.exploded', '--json']), 'invalid_events');
  for (const args of [['webhooks', 'deliveries', created.id, '--status', 'lost'], ['webhooks', 'create', 'https://x.test/', '--events', ',']]) {
    const run = await cli.run(args);
    t.equal(run.code, 2, `${args.join(' ')}: a usage error`);
  }
  t.equal(cli.transcript().split(secret).length - 1, 1, 'the secret was printed by create only');
});

t.test('mailboxes batch: a result per operation, exit 1 when any failed; dry run; atomic; stdin', async (t) => {
  const file = join(dir, 'batch.json');
  await writeFile(
    file,
    JSON.stringify({
      items: [
        { op: 'create', address: 'bob@example.com', password: PASSWORD, displayName: 'Bob' },
        { op: 'update', address: 'ann@example.com', protocols: { pop3: false } },
        { op: 'delete', address: 'nobody@example.com' },
        { op: 'create', address: 'bad@example.com', password: PASSWORD, quota: { storageBytes: 'lots' } },
      ],
    }),
  );
  const dry = await cli.run(['mailboxes', 'batch', file, '--dry-run', '--json']);
  t.equal(dry.code, 1, 'a failed operation: exit 1');
  const predicted = JSON.parse(dry.stdout);
  t.equal(predicted.applied, false);
  t.same(predicted.results.map((r: any) => r.status), ['created', 'updated', 'failed', 'failed']);
  refused(t, await cli.run(['mailboxes', 'show', 'bob@example.com', '--json']), 'mailbox_not_found');

  const atomic = refused(t, await cli.run(['mailboxes', 'batch', file, '--atomic', '--json']), 'batch_failed');
  t.same(atomic.counts, { created: 1, updated: 1, unchanged: 0, deleted: 0, failed: 2 });
  refused(t, await cli.run(['mailboxes', 'show', 'bob@example.com', '--json']), 'mailbox_not_found');

  const run = await cli.run(['mailboxes', 'batch', file]);
  t.equal(run.code, 1);
  t.match(run.stdout, /0\s+create\s+bob@example\.com\s+created/);
  t.match(run.stdout, /2\s+delete\s+nobody@example\.com\s+failed: mailbox_not_found/);
  t.match(run.stdout, /1 created, 1 updated, 0 unchanged, 0 deleted, 2 failed\n$/);
  t.equal(ok(t, await cli.run(['mailboxes', 'show', 'bob@example.com', '--json']), 'applied').displayName, 'Bob');
  t.same(ok(t, await cli.run(['mailboxes', 'show', 'ann@example.com', '--json']), 'changed').protocols, { imap: true, pop3: false });

  const piped = ok(t, await cli.run(['mailboxes', 'batch', '-', '--json'], { stdin: JSON.stringify([{ op: 'delete', address: 'bob@example.com' }]) }), 'stdin');
  t.same(piped.counts, { created: 0, updated: 0, unchanged: 0, deleted: 1, failed: 0 });

  for (const [stdin, args] of [
    ['not json', ['mailboxes', 'batch', '-']],
    ['{"items": []}', ['mailboxes', 'batch', '-']],
    ['', ['mailboxes', 'batch', join(dir, 'missing.json')]],
  ] as const) {
    const refusedRun = await cli.run([...args], { stdin });
    t.equal(refusedRun.code, 2, `${args.join(' ')} with ${JSON.stringify(stdin)}: a usage error`);
    t.match(refusedRun.stderr, /^mailroom: <file>: /);
  }
  t.notOk(cli.transcript().includes(PASSWORD), 'no password printed');
});
