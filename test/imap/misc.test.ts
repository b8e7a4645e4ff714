import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { LineClient, run, until } from '../helpers/line-client.js';
import { ACTOR, PASSWORD, startTestImap } from '../helpers/imap.js';

const imap = await startTestImap(t);
const MESSAGE = 'From: a@example.org\r\nSubject: hello\r\n\r\nHello\r\n';
await imap.mailbox('ann@misc.test', { quota: { storageBytes: 10_000, messages: 5 } });
await imap.mailbox('bob@misc.test', { quota: { storageBytes: null, messages: null } });

async function connect(address?: string): Promise<LineClient> {
  const client = await LineClient.connect(imap.port);
  t.teardown(() => client.close());
  await client.readLine();
  if (address) {
    const login = await run(client, `l1 LOGIN ${address} "${PASSWORD}"`);
    if (!login.at(-1)?.startsWith('l1 OK')) throw new Error(`login: ${login.join('\n')}`);
  }
  return client;
}

t.test('NAMESPACE: one personal namespace', async (t) => {
  const anonymous = await connect();
  t.match((await run(anonymous, 'n0 NAMESPACE')).at(-1), /^n0 BAD NAMESPACE is not allowed before login/);
  const client = await connect('ann@misc.test');
  t.same(await run(client, 'n1 NAMESPACE'), ['* NAMESPACE (("" "/")) NIL NIL', 'n1 OK NAMESPACE completed']);
  t.match((await run(client, 'n2 NAMESPACE x')).at(-1), /^n2 BAD/);
});

t.test('ID: in any state; the client list is checked, the server names itself', async (t) => {
  const client = await connect();
  t.same(await run(client, 'i1 ID NIL'), ['* ID ("name" "Mailroom" "vendor" "Mailroom")', 'i1 OK ID completed']);
  t.same(await run(client, 'i2 ID ("name" "tap" "version" NIL)'), ['* ID ("name" "Mailroom" "vendor" "Mailroom")', 'i2 OK ID completed']);
  t.same(await run(client, 'i3 id ()'), ['* ID ("name" "Mailroom" "vendor" "Mailroom")', 'i3 OK ID completed']);
  t.match((await run(client, 'i4 ID ("name")')).at(-1), /^i4 BAD/);
  t.match((await run(client, 'i5 ID (name "tap")')).at(-1), /^i5 BAD/);
  t.match((await run(client, `i6 ID ("${'x'.repeat(31)}" "tap")`)).at(-1), /^i6 BAD/);
  t.match((await run(client, `i7 ID ("name" "${'x'.repeat(1025)}")`)).at(-1), /^i7 BAD/);
  const many = Array.from({ length: 31 }, (_, i) => `"f${i}" "v"`).join(' ');
  t.match((await run(client, `i8 ID (${many})`)).at(-1), /^i8 BAD/);
  t.match((await run(client, 'i9 ID')).at(-1), /^i9 BAD/);
  t.match((await run(client, 'i10 ID FOO')).at(-1), /^i10 BAD/);
  t.match((await run(client, 'i11 ID "name"')).at(-1), /^i11 BAD/);
  await run(client, `l LOGIN ann@misc.test "${PASSWORD}"`);
  t.match((await run(client, 'i12 ID NIL')).at(-1), /^i12 OK/);
});

t.test('ENABLE: CONDSTORE recorded, unknown ignored, only in the authenticated state', async (t) => {
  const anonymous = await connect();
  t.match((await run(anonymous, 'e0 ENABLE CONDSTORE')).at(-1), /^e0 BAD ENABLE is not allowed before login/);
  const client = await connect('ann@misc.test');
  t.same(await run(client, 'e1 ENABLE X-UNKNOWN condstore'), ['* ENABLED CONDSTORE', 'e1 OK ENABLE completed']);
  t.same(await run(client, 'e2 ENABLE CONDSTORE'), ['* ENABLED', 'e2 OK ENABLE completed'], 'already enabled: not named again');
  t.match((await run(client, 'e3 ENABLE')).at(-1), /^e3 BAD/);
  t.match((await run(client, 'e4 ENABLE "CONDSTORE"')).at(-1), /^e4 BAD/);
  await run(client, 'e5 SELECT INBOX');
  t.match((await run(client, 'e6 ENABLE CONDSTORE')).at(-1), /^e6 BAD ENABLE is not allowed now/);
});

