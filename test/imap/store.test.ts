import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { LineClient, run, until } from '../helpers/line-client.js';
import { PASSWORD, startTestImap } from '../helpers/imap.js';

const imap = await startTestImap(t, { limits: { maxBadCommands: 100 } });
const mail = imap.services.mail;

let mailboxes = 0;
/**
 * A fresh mailbox whose INBOX holds `count` messages with UIDs 2..count+1 (UID 1 is expunged
 * first, so sequence numbers and UIDs differ by one), none of them \Recent any more.
 */
async function freshMailbox(count: number): Promise<{ address: string; accountId: number; inbox: number }> {
  const address = `user${++mailboxes}@store.test`;
  const accountId = await imap.mailbox(address);
  const inbox = (await mail.folders.get(accountId, 'INBOX')).id;
  await mail.append(accountId, 'INBOX', Buffer.from('Subject: gone\r\n\r\nx\r\n'), { flags: ['\\Deleted'] });
  await mail.expunge(accountId, inbox);
  for (let i = 1; i <= count; i++) await mail.append(accountId, 'INBOX', Buffer.from(`Subject: ${i}\r\n\r\nbody ${i}\r\n`));
  await imap.claimRecent(accountId);
  return { address, accountId, inbox };
}

async function flagsOf(accountId: number, inbox: number): Promise<Record<number, string[]>> {
  return Object.fromEntries((await mail.list(accountId, inbox)).map((m) => [m.uid, m.flags]));
}

