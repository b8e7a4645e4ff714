import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { run } from '../helpers/line-client.js';
import { PASSWORD, startTestImap } from '../helpers/imap.js';

const imap = await startTestImap(t, { limits: { maxBadCommands: 100 } });
const mail = imap.services.mail;

let mailboxes = 0;
/** A fresh mailbox with 11 messages: 2, 10 and 11 \Flagged, and UID 1 expunged so UIDs are seq + 1. */
async function freshMailbox() {
  const address = `user${++mailboxes}@esearch.test`;
  const accountId = await imap.mailbox(address);
  const inbox = (await mail.folders.get(accountId, 'INBOX')).id;
  await mail.append(accountId, 'INBOX', Buffer.from('Subject: gone\r\n\r\nx\r\n'), { flags: ['\\Deleted'] });
  await mail.expunge(accountId, inbox);
  for (let i = 1; i <= 11; i++) {
    await mail.append(accountId, 'INBOX', Buffer.from(`Subject: ${i}\r\n\r\nbody ${i}\r\n`), {
      flags: [2, 10, 11].includes(i) ? ['\\Flagged'] : [],
    });
  }
  return { address, accountId, inbox };
}

t.test('ESEARCH is advertised; RFC 4731 examples', async (t) => {
  const { address } = await freshMailbox();
  const client = await imap.login(address);
  t.match((await run(client, 'c1 CAPABILITY'))[0], / ESEARCH( |$)/);
  await run(client, 's1 SELECT INBOX');
  t.same(await run(client, 'A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"'), [
    '* ESEARCH (TAG "A282") MIN 2 COUNT 3',
    'A282 OK SEARCH completed',
  ]);
  t.same(await run(client, 'A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"'), [
    '* ESEARCH (TAG "A283") ALL 2,10:11',
    'A283 OK SEARCH completed',
  ]);
  t.same(await run(client, 'A284 SEARCH RETURN (MIN) DRAFT'), ['* ESEARCH (TAG "A284")', 'A284 OK SEARCH completed'], 'no match: no MIN');
  t.same(await run(client, 'A285 UID SEARCH RETURN (MIN MAX) 1:5000'), ['* ESEARCH (TAG "A285") UID MIN 2 MAX 12', 'A285 OK UID SEARCH completed']);
  t.same(await run(client, 'A286 SEARCH RETURN (ALL COUNT MAX MIN) UNFLAGGED'), [
    '* ESEARCH (TAG "A286") MIN 1 MAX 9 COUNT 8 ALL 1,3:9',
    'A286 OK SEARCH completed',
  ]);
  t.same(await run(client, 'A287 UID SEARCH RETURN (COUNT ALL) DRAFT'), ['* ESEARCH (TAG "A287") UID COUNT 0', 'A287 OK UID SEARCH completed']);
  t.same(await run(client, 'A288 UID SEARCH RETURN (ALL) CHARSET UTF-8 FLAGGED'), ['* ESEARCH (TAG "A288") UID ALL 3,11:12', 'A288 OK UID SEARCH completed']);
  t.same(await run(client, 'A289 SEARCH FLAGGED'), ['* SEARCH 2 10 11', 'A289 OK SEARCH completed'], 'plain SEARCH as before');
});

t.test('ESEARCH with MODSEQ (RFC 7162 §3.1.5): over all matches, or over MIN and MAX alone', async (t) => {
  const { address, accountId, inbox } = await freshMailbox();
  const client = await imap.login(address);
  await run(client, 's1 SELECT INBOX');
  await run(client, 'a1 STORE 5 +FLAGS (\\Seen)');
  await run(client, 'a2 STORE 1 +FLAGS (\\Seen)');
  const modseq = new Map((await mail.list(accountId, inbox)).map((m) => [m.uid, m.modseq]));
  t.same(await run(client, 'b1 SEARCH RETURN (COUNT) MODSEQ 2 SEEN'), [`* ESEARCH (TAG "b1") COUNT 2 MODSEQ ${modseq.get(2)}`, 'b1 OK SEARCH completed']);
  t.same(await run(client, 'b2 SEARCH RETURN (MAX) MODSEQ 2 SEEN'), [`* ESEARCH (TAG "b2") MAX 5 MODSEQ ${modseq.get(6)}`, 'b2 OK SEARCH completed']);
  t.same(await run(client, 'b3 SEARCH RETURN (ALL) MODSEQ 1000 SEEN'), ['* ESEARCH (TAG "b3")', 'b3 OK SEARCH completed']);
});

