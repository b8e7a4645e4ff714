import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { LineClient, run, until } from '../helpers/line-client.js';
import { ACTOR, PASSWORD, startTestImap } from '../helpers/imap.js';

const imap = await startTestImap(t, { limits: { maxBadCommands: 100 } });
const mail = imap.services.mail;

let mailboxes = 0;
/**
 * A fresh mailbox whose INBOX holds `count` messages with UIDs 2..count+1 (UID 1 is expunged
 * first, so sequence numbers and UIDs differ by one); those in `deleted` (by UID) are \Deleted.
 */
async function freshMailbox(count: number, deleted: number[] = []) {
  const address = `user${++mailboxes}@expunge.test`;
  const accountId = await imap.mailbox(address);
  const inbox = (await mail.folders.get(accountId, 'INBOX')).id;
  await mail.append(accountId, 'INBOX', Buffer.from('Subject: gone\r\n\r\nx\r\n'), { flags: ['\\Deleted'] });
  await mail.expunge(accountId, inbox);
  for (let i = 1; i <= count; i++) {
    await mail.append(accountId, 'INBOX', Buffer.from(`Subject: ${i}\r\n\r\nbody ${i}\r\n`), {
      flags: deleted.includes(i + 1) ? ['\\Deleted'] : [],
    });
  }
  return { address, accountId, inbox };
}

