import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { run, until } from '../helpers/line-client.js';
import { PASSWORD, startTestImap } from '../helpers/imap.js';

/**
 * \Recent (RFC 3501 §2.3.2): a message is \Recent in exactly one session, the first to SELECT its
 * folder (or to be told of it there) after it arrived; EXAMINE looks without taking it.
 */
const imap = await startTestImap(t);
const MESSAGE = 'From: a@example.org\r\nSubject: hello\r\n\r\nHello\r\n';

let mailboxes = 0;
/** A mailbox whose INBOX holds `count` messages no session has seen. */
async function freshMailbox(count: number): Promise<{ address: string; accountId: number }> {
  const address = `user${++mailboxes}@recent.test`;
  const accountId = await imap.mailbox(address);
  for (let i = 0; i < count; i++) await imap.deliver(address, MESSAGE);
  return { address, accountId };
}

const recentOf = (answer: string[]) => answer.find((line) => / RECENT$/.test(line));

t.test('the first SELECT takes \\Recent; a second session and a second SELECT get none', async (t) => {
  const { address } = await freshMailbox(2);
  const first = await imap.login(address);
  const second = await imap.login(address);
  t.equal(recentOf(await run(first, 's1 SELECT INBOX')), '* 2 RECENT');
  t.same(await run(first, 'f1 FETCH 1:* FLAGS'), ['* 1 FETCH (FLAGS (\\Recent))', '* 2 FETCH (FLAGS (\\Recent))', 'f1 OK FETCH completed']);
  t.same(await run(first, 'f2 SEARCH RECENT'), ['* SEARCH 1 2', 'f2 OK SEARCH completed']);
  await run(first, 'f3 STORE 1 +FLAGS.SILENT (\\Seen)');
  t.same(await run(first, 'f4 SEARCH NEW'), ['* SEARCH 2', 'f4 OK SEARCH completed'], 'NEW: recent and unseen');
  t.same(await run(first, 'f5 SEARCH OLD'), ['* SEARCH', 'f5 OK SEARCH completed']);
  t.same(await run(first, 'f6 FETCH 1 FLAGS'), ['* 1 FETCH (FLAGS (\\Seen \\Recent))', 'f6 OK FETCH completed']);

  t.equal(recentOf(await run(second, 's2 SELECT INBOX')), '* 0 RECENT');
  t.same(await run(second, 'g1 FETCH 2 FLAGS'), ['* 2 FETCH (FLAGS ())', 'g1 OK FETCH completed']);
  t.same(await run(second, 'g2 SEARCH OLD'), ['* SEARCH 1 2', 'g2 OK SEARCH completed']);
  t.equal(recentOf(await run(first, 's3 SELECT INBOX')), '* 0 RECENT', 'claimed for good, even by its own session');
});

t.test('EXAMINE shows \\Recent without taking it; STATUS counts what nobody has claimed', async (t) => {
  const { address } = await freshMailbox(3);
  const reader = await imap.login(address);
  const writer = await imap.login(address);
  t.same(await run(writer, 't1 STATUS INBOX (RECENT MESSAGES)'), ['* STATUS "INBOX" (RECENT 3 MESSAGES 3)', 't1 OK STATUS completed']);
  t.equal(recentOf(await run(reader, 'e1 EXAMINE INBOX')), '* 3 RECENT');
  t.same(await run(reader, 'e2 FETCH 3 FLAGS'), ['* 3 FETCH (FLAGS (\\Recent))', 'e2 OK FETCH completed']);
  t.same(await run(reader, 'e3 STATUS INBOX (RECENT)'), ['* STATUS "INBOX" (RECENT 3)', 'e3 OK STATUS completed'], 'examined: not counted twice');
  t.equal(recentOf(await run(writer, 's1 SELECT INBOX')), '* 3 RECENT', 'EXAMINE took nothing');
  t.same(await run(writer, 't2 STATUS INBOX (RECENT)'), ['* STATUS "INBOX" (RECENT 3)', 't2 OK STATUS completed'], 'its own, selected');
  t.same(await run(reader, 'e4 STATUS INBOX (RECENT)'), ['* STATUS "INBOX" (RECENT 0)', 'e4 OK STATUS completed']);
  // New mail: the examining session shows it \Recent while nobody has claimed it.
  await imap.deliver(address, MESSAGE);
  t.same(await until(reader, (lines) => lines.includes('* 4 EXISTS')), ['* 4 EXISTS', '* 4 RECENT']);
  t.same(await until(writer, (lines) => lines.includes('* 4 EXISTS')), ['* 4 EXISTS', '* 4 RECENT'], 'three from SELECT, one now');
  t.equal(recentOf(await run(reader, 'e5 EXAMINE INBOX')), '* 0 RECENT');
});