t.test('SELECT and EXAMINE (CONDSTORE) turn CONDSTORE on; other parameters are BAD', async (t) => {
  const address = 'carl@misc.test';
  const accountId = await imap.mailbox(address);
  await imap.deliver(address, MESSAGE);
  const client = await connect(address);
  await run(client, 'c1 SELECT INBOX');
  // With CONDSTORE on, a silent STORE still tells the new MODSEQ (RFC 7162 §3.2).
  t.same(await run(client, 'c2 STORE 1 +FLAGS.SILENT ($A)'), ['c2 OK STORE completed'], 'not on yet');
  const selected = await run(client, 'c3 SELECT INBOX (CONDSTORE)');
  const { highestModseq } = await imap.services.mail.folders.get(accountId, 'INBOX');
  t.ok(selected.includes(`* OK [HIGHESTMODSEQ ${highestModseq}] Highest`));
  t.match(selected.at(-1), /^c3 OK \[READ-WRITE\]/);
  t.match(await run(client, 'c4 STORE 1 +FLAGS.SILENT ($B)'), [/^\* 1 FETCH \(MODSEQ \(\d+\)\)$/, 'c4 OK STORE completed']);
  const other = await connect(address);
  t.match((await run(other, 'd1 EXAMINE inbox (condstore)')).at(-1), /^d1 OK \[READ-ONLY\]/);
  const inbox = await imap.services.mail.folders.get(accountId, 'INBOX');
  await imap.services.mail.changeFlags(accountId, inbox.id, [1], 'add', ['$C']);
  t.match(await until(other, (lines) => lines.length > 0), [/^\* 1 FETCH \(FLAGS \(\$A \$B \$C\) UID 1 MODSEQ \(\d+\)\)$/], 'examined with CONDSTORE');
  for (const [tag, parameters, answer] of [
    ['b1', '(QRESYNC (1 2))', 'QRESYNC must be enabled first (ENABLE QRESYNC)'],
    ['b2', '(CONDSTORE BOGUS)', 'Unknown SELECT parameter BOGUS'],
    ['b3', 'CONDSTORE', 'Expected SELECT parameters in parentheses'],
    ['b4', '()', 'Name at least one SELECT parameter'],
    ['b5', '((CONDSTORE))', 'Expected a SELECT parameter'],
  ]) {
    t.same(await run(other, `${tag} SELECT INBOX ${parameters}`), [`${tag} BAD ${answer}`]);
  }
  t.match((await run(other, 'd3 FETCH 1 (UID)')).at(-1), /^d3 OK/, 'a BAD SELECT leaves the folder selected');
  t.match(await run(other, 'd4 SELECT Nowhere (CONDSTORE)'), [/^d4 NO \[NONEXISTENT\]/]);
});

