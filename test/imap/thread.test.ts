import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { run } from '../helpers/line-client.js';
import { PASSWORD, startTestImap } from '../helpers/imap.js';

const imap = await startTestImap(t, { limits: { maxBadCommands: 100 } });
const mail = imap.services.mail;

interface Message {
  id?: string;
  references?: string;
  inReplyTo?: string;
  subject?: string;
  /** Minutes after 2026-01-01 00:00 UTC; none: no Date header (the internal date counts). */
  minute?: number;
  /** The internal date, in the same minutes; by default 10,000 minutes later than any Date. */
  arrived?: number;
}

const at = (minute: number) => new Date(Date.UTC(2026, 0, 1) + minute * 60_000);

// One mailbox and one session, a folder per case: a mailbox each would cost an argon2 hash and a login each.
const ADDRESS = 'reader@thread.test';
const accountId = await imap.mailbox(ADDRESS);
const client = await imap.login(ADDRESS);
let folders = 0;

/**
 * A new folder holding `messages` in this order (sequence numbers 1…), selected. `shifted`: a
 * message is expunged first, so each UID is its sequence number + 1.
 */
async function folder(messages: Message[], shifted = false): Promise<string> {
  const name = `case${++folders}`;
  const { id } = await mail.folders.create(accountId, name);
  if (shifted) {
    await mail.append(accountId, name, Buffer.from('Subject: gone\r\n\r\nx\r\n'), { flags: ['\\Deleted'] });
    await mail.expunge(accountId, id);
  }
  for (const [i, m] of messages.entries()) {
    const header = [
      m.subject === undefined ? null : `Subject: ${m.subject}`,
      m.id === undefined ? null : `Message-ID: <${m.id}@thread.test>`,
      m.references === undefined ? null : `References: ${m.references}`,
      m.inReplyTo === undefined ? null : `In-Reply-To: ${m.inReplyTo}`,
      m.minute === undefined ? null : `Date: ${at(m.minute).toUTCString()}`,
    ].filter((line) => line !== null);
    await mail.append(accountId, name, Buffer.from(`${header.join('\r\n')}\r\n\r\nmessage ${i + 1}\r\n`), {
      internalDate: at(m.arrived ?? 10_000 + i),
    });
  }
  const selected = await run(client, `s1 SELECT ${name}`);
  if (selected.at(-1)?.startsWith('s1 OK') !== true) throw new Error(selected.join('\n'));
  return name;
}

const refs = (...ids: string[]) => ids.map((id) => `<${id}@thread.test>`).join(' ');

/** The THREAD answer's data for the selected folder, after checking the command completed. */
async function threads(command: string): Promise<string> {
  const answer = await run(client, `t1 ${command}`);
  if (answer.at(-1) !== `t1 OK ${command.startsWith('UID') ? 'UID THREAD' : 'THREAD'} completed`) throw new Error(answer.join('\n'));
  return answer[0]!;
}

// The RFC 5256 §5 example, `(2)(3 6 (4 23)(44 7 96))`, with sequence numbers 1…8 for 2, 3, 6, 4, 23, 44, 7, 96.
const EXAMPLE: Message[] = [
  { id: 'm2', subject: 'one', minute: 1 },
  { id: 'm3', subject: 'two', minute: 2 },
  { id: 'm6', subject: 'Re: two', references: refs('m3'), minute: 3 },
  { id: 'm4', subject: 'Re: two', references: refs('m3', 'm6'), minute: 4 },
  { id: 'm23', subject: 'Re: two', references: refs('m3', 'm6', 'm4'), minute: 5 },
  { id: 'm44', subject: 'Re: two', references: refs('m3', 'm6'), minute: 6 },
  { id: 'm7', subject: 'Re: two', references: refs('m3', 'm6', 'm44'), minute: 7 },
  { id: 'm96', subject: 'Re: two', references: refs('m3', 'm6', 'm44', 'm7'), minute: 8 },
];

t.test('THREAD=REFERENCES: the RFC 5256 example tree, by sequence number and by UID', async (t) => {
  await folder(EXAMPLE, true);
  t.equal(await threads('THREAD REFERENCES UTF-8 ALL'), '* THREAD (1)(2 3 (4 5)(6 7 8))');
  t.equal(await threads('UID THREAD REFERENCES US-ASCII ALL'), '* THREAD (2)(3 4 (5 6)(7 8 9))');
});