t.test('new mail is \\Recent in the session told of it first, and only there', async (t) => {
  const { address } = await freshMailbox(0);
  const one = await imap.login(address);
  const two = await imap.login(address);
  await run(one, 's1 SELECT INBOX');
  await run(two, 's2 SELECT INBOX');
  await imap.deliver(address, MESSAGE);
  t.same(await until(one, (lines) => lines.includes('* 1 EXISTS')), ['* 1 EXISTS', '* 1 RECENT']);
  t.same(await until(two, (lines) => lines.includes('* 1 EXISTS')), ['* 1 EXISTS'], 'no RECENT: its count did not change');
  t.same(await run(two, 'f1 FETCH 1 FLAGS'), ['* 1 FETCH (FLAGS ())', 'f1 OK FETCH completed']);
  t.same(await run(one, 'f2 FETCH 1 FLAGS'), ['* 1 FETCH (FLAGS (\\Recent))', 'f2 OK FETCH completed']);
  // An expunged message takes its \Recent with it.
  await run(one, 'f3 STORE 1 +FLAGS.SILENT (\\Deleted)');
  t.same(await run(one, 'f4 EXPUNGE'), ['* 1 EXPUNGE', 'f4 OK EXPUNGE completed']);
  await imap.deliver(address, MESSAGE);
  t.same(await until(one, (lines) => lines.includes('* 1 EXISTS')), ['* 1 EXISTS', '* 1 RECENT']);
  t.same(await run(one, 'f5 UID SEARCH RECENT'), ['* SEARCH 2', 'f5 OK UID SEARCH completed']);
});

t.test('sessions selecting at once share the new mail out: each message \\Recent once', async (t) => {
  const { address } = await freshMailbox(6);
  const clients = await Promise.all(Array.from({ length: 5 }, () => imap.login(address)));
  const answers = await Promise.all(clients.map((client, i) => run(client, `s${i} SELECT INBOX`)));
  const counts = answers.map((answer) => Number(/^\* (\d+) RECENT$/.exec(recentOf(answer) ?? '')?.[1]));
  t.equal(counts.reduce((sum, n) => sum + n, 0), 6, `counts ${counts.join(', ')}`);
  t.equal(counts.filter((n) => n > 0).length, 1, 'one session took them all');
});

t.test("Python's imaplib reads the RECENT count of SELECT", async (t) => {
  const { address } = await freshMailbox(2);
  const script = `
import imaplib, json, sys
args = json.loads(sys.argv[1])
client = imaplib.IMAP4("127.0.0.1", args["port"])
client.login(args["user"], args["password"])
client.select("INBOX")
first = client.response("RECENT")[1]
client.select("INBOX")
again = client.response("RECENT")[1]
client.logout()
print(json.dumps({"first": first[0].decode(), "again": again[0].decode()}))
`;
  const { stdout } = await promisify(execFile)('python3', ['-c', script, JSON.stringify({ port: imap.port, user: address, password: PASSWORD })]);
  t.same(JSON.parse(stdout), { first: '2', again: '0' });
});