t.test('QUOTA: GETQUOTAROOT and GETQUOTA from the account counters, in KiB rounded up; SETQUOTA refused', async (t) => {
  const client = await connect('ann@misc.test');
  t.same(await run(client, 'q1 GETQUOTAROOT inbox'), [
    '* QUOTAROOT "INBOX" ""',
    '* QUOTA "" (STORAGE 0 10 MESSAGE 0 5)',
    'q1 OK GETQUOTAROOT completed',
  ]);
  await imap.deliver('ann@misc.test', MESSAGE);
  await imap.deliver('ann@misc.test', MESSAGE, 'Sent');
  t.same(await run(client, 'q2 GETQUOTA ""'), ['* QUOTA "" (STORAGE 1 10 MESSAGE 2 5)', 'q2 OK GETQUOTA completed']);
  t.same(await run(client, 'q3 GETQUOTAROOT "Sent"'), [
    '* QUOTAROOT "Sent" ""',
    '* QUOTA "" (STORAGE 1 10 MESSAGE 2 5)',
    'q3 OK GETQUOTAROOT completed',
  ]);
  // A quota changed through the API is what the next GETQUOTA reports.
  await imap.services.mailboxes.update('ann@misc.test', { quota: { storageBytes: 2 * 1024 * 1024, messages: null } }, ACTOR);
  t.same(await run(client, 'q4 GETQUOTA ""'), ['* QUOTA "" (STORAGE 1 2048)', 'q4 OK GETQUOTA completed']);
  t.match((await run(client, 'q5 GETQUOTA "user.ann"')).at(-1), /^q5 NO \[NONEXISTENT\]/);
  t.match((await run(client, 'q6 GETQUOTAROOT Nowhere')).at(-1), /^q6 NO \[NONEXISTENT\]/);
  t.match((await run(client, 'q7 SETQUOTA "" (STORAGE 100)')).at(-1), /^q7 NO \[NOPERM\] Quotas are managed by the administrator/);
  t.match((await run(client, 'q8 SETQUOTA ""')).at(-1), /^q8 BAD/);
  t.match((await run(client, 'q9 GETQUOTA')).at(-1), /^q9 BAD/);
  const unlimited = await connect('bob@misc.test');
  t.same(await run(unlimited, 'q10 GETQUOTA ""'), ['* QUOTA "" ()', 'q10 OK GETQUOTA completed']);
  const anonymous = await connect();
  t.match((await run(anonymous, 'q11 GETQUOTA ""')).at(-1), /^q11 BAD/);
});

t.test('imapflow: ID, NAMESPACE, ENABLE and getQuota', async (t) => {
  const client = imap.imapflow('ann@misc.test', { clientInfo: { name: 'tap', version: '1' } });
  await client.connect();
  t.teardown(() => client.close());
  t.equal(client.serverInfo?.name, 'Mailroom');
  // Not in imapflow's type declarations, but set from the NAMESPACE answer.
  t.same((client as unknown as { namespaces: { personal: unknown } }).namespaces.personal, [{ prefix: '', delimiter: '/' }]);
  const quota = await client.getQuota('INBOX');
  t.ok(quota);
  if (!quota) return;
  // imapflow answers `usage` (its declarations say `used`), in bytes: KiB × 1024.
  t.match(quota.storage, { usage: 1024, limit: 2 * 1024 * 1024 });
  t.notOk('message' in quota, 'no message limit, none reported');
  t.ok(client.enabled.has('CONDSTORE'), 'imapflow enabled CONDSTORE');
});

t.test("Python's imaplib: GETQUOTAROOT, GETQUOTA, SETQUOTA, ID-less NAMESPACE", async (t) => {
  const script = `
import imaplib, json, sys
c = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
c.login(sys.argv[2], sys.argv[3])
out = {}
typ, data = c.getquotaroot('INBOX')
out['root'] = [[x.decode() for x in d] for d in data]
out['quota'] = c.getquota('""')[1][0].decode()
try:
    out['set'] = c.setquota('""', '(STORAGE 1)')[0]
except imaplib.IMAP4.error as e:
    out['set'] = str(e)
c.logout()
print(json.dumps(out))
`;
  const { stdout } = await promisify(execFile)('python3', ['-c', script, String(imap.port), 'ann@misc.test', PASSWORD]);
  const out = JSON.parse(stdout);
  t.same(out.root, [['"INBOX" ""'], ['"" (STORAGE 1 2048)']]);
  t.equal(out.quota, '"" (STORAGE 1 2048)');
  t.equal(out.set, 'NO');
});