t.test('THREAD=ORDEREDSUBJECT: one thread per base subject, the rest children of its first message', async (t) => {
  await folder([
    ...EXAMPLE,
    { subject: 'Fwd: one', minute: 0 },
    { subject: '[list] zebra', minute: 9 },
    { subject: 'Re: ZEBRA', minute: 10 },
  ]);
  // ONE: 9 (minute 0), then 1; TWO: 2…8; ZEBRA: 10, 11. Threads go by their first message's date.
  t.equal(await threads('THREAD ORDEREDSUBJECT UTF-8 ALL'), '* THREAD (9 1)(2 (3)(4)(5)(6)(7)(8))(10 11)');
  t.equal(await threads('THREAD ORDEREDSUBJECT UTF-8 NOT 9'), '* THREAD (1)(2 (3)(4)(5)(6)(7)(8))(10 11)', 'with search criteria');
});

t.test('REFERENCES: missing parents become dummies, kept only where they join several threads at the top', async (t) => {
  await folder([
    { id: 'a', subject: 'Re: lost', references: refs('x'), minute: 1 },
    { id: 'b', subject: 'Re: lost', references: refs('x'), minute: 2 },
  ]);
  t.equal(await threads('THREAD REFERENCES UTF-8 ALL'), '* THREAD ((1)(2))', 'two replies to a missing message');
  await folder([{ id: 'a', subject: 'Re: lost', references: refs('x'), minute: 1 }]);
  t.equal(await threads('THREAD REFERENCES UTF-8 ALL'), '* THREAD (1)', 'one reply: the dummy goes');
  await folder([
    { id: 'a', subject: 'start', minute: 1 },
    { id: 'c', subject: 'Re: start', references: refs('a', 'm'), minute: 2 },
  ]);
  t.equal(await threads('THREAD REFERENCES UTF-8 ALL'), '* THREAD (1 2)', 'a missing message in the middle of a chain');
});

t.test('REFERENCES: links from References, In-Reply-To, cut-short chains; no loops, no duplicate IDs', async (t) => {
  await folder([
    { id: 'a', subject: 'p', minute: 1 },
    { id: 'b', subject: 'q', references: refs('a'), minute: 2 },
    { id: 'c', subject: 'r', references: refs('b'), minute: 3 },
    { id: 'd', subject: 's', inReplyTo: refs('c'), minute: 4 },
  ]);
  t.equal(await threads('THREAD REFERENCES UTF-8 ALL'), '* THREAD (1 2 3 4)', 'each message names only its parent');
  await folder([
    { id: 'a', subject: 'p', minute: 5 },
    { id: 'b', subject: 'q', references: refs('a'), minute: 7 },
    { id: 'c', subject: 'r', references: refs('a'), minute: 6 },
    { id: 'z', subject: 'z' },
  ]);
  // Children by sent date (3 before 2); message 4 has no Date: its internal date (later) counts.
  t.equal(await threads('THREAD REFERENCES UTF-8 ALL'), '* THREAD (1 (3)(2))(4)');
  await folder([
    { id: 'a', subject: 'first', minute: 1 },
    { id: 'a', subject: 'copy', minute: 2 },
    { id: 'c', subject: 'reply', references: refs('a'), minute: 3 },
  ]);
  t.equal(await threads('THREAD REFERENCES UTF-8 ALL'), '* THREAD (1 3)(2)', 'the first message keeps the ID');
  await folder([
    { id: 'a', subject: 'p', references: refs('b'), minute: 1 },
    { id: 'b', subject: 'q', references: refs('a'), minute: 2 },
  ]);
  t.equal(await threads('THREAD REFERENCES UTF-8 ALL'), '* THREAD (2 1)', 'the link that would close a loop is not made');
  await folder([
    { id: 'a', subject: 'p', minute: 1 },
    { id: 'b', subject: 'q', minute: 2 },
    { id: 'c', subject: 'r', references: refs('a', 'x'), minute: 3 },
    { id: 'x', subject: 's', references: refs('b'), minute: 4 },
  ]);
  // c's References put x (unknown then) under a, and c under x; x's own say b: its own parent wins (1B), c comes along.
  t.equal(await threads('THREAD REFERENCES UTF-8 ALL'), '* THREAD (1)(2 4 3)');
});