t.test('bad RETURN options are BAD', async (t) => {
  const { address } = await freshMailbox();
  const client = await imap.login(address);
  await run(client, 's1 SELECT INBOX');
  for (const bad of ['RETURN (MIN', 'RETURN MIN ALL', 'RETURN (SOON) ALL', 'RETURN ((MIN)) ALL', 'RETURN']) {
    t.match((await run(client, `x1 SEARCH ${bad}`)).at(-1), /^x1 BAD /, bad);
  }
});

t.test('SEARCHRES (RFC 5182): RETURN (SAVE) keeps the result for `$`', async (t) => {
  const { address } = await freshMailbox();
  const client = await imap.login(address);
  t.match((await run(client, 'c1 CAPABILITY'))[0], / SEARCHRES( |$)/);
  await run(client, 's1 SELECT INBOX');
  t.same(await run(client, 'a1 SEARCH RETURN (SAVE) FLAGGED'), ['a1 OK SEARCH completed'], 'SAVE alone: no ESEARCH');
  t.same(await run(client, 'a2 FETCH $ (UID)'), ['* 2 FETCH (UID 3)', '* 10 FETCH (UID 11)', '* 11 FETCH (UID 12)', 'a2 OK FETCH completed']);
  t.same(await run(client, 'a3 UID SEARCH RETURN (ALL) UID $ NOT 10'), ['* ESEARCH (TAG "a3") UID ALL 3,12', 'a3 OK UID SEARCH completed']);
  t.same(await run(client, 'a4 SEARCH $'), ['* SEARCH 2 10 11', 'a4 OK SEARCH completed']);
  t.same(await run(client, 'a5 UID STORE $ +FLAGS.SILENT (\\Deleted)'), ['a5 OK UID STORE completed']);
  t.same(await run(client, 'a6 SEARCH RETURN (SAVE MIN COUNT) DELETED'), ['* ESEARCH (TAG "a6") MIN 2 COUNT 3', 'a6 OK SEARCH completed']);
  t.same(await run(client, 'a7 SEARCH RETURN (SAVE MIN) DELETED'), ['* ESEARCH (TAG "a7") MIN 2', 'a7 OK SEARCH completed']);
  t.same(await run(client, 'a8 UID EXPUNGE $'), ['* 2 EXPUNGE', 'a8 OK UID EXPUNGE completed'], 'only the MIN was saved');
  t.same(await run(client, 'a9 FETCH $ (UID)'), ['a9 OK FETCH completed'], 'an expunged message leaves `$`');
  await run(client, 'b1 SEARCH RETURN (SAVE) ALL');
  t.match(await run(client, 'b2 SEARCH RETURN (SAVE) CHARSET KOI8-R ALL'), [/^b2 NO \[BADCHARSET/]);
  t.same(await run(client, 'b3 SEARCH $'), ['* SEARCH', 'b3 OK SEARCH completed'], 'a failed SAVE empties `$`');
  await run(client, 'b4 SEARCH RETURN (SAVE) ALL');
  await run(client, 'b5 SELECT INBOX');
  t.same(await run(client, 'b6 SEARCH $'), ['* SEARCH', 'b6 OK SEARCH completed'], 'SELECT empties `$`');
  t.match((await run(client, 'b7 FETCH $,1 (UID)')).at(-1), /^b7 BAD /, '`$` stands alone');
});

const IMAPLIB = `
import imaplib, json, sys
plan = json.loads(sys.argv[1])
client = imaplib.IMAP4("127.0.0.1", plan["port"])
client.login(plan["user"], plan["password"])
client.select("INBOX")
out = []
for command in (("SEARCH", "RETURN", "(MIN MAX COUNT)", "FLAGGED"), ("UID", "SEARCH", "RETURN", "()", "ALL")):
    typ, data = client._simple_command(*command)
    out.append([typ, [line.decode() for line in client.untagged_responses.pop("ESEARCH", [])]])
client.logout()
print(json.dumps(out))
`;

t.test("Python's imaplib reads ESEARCH answers", async (t) => {
  const { address } = await freshMailbox();
  const { stdout } = await promisify(execFile)('python3', ['-c', IMAPLIB, JSON.stringify({ port: imap.port, user: address, password: PASSWORD })]);
  const [flagged, all] = JSON.parse(stdout) as [string, string[]][];
  t.equal(flagged![0], 'OK');
  t.match(flagged![1], [/^\(TAG "\w+"\) MIN 2 MAX 11 COUNT 3$/]);
  t.equal(all![0], 'OK');
  t.match(all![1], [/^\(TAG "\w+"\) UID ALL 2:12$/]);
});
