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
 * first, so sequence numbers and UIDs differ by one).
 */
async function freshMailbox(count: number, fields: Record<string, unknown> = {}) {
  const address = `user${++mailboxes}@copy.test`;
  const accountId = await imap.mailbox(address, fields);
  const inbox = (await mail.folders.get(accountId, 'INBOX')).id;
  await mail.append(accountId, 'INBOX', Buffer.from('Subject: gone\r\n\r\nx\r\n'), { flags: ['\\Deleted'] });
  await mail.expunge(accountId, inbox);
  for (let i = 1; i <= count; i++) {
    await mail.append(accountId, 'INBOX', Buffer.from(`Subject: message ${i}\r\n\r\nbody ${i}\r\n`), { flags: i === 1 ? ['\\Seen', '$Work'] : [] });
  }
  const archive = await mail.folders.get(accountId, 'Archive');
  return { address, accountId, inbox, archive };
}

async function subjects(accountId: number, folder: string): Promise<Record<number, string>> {
  const { id } = await mail.folders.get(accountId, folder);
  const list = await mail.list(accountId, id);
  const indexes = await mail.indexes(accountId, id, list.map((m) => m.uid));
  return Object.fromEntries(list.map((m) => [m.uid, indexes.get(m.uid)!.subject ?? '']));
}