t.test('REFERENCES: threads of one base subject are gathered (step 5)', async (t) => {
  await folder([
    { id: 'a', subject: 'hello', minute: 1 },
    { id: 'b', subject: 'Re: hello', minute: 2 },
    { id: 'c', subject: 'Hello', minute: 3 },
    { id: 'd', subject: 'other', minute: 4 },
    { id: 'e', subject: '', minute: 5 },
    { id: 'f', minute: 6 },
  ]);
  // A reply goes under the original; two originals under a new dummy; empty subjects are never gathered.
  t.equal(await threads('THREAD REFERENCES UTF-8 ALL'), '* THREAD ((1 2)(3))(4)(5)(6)');
  await folder([
    { id: 'a', subject: 'Re: hi', minute: 1 },
    { id: 'b', subject: 'hi', minute: 2 },
  ]);
  t.equal(await threads('THREAD REFERENCES UTF-8 ALL'), '* THREAD (2 1)', 'the original is the parent, though sent later');
  await folder([
    { id: 'a', subject: 'Re: lost', references: refs('x'), minute: 1 },
    { id: 'b', subject: 'Re: lost', references: refs('x'), minute: 2 },
    { id: 'c', subject: 'Re: lost', references: refs('y'), minute: 3 },
    { id: 'd', subject: 'Re: lost', references: refs('y'), minute: 4 },
    { id: 'e', subject: 'lost', minute: 5 },
  ]);
  // Two dummies of one subject become one; a real message joins the dummy.
  t.equal(await threads('THREAD REFERENCES UTF-8 ALL'), '* THREAD ((1)(2)(3)(4)(5))');
});

t.test('THREAD with search criteria threads only the matching messages', async (t) => {
  await folder([
    { id: 'a', subject: 'plan', minute: 1 },
    { id: 'b', subject: 'Re: plan (draft)', references: refs('a'), minute: 2 },
    { id: 'c', subject: 'Re: plan', references: refs('a', 'b'), minute: 3 },
  ]);
  t.equal(await threads('THREAD REFERENCES UTF-8 NOT SUBJECT draft'), '* THREAD (1 3)', 'the left-out parent is a dummy, pruned');
  t.equal(await threads('THREAD REFERENCES UTF-8 SUBJECT nothing'), '* THREAD');
  t.equal(await threads('UID THREAD ORDEREDSUBJECT UTF-8 UID 2:3'), '* THREAD (2)(3)', '"(draft)" is part of the base subject');
});

t.test('bad arguments are BAD, an unknown charset NO [BADCHARSET]', async (t) => {
  await folder([{ subject: 'x', minute: 1 }]);
  for (const command of ['THREAD', 'THREAD FOO UTF-8 ALL', 'THREAD (REFERENCES) UTF-8 ALL', 'THREAD REFERENCES', 'THREAD REFERENCES UTF-8', 'UID THREAD ORDEREDSUBJECT UTF-8 NOPE']) {
    t.match((await run(client, `x1 ${command}`)).at(-1), /^x1 BAD /, command);
  }
  t.same(await run(client, 'x2 THREAD REFERENCES KOI8-R ALL'), ['x2 NO [BADCHARSET (UTF-8 US-ASCII)] The charset KOI8-R is not supported']);
  const unselected = await imap.login(ADDRESS);
  t.match((await run(unselected, 'x3 THREAD REFERENCES UTF-8 ALL')).at(-1), /^x3 BAD THREAD is not allowed now/);
});

const IMAPLIB = `
import imaplib, json, sys
plan = json.loads(sys.argv[1])
client = imaplib.IMAP4("127.0.0.1", plan["port"])
client.login(plan["user"], plan["password"])
client.select(plan["folder"])
out = [client.thread("REFERENCES", "UTF-8", "ALL"), client.uid("THREAD", "ORDEREDSUBJECT", "UTF-8", "ALL")]
client.logout()
print(json.dumps([[typ, [d.decode() for d in data]] for typ, data in out]))
`;

t.test("Python's imaplib threads", async (t) => {
  const name = await folder(EXAMPLE, true);
  const { stdout } = await promisify(execFile)('python3', ['-c', IMAPLIB, JSON.stringify({ port: imap.port, user: ADDRESS, password: PASSWORD, folder: name })]);
  t.same(JSON.parse(stdout), [
    ['OK', ['(1)(2 3 (4 5)(6 7 8))']],
    ['OK', ['(2)(3 (4)(5)(6)(7)(8)(9))']],
  ]);
});