async function uidsOf(accountId: number, inbox: number): Promise<number[]> {
  return (await mail.list(accountId, inbox)).map((m) => m.uid);
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

t.test('EXPUNGE: one untagged EXPUNGE per message, numbered after the ones before it', async (t) => {
  // RFC 3501 §6.4.3's example: messages 3, 4, 7 and 11 of 11 are \Deleted.
  const { address, accountId, inbox } = await freshMailbox(11, [4, 5, 8, 12]);
  const client = await connect(address);
  t.same(await run(client, 'a1 EXPUNGE'), ['* 3 EXPUNGE', '* 3 EXPUNGE', '* 5 EXPUNGE', '* 8 EXPUNGE', 'a1 OK EXPUNGE completed']);
  t.same(await uidsOf(accountId, inbox), [2, 3, 6, 7, 9, 10, 11]);
  t.same(await run(client, 'a2 UID SEARCH ALL'), ['* SEARCH 2 3 6 7 9 10 11', 'a2 OK UID SEARCH completed']);
  t.same(await run(client, 'a3 SEARCH UID 9:*'), ['* SEARCH 5 6 7', 'a3 OK SEARCH completed'], 'the view was renumbered');
  t.same(await run(client, 'a4 EXPUNGE'), ['a4 OK EXPUNGE completed'], 'nothing more to expunge');
  await settle();
  t.same(await run(client, 'a5 NOOP'), ['a5 OK NOOP completed'], 'not told twice by the sync');
  t.equal((await imap.services.mailboxes.get(address, ACTOR)).value.usage.messages, 7);
});

t.test('UID EXPUNGE: only the \\Deleted messages among the UIDs given', async (t) => {
  const { address, accountId, inbox } = await freshMailbox(5, [3, 4, 6]);
  const client = await connect(address);
  t.same(await run(client, 'b1 UID EXPUNGE 4:5,2'), ['* 3 EXPUNGE', 'b1 OK UID EXPUNGE completed']);
  t.same(await uidsOf(accountId, inbox), [2, 3, 5, 6]);
  t.same(await run(client, 'b2 UID EXPUNGE 100:200'), ['b2 OK UID EXPUNGE completed']);
  t.same(await run(client, 'b3 UID EXPUNGE *'), ['* 4 EXPUNGE', 'b3 OK UID EXPUNGE completed']);
  t.same(await run(client, 'b4 UID EXPUNGE 1:*'), ['* 2 EXPUNGE', 'b4 OK UID EXPUNGE completed']);
  t.same(await uidsOf(accountId, inbox), [2, 5]);
});

t.test('EXPUNGE refusals and bad syntax', async (t) => {
  const { address, accountId, inbox } = await freshMailbox(2, [2, 3]);
  const reader = await connect(address, 'EXAMINE INBOX');
  t.same(await run(reader, 'r1 EXPUNGE'), ['r1 NO The folder is open read-only (EXAMINE); select it to change it']);
  t.same(await run(reader, 'r2 UID EXPUNGE 1:*'), ['r2 NO The folder is open read-only (EXAMINE); select it to change it']);
  t.same(await run(reader, 'r3 CLOSE'), ['r3 OK CLOSE completed'], 'CLOSE of a read-only folder expunges nothing');
  t.same(await uidsOf(accountId, inbox), [2, 3]);
  const client = await connect(address);
  for (const [i, command] of ['EXPUNGE 1', 'UID EXPUNGE', 'UID EXPUNGE x', 'UID EXPUNGE 0', 'CLOSE now', 'UNSELECT INBOX', 'CHECK 1'].entries()) {
    t.match(await run(client, `b${i} ${command}`), [new RegExp(`^b${i} BAD `)], command);
  }
  const before = await connect(address, null);
  for (const command of ['EXPUNGE', 'UID EXPUNGE 1', 'CLOSE', 'UNSELECT', 'CHECK']) {
    t.match(await run(before, `n ${command}`), [/^n BAD \w+ is not allowed now/], command);
  }
  t.same(await uidsOf(accountId, inbox), [2, 3]);
});

t.test('messages this session has not seen are expunged without a word; another device hears at once', async (t) => {
  const { address, accountId, inbox } = await freshMailbox(3, [3]);
  const client = await connect(address);
  const other = await connect(address);
  const probe = await connect(address);
  // Arrives \Deleted after the SELECT: the client never learnt of it.
  await mail.append(accountId, 'INBOX', Buffer.from('Subject: late\r\n\r\nx\r\n'), { flags: ['\\Deleted'] });
  const answer = await run(client, 'c1 EXPUNGE');
  t.same(answer, ['* 2 EXPUNGE', 'c1 OK EXPUNGE completed']);
  await settle();
  t.same(await run(client, 'c2 NOOP'), ['c2 OK NOOP completed'], 'no EXISTS for the vanished message');
  t.same(await uidsOf(accountId, inbox), [2, 4]);
  t.same(await until(other, (lines) => lines.length > 0), ['* 2 EXPUNGE']);
  // Both devices expunge the same message: each hears of it once.
  await mail.changeFlags(accountId, inbox, [4], 'add', ['\\Deleted']);
  await until(client, (lines) => lines.length > 0);
  await until(other, (lines) => lines.length > 0);
  await until(probe, (lines) => lines.some((line) => line.includes('FETCH')));
  t.same(await run(other, 'c3 EXPUNGE'), ['* 2 EXPUNGE', 'c3 OK EXPUNGE completed']);
  // Once the probe has heard, so has the client's session (one change feed per process).
  await until(probe, (lines) => lines.includes('* 2 EXPUNGE'));
  t.same(await run(client, 'c4 EXPUNGE'), ['* 2 EXPUNGE', 'c4 OK EXPUNGE completed'], 'told by the sync');
  t.same(await run(client, 'c5 SEARCH ALL'), ['* SEARCH 1', 'c5 OK SEARCH completed']);
});

t.test('CLOSE expunges silently and deselects; UNSELECT only deselects; CHECK syncs', async (t) => {
  const { address, accountId, inbox } = await freshMailbox(3, [2, 4]);
  const client = await connect(address);
  const probe = await connect(address, 'EXAMINE INBOX');
  t.same(await run(client, 'd1 UNSELECT'), ['d1 OK UNSELECT completed']);
  t.match(await run(client, 'd2 SEARCH ALL'), [/^d2 BAD SEARCH is not allowed now/]);
  t.same(await uidsOf(accountId, inbox), [2, 3, 4]);
  await run(client, 'd3 SELECT INBOX');
  await imap.deliver(address, 'Subject: new\r\n\r\nnew\r\n');
  t.same(await until(client, (lines) => lines.length > 0), ['* 4 EXISTS', '* 1 RECENT']);
  await imap.deliver(address, 'Subject: newer\r\n\r\nnew\r\n');
  await until(probe, (lines) => lines.includes('* 5 EXISTS'));
  t.same(await run(client, 'd4 CHECK'), ['* 5 EXISTS', '* 2 RECENT', 'd4 OK CHECK completed']);
  t.same(await run(client, 'd5 CLOSE'), ['d5 OK CLOSE completed'], 'no untagged EXPUNGE');
  t.same(await uidsOf(accountId, inbox), [3, 5, 6]);
  t.match(await run(client, 'd6 STORE 1 +FLAGS (\\Seen)'), [/^d6 BAD STORE is not allowed now/]);
  const reopened = await run(client, 'd7 SELECT INBOX');
  t.ok(reopened.includes('* 3 EXISTS'));
});

t.test('imapflow deletes messages and closes the folder', async (t) => {
  const { address, accountId, inbox } = await freshMailbox(4);
  const client = imap.imapflow(address);
  await client.connect();
  t.teardown(() => client.close());
  await client.mailboxOpen('INBOX');
  const expunged: number[] = [];
  client.on('expunge', (event) => expunged.push(Number(event.seq)));
  t.equal(await client.messageDelete('2'), true);
  t.same(expunged, [2]);
  t.equal(client.mailbox && client.mailbox.exists, 3);
  t.same(await uidsOf(accountId, inbox), [2, 4, 5]);
  await mail.changeFlags(accountId, inbox, [5], 'add', ['\\Deleted']);
  t.equal(await client.messageDelete({ uid: '4' }, { uid: true }), true);
  t.same(await uidsOf(accountId, inbox), [2, 5], 'UID EXPUNGE took only UID 4 although UID 5 is \\Deleted too');
  t.same(expunged, [2, 2]);
  await client.mailboxClose();
  t.same(await uidsOf(accountId, inbox), [2], 'CLOSE expunged the rest');
});

const IMAPLIB = `
import imaplib, json, sys
plan = json.loads(sys.argv[1])
client = imaplib.IMAP4("127.0.0.1", plan["port"])
client.login(plan["user"], plan["password"])
client.select("INBOX")
out = {}
client.store("2:3", "+FLAGS", "(\\\\Deleted)")
typ, data = client.expunge()
out["expunge"] = [typ, [d.decode() for d in data if d]]
out["check"] = client.check()[0]
client.store("1", "+FLAGS", "(\\\\Deleted)")
out["close"] = client.close()[0]
out["state"] = client.state
client.logout()
print(json.dumps(out))
`;

t.test("Python's imaplib expunges, checks and closes", async (t) => {
  const { address, accountId, inbox } = await freshMailbox(4);
  const { stdout } = await promisify(execFile)('python3', ['-c', IMAPLIB, JSON.stringify({ port: imap.port, user: address, password: PASSWORD })]);
  t.same(JSON.parse(stdout), { expunge: ['OK', ['2', '2']], check: 'OK', close: 'OK', state: 'AUTH' });
  t.same(await uidsOf(accountId, inbox), [5]);
});