async function usage(address: string) {
  return (await imap.services.mailboxes.get(address, ACTOR)).value.usage;
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

t.test('COPY answers COPYUID with compact sets; the copies keep flags and count against usage', async (t) => {
  const { address, accountId, archive } = await freshMailbox(5);
  const client = await connect(address);
  t.same(await run(client, 'a1 COPY 1:3,5 Archive'), [`a1 OK [COPYUID ${archive.uidValidity} 2:4,6 1:4] COPY completed`]);
  t.same(await subjects(accountId, 'Archive'), { 1: 'message 1', 2: 'message 2', 3: 'message 3', 4: 'message 5' });
  const copied = await mail.list(accountId, archive.id);
  t.same(copied[0]!.flags, ['$Work', '\\Seen']);
  t.same(await run(client, 'a2 UID COPY 6,3 Archive'), [`a2 OK [COPYUID ${archive.uidValidity} 3,6 5:6] UID COPY completed`]);
  t.same(await run(client, 'a3 UID COPY 50:60 Archive'), ['a3 OK UID COPY completed'], 'nothing to copy: no COPYUID');
  t.equal((await usage(address)).messages, 11);
  // The source view is unchanged.
  t.same(await run(client, 'a4 SEARCH ALL'), ['* SEARCH 1 2 3 4 5', 'a4 OK SEARCH completed']);
});

t.test('COPY into the selected folder shows the copies as EXISTS at once; EXAMINE may copy', async (t) => {
  const { address, accountId, inbox } = await freshMailbox(2);
  const client = await connect(address);
  const { uidValidity } = await mail.folders.get(accountId, 'INBOX');
  t.same(await run(client, 'b1 COPY 1:2 INBOX'), ['* 4 EXISTS', '* 4 RECENT', `b1 OK [COPYUID ${uidValidity} 2:3 4:5] COPY completed`]);
  const reader = await connect(address, 'EXAMINE INBOX');
  t.match(await run(reader, 'b2 COPY 1 Archive'), [/^b2 OK \[COPYUID \d+ 2 1\] COPY completed$/]);
  t.equal((await mail.list(accountId, inbox)).length, 4);
});

t.test('COPY failures: TRYCREATE, bad names, bad syntax; nothing copied', async (t) => {
  const { address, accountId } = await freshMailbox(2);
  const client = await connect(address);
  t.same(await run(client, 'c1 COPY 1 Nope'), ['c1 NO [TRYCREATE] There is no folder Nope']);
  t.same(await run(client, 'c2 UID MOVE 2 "Archive/Nope"'), ['c2 NO [TRYCREATE] There is no folder Archive/Nope']);
  t.match(await run(client, 'c3 COPY 1 "a//b"'), [/^c3 NO \[CANNOT\] /]);
  const bad = ['COPY', 'COPY 1', 'COPY 1 Archive extra', 'COPY x Archive', 'COPY 0 Archive', 'COPY 3 Archive', 'COPY 1 (Archive)', 'MOVE 1', 'MOVE 9 Archive', 'UID COPY'];
  for (const [i, command] of bad.entries()) {
    const answer = await run(client, `b${i} ${command}`);
    t.equal(answer.length, 1, `${command}: only the tagged answer`);
    t.match(answer[0], new RegExp(`^b${i} BAD `), command);
  }
  t.same(await subjects(accountId, 'Archive'), {});
  const before = await connect(address, null);
  t.match(await run(before, 'n1 COPY 1 Archive'), [/^n1 BAD COPY is not allowed now/]);
  t.match(await run(before, 'n2 MOVE 1 Archive'), [/^n2 BAD MOVE is not allowed now/]);
});

t.test('COPY over quota: NO [OVERQUOTA] and nothing copied; MOVE is not limited', async (t) => {
  const { address, accountId } = await freshMailbox(3, { quota: { storageBytes: null, messages: 4 } });
  const client = await connect(address);
  t.match(await run(client, 'q1 COPY 1:2 Archive'), [/^q1 NO \[OVERQUOTA\] /]);
  t.same(await subjects(accountId, 'Archive'), {});
  t.equal((await usage(address)).messages, 3);
  t.match(await run(client, 'q2 COPY 1 Archive'), [/^q2 OK \[COPYUID \d+ 2 1\]/], 'one more fits');
  t.match(await run(client, 'q3 MOVE 2:3 Archive'), ['* OK [COPYUID', '* 2 EXPUNGE', '* 2 EXPUNGE', 'q3 OK MOVE completed'], 'full, and moving still works');
  t.equal((await usage(address)).messages, 4);
});

t.test('MOVE: untagged COPYUID, then EXPUNGE renumbering the view; others see it', async (t) => {
  const { address, accountId, archive } = await freshMailbox(5);
  const client = await connect(address);
  const other = await connect(address);
  const watcher = await connect(address, 'SELECT Archive');
  t.same(await run(client, 'm1 MOVE 2:3,5 Archive'), [
    `* OK [COPYUID ${archive.uidValidity} 3:4,6 1:3] Moved`,
    '* 2 EXPUNGE',
    '* 2 EXPUNGE',
    '* 3 EXPUNGE',
    'm1 OK MOVE completed',
  ]);
  t.same(await run(client, 'm2 UID SEARCH ALL'), ['* SEARCH 2 5', 'm2 OK UID SEARCH completed']);
  t.same(await run(client, 'm3 SEARCH ALL'), ['* SEARCH 1 2', 'm3 OK SEARCH completed']);
  t.same(await subjects(accountId, 'INBOX'), { 2: 'message 1', 5: 'message 4' });
  t.same(await subjects(accountId, 'Archive'), { 1: 'message 2', 2: 'message 3', 3: 'message 5' });
  const seen = await until(other, (lines) => lines.length >= 3);
  t.same(seen, ['* 2 EXPUNGE', '* 2 EXPUNGE', '* 3 EXPUNGE']);
  const arrived = await until(watcher, (lines) => lines.some((l) => l.endsWith('EXISTS')));
  t.same(arrived, ['* 3 EXISTS', '* 3 RECENT']);
  // UID MOVE, then the rest with 1:*.
  t.same(await run(client, 'm4 UID MOVE 5 Archive'), [`* OK [COPYUID ${archive.uidValidity} 5 4] Moved`, '* 2 EXPUNGE', 'm4 OK UID MOVE completed']);
  t.same(await run(client, 'm5 MOVE 1:* Trash'), [
    `* OK [COPYUID ${(await mail.folders.get(accountId, 'Trash')).uidValidity} 2 1] Moved`,
    '* 1 EXPUNGE',
    'm5 OK MOVE completed',
  ]);
  t.same(await run(client, 'm6 UID MOVE 1:* Archive'), ['m6 OK UID MOVE completed'], 'an empty folder: nothing moved');
  t.equal((await usage(address)).messages, 5, 'usage unchanged by moves');
});

t.test('MOVE refusals: read-only, the same folder, missing folder', async (t) => {
  const { address, accountId } = await freshMailbox(2);
  const reader = await connect(address, 'EXAMINE INBOX');
  t.same(await run(reader, 'r1 MOVE 1 Archive'), ['r1 NO The folder is open read-only (EXAMINE); select it to change it']);
  const client = await connect(address);
  t.match(await run(client, 'r2 MOVE 1 inbox'), [/^r2 NO \[CANNOT\] /]);
  t.same(await run(client, 'r3 MOVE 1 Nope'), ['r3 NO [TRYCREATE] There is no folder Nope']);
  t.same(await subjects(accountId, 'INBOX'), { 2: 'message 1', 3: 'message 2' });
  t.same(await run(client, 'r4 SEARCH ALL'), ['* SEARCH 1 2', 'r4 OK SEARCH completed']);
});

t.test('folder names in modified UTF-7', async (t) => {
  const { address, accountId } = await freshMailbox(1);
  await mail.folders.create(accountId, 'Entw\u00fcrfe');
  const client = await connect(address);
  t.match(await run(client, 'u1 COPY 1 "Entw&APw-rfe"'), [/^u1 OK \[COPYUID \d+ 2 1\] COPY completed$/]);
  t.same(await subjects(accountId, 'Entw\u00fcrfe'), { 1: 'message 1' });
});

t.test('imapflow copies and moves', async (t) => {
  const { address, accountId, archive } = await freshMailbox(4);
  const client = imap.imapflow(address);
  await client.connect();
  t.teardown(() => client.close());
  await client.mailboxOpen('INBOX');
  const copied = await client.messageCopy('1:2', 'Archive');
  t.ok(copied);
  if (copied) {
    t.equal(copied.destination, 'Archive');
    t.equal(Number(copied.uidValidity), archive.uidValidity);
    t.same([...copied.uidMap!.entries()], [[2, 1], [3, 2]]);
  }
  const moved = await client.messageMove({ uid: '4:5' }, 'Trash');
  t.ok(moved);
  if (moved) t.same([...moved.uidMap!.entries()], [[4, 1], [5, 2]]);
  t.equal(client.mailbox && client.mailbox.exists, 2, 'imapflow followed the EXPUNGEs');
  t.same(await client.search({ all: true }, { uid: true }), [2, 3]);
  t.same(await subjects(accountId, 'Trash'), { 1: 'message 3', 2: 'message 4' });
  t.equal(await client.messageCopy('1', 'Nope'), false, 'TRYCREATE: imapflow answers false');
});

const IMAPLIB = `
import imaplib, json, sys
plan = json.loads(sys.argv[1])
client = imaplib.IMAP4("127.0.0.1", plan["port"])
client.login(plan["user"], plan["password"])
client.select("INBOX")
out = {}
typ, data = client.copy("1:2", "Archive")
out["copy"] = [typ, data[0].decode()]
typ, data = client.uid("MOVE", "3", "Trash")
out["move"] = [typ, [d.decode() for d in client.response("EXPUNGE")[1] if d]]
typ, data = client.copy("1", "Nope")
out["trycreate"] = [typ, data[0].decode()]
typ, data = client.search(None, "ALL")
out["left"] = data[0].decode()
client.logout()
print(json.dumps(out))
`;

t.test("Python's imaplib copies and moves", async (t) => {
  const { address, archive, accountId } = await freshMailbox(2);
  const trash = await mail.folders.get(accountId, 'Trash');
  const { stdout } = await promisify(execFile)('python3', ['-c', IMAPLIB, JSON.stringify({ port: imap.port, user: address, password: PASSWORD })]);
  const out = JSON.parse(stdout);
  t.same(out.copy, ['OK', `[COPYUID ${archive.uidValidity} 2:3 1:2] COPY completed`]);
  t.same(out.move, ['OK', ['2']]);
  t.same(out.trycreate, ['NO', '[TRYCREATE] There is no folder Nope']);
  t.equal(out.left, '1');
  t.same(await subjects(accountId, 'Trash'), { 1: 'message 2' });
  t.ok(trash.uidValidity > 0);
});