async function connect(address: string, select: string | null = 'SELECT INBOX'): Promise<LineClient> {
  const client = await LineClient.connect(imap.port);
  t.teardown(() => client.close());
  await client.readLine();
  const login = await run(client, `l1 LOGIN ${address} "${PASSWORD}"`);
  if (!login.at(-1)?.startsWith('l1 OK')) throw new Error(`login: ${login.join('\n')}`);
  if (select) {
    const answer = await run(client, `s1 ${select}`);
    if (!answer.at(-1)?.startsWith('s1 OK')) throw new Error(`select: ${answer.join('\n')}`);
  }
  return client;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

t.test('FLAGS, +FLAGS, -FLAGS: an untagged FETCH for each message that changed', async (t) => {
  const { address, accountId, inbox } = await freshMailbox(4);
  const client = await connect(address);
  t.same(await run(client, 'a1 STORE 1:2 +FLAGS (\\Seen \\Flagged)'), [
    '* 1 FETCH (FLAGS (\\Flagged \\Seen))',
    '* 2 FETCH (FLAGS (\\Flagged \\Seen))',
    'a1 OK STORE completed',
  ]);
  t.same(await run(client, 'a2 STORE 2:3 -FLAGS \\Flagged'), ['* 2 FETCH (FLAGS (\\Seen))', 'a2 OK STORE completed'], 'a single flag; 3 did not change');
  t.same(await run(client, 'a3 STORE 3 FLAGS ($Work \\answered)'), ['* 3 FETCH (FLAGS ($Work \\Answered))', 'a3 OK STORE completed']);
  t.same(await run(client, 'a4 STORE 4 +flags.silent ($Later)'), ['a4 OK STORE completed'], '.SILENT, any case');
  t.same(await run(client, 'a5 STORE 4 +FLAGS \\Draft $Later'), ['* 4 FETCH (FLAGS ($Later \\Draft))', 'a5 OK STORE completed'], 'flags without parentheses');
  t.same(await run(client, 'a6 STORE 1:4 +FLAGS (\\Seen)'), [
    '* 3 FETCH (FLAGS ($Work \\Answered \\Seen))',
    '* 4 FETCH (FLAGS ($Later \\Draft \\Seen))',
    'a6 OK STORE completed',
  ], 'only what changed');
  t.same(await run(client, 'a7 STORE 1 FLAGS ()'), ['* 1 FETCH (FLAGS ())', 'a7 OK STORE completed'], 'FLAGS () clears');
  t.same(await run(client, 'a8 STORE * -FLAGS.SILENT ($Later)'), ['a8 OK STORE completed']);
  t.same(await flagsOf(accountId, inbox), {
    2: [],
    3: ['\\Seen'],
    4: ['$Work', '\\Answered', '\\Seen'],
    5: ['\\Draft', '\\Seen'],
  });
  // The view was updated with the store: the next sync has nothing more to say.
  await settle();
  t.same(await run(client, 'a9 NOOP'), ['a9 OK NOOP completed']);
});

t.test('UID STORE answers with UID and takes UIDs; unknown UIDs are ignored', async (t) => {
  const { address, accountId, inbox } = await freshMailbox(3);
  const client = await connect(address);
  t.same(await run(client, 'b1 UID STORE 3:4 +FLAGS (\\Deleted)'), [
    '* 2 FETCH (FLAGS (\\Deleted) UID 3)',
    '* 3 FETCH (FLAGS (\\Deleted) UID 4)',
    'b1 OK UID STORE completed',
  ]);
  t.same(await run(client, 'b2 UID STORE 1,9:20 +FLAGS (\\Seen)'), ['b2 OK UID STORE completed'], 'no such UIDs');
  t.same(await run(client, 'b3 UID STORE * FLAGS.SILENT (\\Seen)'), ['b3 OK UID STORE completed']);
  // b3 replaced UID 4's flags, \Deleted included: only UID 3 changes now.
  t.same(await run(client, 'b4 UID STORE 2:* -FLAGS (\\Deleted)'), ['* 2 FETCH (FLAGS () UID 3)', 'b4 OK UID STORE completed']);
  t.same(await flagsOf(accountId, inbox), { 2: [], 3: [], 4: ['\\Seen'] });
});

t.test('\\Recent shows in the FETCH of a recent message and cannot be stored', async (t) => {
  const { address } = await freshMailbox(1);
  const client = await connect(address);
  await imap.deliver(address, 'Subject: new\r\n\r\nnew\r\n');
  await until(client, (seen) => seen.includes('* 2 EXISTS'));
  t.same(await run(client, 'c1 STORE 2 +FLAGS (\\Seen)'), ['* 2 FETCH (FLAGS (\\Seen \\Recent))', 'c1 OK STORE completed']);
  t.match(await run(client, 'c2 STORE 2 +FLAGS (\\Recent)'), ['c2 BAD \\Recent cannot be stored']);
  t.match(await run(client, 'c3 STORE 2 FLAGS \\recent'), ['c3 BAD \\Recent cannot be stored']);
});

t.test('bad syntax answers BAD; EXAMINE answers NO; a bad keyword NO', async (t) => {
  const { address, accountId, inbox } = await freshMailbox(2);
  const client = await connect(address);
  const bad = [
    'STORE',
    'STORE 1',
    'STORE 1 FLAGS',
    'STORE 1 FOO (\\Seen)',
    'STORE 1 FLAGS.LOUD (\\Seen)',
    'STORE 1 ++FLAGS (\\Seen)',
    'STORE x FLAGS (\\Seen)',
    'STORE 0 FLAGS (\\Seen)',
    'STORE 3 FLAGS (\\Seen)',
    'STORE 1 FLAGS "\\Seen"',
    'STORE 1 FLAGS ((\\Seen))',
    'STORE 1 FLAGS (\\Unknown)',
    'STORE 1 (UNCHANGEDSINCE) FLAGS (\\Seen)',
    'STORE 1 (UNCHANGEDSINCE x) FLAGS (\\Seen)',
    'STORE 1 (CHANGEDSINCE 1) FLAGS (\\Seen)',
    'STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) FLAGS (\\Seen)',
    'UID STORE 1 FLAGS',
  ];
  for (const [i, command] of bad.entries()) {
    const answer = await run(client, `b${i} ${command}`);
    t.equal(answer.length, 1, `${command}: only the tagged answer`);
    t.match(answer[0], new RegExp(`^b${i} BAD `), command);
  }
  t.match(await run(client, 'k1 STORE 1 +FLAGS (50%)'), [/^k1 NO \[CANNOT\] /]);
  t.same(await flagsOf(accountId, inbox), { 2: [], 3: [] }, 'nothing stored');

  const reader = await connect(address, 'EXAMINE INBOX');
  t.same(await run(reader, 'r1 STORE 1 +FLAGS (\\Seen)'), ['r1 NO The folder is open read-only (EXAMINE); select it to change it']);
  t.same(await run(reader, 'r2 UID STORE 2 (UNCHANGEDSINCE 100) FLAGS (\\Seen)'), [
    'r2 NO The folder is open read-only (EXAMINE); select it to change it',
  ]);
  t.match(await run(reader, 'r3 STORE 1 +FLAGS'), [/^r3 BAD /], 'syntax is checked first');
  t.same(await flagsOf(accountId, inbox), { 2: [], 3: [] });
  const before = await connect(address, null);
  t.match(await run(before, 'n1 STORE 1 +FLAGS (\\Seen)'), [/^n1 BAD STORE is not allowed now/]);
});

t.test('UNCHANGEDSINCE: conflicts are left alone and named in [MODIFIED]; MODSEQ is told', async (t) => {
  const { address, accountId, inbox } = await freshMailbox(4);
  const client = await connect(address);
  const start = Math.max(...(await mail.list(accountId, inbox)).map((m) => m.modseq));
  // Another device changes message 2 (UID 3) after the client read `start`.
  const other = await mail.changeFlags(accountId, inbox, [3], 'add', ['$Other']);
  const otherModseq = other.changed[0]!.modseq;
  t.same(await until(client, (lines) => lines.length > 0), ['* 2 FETCH (FLAGS ($Other) UID 3)']);
  const answer = await run(client, `d1 STORE 1:3 (UNCHANGEDSINCE ${start}) +FLAGS (\\Seen)`);
  t.equal(answer.at(-1), 'd1 OK [MODIFIED 2] Conditional STORE failed');
  const fetches = answer.slice(0, -1);
  const modseq = Number(/MODSEQ \((\d+)\)/.exec(fetches[0]!)![1]);
  t.ok(modseq > otherModseq);
  t.same(fetches, [`* 1 FETCH (FLAGS (\\Seen) MODSEQ (${modseq}))`, `* 3 FETCH (FLAGS (\\Seen) MODSEQ (${modseq}))`]);
  t.same(await flagsOf(accountId, inbox), { 2: ['\\Seen'], 3: ['$Other'], 4: ['\\Seen'], 5: [] });

  // UID STORE names UIDs; .SILENT still tells MODSEQ once CONDSTORE is on (RFC 7162 §3.1.3).
  const silent = await run(client, `d2 UID STORE 2:5 (UNCHANGEDSINCE ${otherModseq}) +FLAGS.SILENT (\\Flagged)`);
  t.equal(silent.at(-1), 'd2 OK [MODIFIED 2,4] Conditional STORE failed');
  const next = Number(/MODSEQ \((\d+)\)/.exec(silent[0]!)?.[1]);
  t.same(silent.slice(0, -1), [`* 2 FETCH (UID 3 MODSEQ (${next}))`, `* 4 FETCH (UID 5 MODSEQ (${next}))`]);
  // A plain STORE now carries MODSEQ too.
  t.same(await run(client, 'd3 STORE 4 -FLAGS (\\Flagged)'), [`* 4 FETCH (FLAGS () MODSEQ (${next + 1}))`, 'd3 OK STORE completed']);
  t.same(await run(client, 'd4 UID STORE 5 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)'), ['d4 OK [MODIFIED 5] Conditional STORE failed']);
});

t.test('another device sees the change at its next command, the storing one hears it once', async (t) => {
  const { address } = await freshMailbox(3);
  const writer = await connect(address);
  const reader = await connect(address);
  t.same(await run(writer, 'w1 STORE 2 +FLAGS (\\Seen)'), ['* 2 FETCH (FLAGS (\\Seen))', 'w1 OK STORE completed']);
  const seen = await until(reader, (lines) => lines.length > 0);
  t.same(seen, ['* 2 FETCH (FLAGS (\\Seen) UID 3)']);
  await settle();
  t.same(await run(writer, 'w2 NOOP'), ['w2 OK NOOP completed'], 'not told twice');
});

t.test('STORE by sequence number sends no EXPUNGE; UID STORE may', async (t) => {
  const { address, accountId, inbox } = await freshMailbox(3);
  const client = await connect(address);
  const probe = await connect(address);
  await mail.changeFlags(accountId, inbox, [3], 'add', ['\\Deleted']);
  await mail.expunge(accountId, inbox);
  // Once the probe has heard, so has the client's session (one change feed per process).
  await until(probe, (lines) => lines.includes('* 2 EXPUNGE'));
  t.same(await run(client, 'e1 STORE 2:3 +FLAGS (\\Seen)'), ['* 3 FETCH (FLAGS (\\Seen))', 'e1 OK STORE completed'], 'no EXPUNGE');
  t.same(await run(client, 'e2 STORE 2 +FLAGS (\\Seen)'), ['e2 OK STORE completed'], 'gone already: nothing to change');
  t.same(await run(client, 'e3 UID STORE 4 +FLAGS (\\Flagged)'), [
    '* 3 FETCH (FLAGS (\\Flagged \\Seen) UID 4)',
    '* 2 EXPUNGE',
    'e3 OK UID STORE completed',
  ]);
  t.same(await run(client, 'e4 STORE 2 -FLAGS (\\Seen)'), ['* 2 FETCH (FLAGS (\\Flagged))', 'e4 OK STORE completed'], 'renumbered');
});

t.test('imapflow changes flags', async (t) => {
  const { address, accountId, inbox } = await freshMailbox(3);
  const client = imap.imapflow(address);
  await client.connect();
  t.teardown(() => client.close());
  await client.mailboxOpen('INBOX');
  t.equal(await client.messageFlagsAdd('1:2', ['\\Seen', '$Work']), true);
  t.equal(await client.messageFlagsRemove({ uid: '3' }, ['$Work']), true);
  t.equal(await client.messageFlagsSet('3', ['\\Flagged'], { uid: true }), true);
  t.equal(await client.messageFlagsAdd('3', ['\\Answered']), true);
  t.same(await flagsOf(accountId, inbox), { 2: ['$Work', '\\Seen'], 3: ['\\Flagged'], 4: ['\\Answered'] });
});

const IMAPLIB = `
import imaplib, json, sys
plan = json.loads(sys.argv[1])
client = imaplib.IMAP4("127.0.0.1", plan["port"])
client.login(plan["user"], plan["password"])
client.select("INBOX")
out = {}
typ, data = client.store("1:2", "+FLAGS", "(\\\\Seen \\\\Flagged)")
out["add"] = [typ] + [d.decode() for d in data]
typ, data = client.uid("STORE", "3", "-FLAGS", "(\\\\Flagged)")
out["uid"] = [typ] + [d.decode() for d in data]
typ, data = client.store("2", "FLAGS.SILENT", "(\\\\Draft)")
out["silent"] = [typ] + [repr(d) for d in data]
try:
    client.store("1", "+FLAGS", "(\\\\Recent)")
    out["recent"] = "accepted"
except imaplib.IMAP4.error as error:
    out["recent"] = str(error)
client.logout()
print(json.dumps(out))
`;

t.test("Python's imaplib changes flags", async (t) => {
  const { address, accountId, inbox } = await freshMailbox(2);
  const { stdout } = await promisify(execFile)('python3', ['-c', IMAPLIB, JSON.stringify({ port: imap.port, user: address, password: PASSWORD })]);
  const out = JSON.parse(stdout);
  t.same(out.add, ['OK', '1 (FLAGS (\\Flagged \\Seen))', '2 (FLAGS (\\Flagged \\Seen))']);
  t.same(out.uid, ['OK', '2 (FLAGS (\\Seen) UID 3)']);
  t.same(out.silent, ['OK', 'None']);
  t.match(out.recent, /STORE command error: BAD .*Recent cannot be stored/);
  t.same(await flagsOf(accountId, inbox), { 2: ['\\Flagged', '\\Seen'], 3: ['\\Draft'] });
});
