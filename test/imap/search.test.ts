import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import t from 'tap';
import { LineClient, run, until } from '../helpers/line-client.js';
import { PASSWORD, startTestImap } from '../helpers/imap.js';

const imap = await startTestImap(t, { limits: { maxBadCommands: 100 } });
const ADDRESS = 'finder@search.test';
const accountId = await imap.mailbox(ADDRESS);
const inbox = (await imap.services.mail.folders.get(accountId, 'INBOX')).id;
const mail = imap.services.mail;

const lines = (...parts: string[]) => Buffer.from(parts.join('\r\n'));
const day = (iso: string) => new Date(`${iso}T12:00:00Z`);

// UID 1 is expunged before the tests, so sequence numbers and UIDs differ by one:
// seq 1 = UID 2, ..., seq 5 = UID 6.
await mail.append(accountId, 'INBOX', lines('Subject: gone', '', 'x', ''), { flags: ['\\Deleted'] });
await mail.expunge(accountId, inbox);
const messages = [
  // seq 1, UID 2
  {
    raw: lines('From: Alice Example <alice@example.com>', 'To: bob@search.test', 'Cc: Carol <carol@example.org>',
      'Subject: Quarterly report', 'Date: Sat, 10 Jan 2026 09:00:00 +0000', '', 'The numbers are up.', ''),
    flags: ['\\Seen'],
    internalDate: day('2026-01-10'),
  },
  // seq 2, UID 3: "quarterly" only in the body; the largest
  {
    raw: lines('From: Carol <carol@example.org>', 'To: bob@search.test', 'Bcc: dan@search.test', 'Subject: Lunch plans',
      'Date: Sun, 1 Feb 2026 08:00:00 +0000', 'X-Priority: 1', '', 'Before the quarterly meeting, shall we eat?', 'z'.repeat(2000), ''),
    flags: ['\\Flagged', '\\Answered', '\\Seen'],
    internalDate: day('2026-02-01'),
  },
  // seq 3, UID 4: an encoded-word subject and no Date header (SENT* falls back to the internal date)
  {
    raw: lines('From: Dave <dave@example.net>', 'To: bob@search.test', 'Subject: =?UTF-8?Q?Caf=C3=A9_meeting?=', '', 'Gr\u00fc\u00dfe', ''),
    flags: ['\\Deleted', '$Label'],
    internalDate: day('2026-02-15'),
  },
  // seq 4, UID 5
  {
    raw: lines('From: bob@search.test', 'To: alice@example.com', 'Subject: Draft reply', 'Date: Sat, 28 Feb 2026 10:00:00 +0000', '', 'Half written', ''),
    flags: ['\\Draft'],
    internalDate: day('2026-03-01'),
  },
  // seq 5, UID 6
  {
    raw: lines('From: eve@example.net', 'To: bob@search.test', 'Subject: five', 'Date: Sun, 1 Mar 2026 10:00:00 +0000', '', 'Plain', ''),
    flags: [],
    internalDate: day('2026-03-02'),
  },
];
for (const { raw, flags, internalDate } of messages) await mail.append(accountId, 'INBOX', raw, { flags, internalDate });
// Seen by an earlier session: none is \Recent for the sessions here.
await imap.claimRecent(accountId);

async function connect(): Promise<LineClient> {
  const client = await LineClient.connect(imap.port);
  t.teardown(() => client.close());
  await client.readLine();
  const login = await run(client, `l1 LOGIN ${ADDRESS} "${PASSWORD}"`);
  if (!login.at(-1)?.startsWith('l1 OK')) throw new Error(`login: ${login.join('\n')}`);
  return client;
}

async function selected(folder = 'INBOX'): Promise<LineClient> {
  const client = await connect();
  const answer = await run(client, `s1 SELECT ${folder}`);
  if (!answer.at(-1)?.startsWith('s1 OK')) throw new Error(`select: ${answer.join('\n')}`);
  return client;
}

/** The `* SEARCH` line of a SEARCH answer, after checking it ended OK. */
async function found(client: LineClient, query: string, uid = false): Promise<string> {
  const answer = await run(client, `q ${uid ? 'UID ' : ''}SEARCH ${query}`);
  if (answer.at(-1) !== `q OK ${uid ? 'UID SEARCH' : 'SEARCH'} completed` || answer.length !== 2) {
    throw new Error(`SEARCH ${query}: ${answer.join(' | ')}`);
  }
  return answer[0]!;
}

t.test('every RFC 3501 key, answered by sequence number', async (t) => {
  const client = await selected();
  const cases: [string, string][] = [
    ['ALL', '1 2 3 4 5'],
    ['ANSWERED', '2'],
    ['UNANSWERED', '1 3 4 5'],
    ['DELETED', '3'],
    ['UNDELETED', '1 2 4 5'],
    ['DRAFT', '4'],
    ['UNDRAFT', '1 2 3 5'],
    ['FLAGGED', '2'],
    ['UNFLAGGED', '1 3 4 5'],
    ['SEEN', '1 2'],
    ['UNSEEN', '3 4 5'],
    ['KEYWORD $Label', '3'],
    ['UNKEYWORD $Label', '1 2 4 5'],
    ['KEYWORD $Nobody', ''],
    ['KEYWORD [odd]', ''],
    ['UNKEYWORD [odd]', '1 2 3 4 5'],
    ['FROM carol', '2'],
    ['FROM "Alice Example"', '1'],
    ['TO alice@example.com', '4'],
    ['CC carol', '1'],
    ['BCC dan', '2'],
    ['SUBJECT quarterly', '1'],
    ['SUBJECT QUARTERLY', '1'],
    ['SUBJECT "caf\u00e9 meeting"', '3'],
    ['HEADER X-Priority 1', '2'],
    ['HEADER x-priority ""', '2'],
    ['HEADER Message-ID ""', ''],
    ['BODY quarterly', '2'],
    ['TEXT quarterly', '1 2'],
    ['TEXT "Lunch plans"', '2'],
    ['BODY "Lunch plans"', ''],
    ['BEFORE 1-Feb-2026', '1'],
    ['ON 1-Feb-2026', '2'],
    ['ON 01-feb-2026', '2'],
    ['SINCE "15-Feb-2026"', '3 4 5'],
    ['SENTBEFORE 1-Feb-2026', '1'],
    ['SENTON 28-Feb-2026', '4'],
    ['SENTON 15-Feb-2026', '3'],
    ['SENTSINCE 1-Mar-2026', '5'],
    ['LARGER 1000', '2'],
    ['LARGER 182', '2'],
    ['LARGER 181', '1 2'],
    ['SMALLER 107', '3 5'],
    ['SMALLER 103', ''],
    ['NEW', ''],
    ['RECENT', ''],
    ['OLD', '1 2 3 4 5'],
  ];
  for (const [query, expected] of cases) {
    t.equal(await found(client, query), `* SEARCH${expected ? ` ${expected}` : ''}`, query);
  }
});

t.test('sequence sets, UID sets, NOT, OR, groups and implicit AND', async (t) => {
  const client = await selected();
  const cases: [string, string, boolean?][] = [
    ['2:3', '2 3'],
    ['2,4:*', '2 4 5'],
    ['*', '5'],
    ['*:4', '4 5'],
    ['5:9', '5'],
    ['7:9', ''],
    ['1:* UNSEEN', '3 4 5'],
    ['UID 3:4', '2 3'],
    ['UID *', '5'],
    ['UID 9:*', '5'],
    ['UID 1,5', '4'],
    ['UID 100', ''],
    ['NOT SEEN', '3 4 5'],
    ['NOT NOT SEEN', '1 2'],
    ['OR SEEN DRAFT', '1 2 4'],
    ['OR (SEEN FLAGGED) KEYWORD $Label', '2 3'],
    ['OR OR ANSWERED DRAFT DELETED', '2 3 4'],
    ['SEEN FLAGGED', '2'],
    ['(SEEN) (FROM carol)', '2'],
    ['((SEEN (UNFLAGGED)))', '1'],
    ['NOT (SEEN FLAGGED)', '1 3 4 5'],
    ['NOT 2:4', '1 5'],
    ['OR 1 UID 6', '1 5'],
    // UID SEARCH answers UIDs; sequence keys still mean sequence numbers.
    ['1:2', '2 3', true],
    ['UID 4:*', '4 5 6', true],
    ['ALL', '2 3 4 5 6', true],
  ];
  for (const [query, expected, uid] of cases) {
    t.equal(await found(client, query, uid), `* SEARCH${expected ? ` ${expected}` : ''}`, `${uid ? 'UID ' : ''}SEARCH ${query}`);
  }
});

t.test('CHARSET: UTF-8 and US-ASCII are understood, others answer BADCHARSET', async (t) => {
  const client = await selected();
  t.equal(await found(client, 'CHARSET UTF-8 SUBJECT "caf\u00e9"'), '* SEARCH 3');
  t.equal(await found(client, 'CHARSET us-ascii FROM carol'), '* SEARCH 2');
  // A literal, synchronising: the server asks for it with a continuation.
  const cafe = Buffer.from('caf\u00e9');
  client.send(`c1 SEARCH CHARSET UTF-8 SUBJECT {${cafe.length}}\r\n`);
  t.match(await client.readLine(), /^\+ /);
  client.send(Buffer.concat([cafe, Buffer.from('\r\n')]));
  t.equal(await client.readLine(), '* SEARCH 3');
  t.equal(await client.readLine(), 'c1 OK SEARCH completed');
  // And a LITERAL+ one, in a UID SEARCH body search of 8-bit text.
  const grusse = Buffer.from('Gr\u00fc\u00dfe');
  client.send(Buffer.concat([Buffer.from(`c2 UID SEARCH CHARSET UTF-8 BODY {${grusse.length}+}\r\n`), grusse, Buffer.from('\r\n')]));
  t.equal(await client.readLine(), '* SEARCH 4');
  t.equal(await client.readLine(), 'c2 OK UID SEARCH completed');
  t.same(await run(client, 'c3 SEARCH CHARSET ISO-8859-1 FROM carol'), [
    'c3 NO [BADCHARSET (UTF-8 US-ASCII)] The charset ISO-8859-1 is not supported',
  ]);
  t.same(await run(client, 'c4 SEARCH CHARSET KOI8-R ALL'), ['c4 NO [BADCHARSET (UTF-8 US-ASCII)] The charset KOI8-R is not supported']);
});

t.test('bad syntax answers BAD and the session goes on', async (t) => {
  const client = await selected();
  const bad: string[] = [
    'SEARCH',
    'SEARCH FROBNICATE',
    'SEARCH CHARSET',
    'SEARCH CHARSET UTF-8',
    'SEARCH BEFORE',
    'SEARCH BEFORE 31-Feb-2026',
    'SEARCH BEFORE 1-Foo-2026',
    'SEARCH SINCE 2026-02-01',
    'SEARCH OR SEEN',
    'SEARCH NOT',
    'SEARCH (SEEN',
    'SEARCH SEEN)',
    'SEARCH ()',
    'SEARCH LARGER big',
    'SEARCH SMALLER',
    'SEARCH HEADER',
    'SEARCH HEADER "bad name:" x',
    'SEARCH FROM',
    'SEARCH KEYWORD',
    'SEARCH UID',
    'SEARCH UID 0',
    'SEARCH 0',
    'SEARCH 1:x',
    'SEARCH "ALL"',
    'SEARCH MODSEQ',
    'SEARCH MODSEQ "/flags/\\\\seen" sometimes 1',
    'UID SEARCH',
  ];
  for (const [i, command] of bad.entries()) {
    const answer = await run(client, `b${i} ${command}`);
    t.equal(answer.length, 1, `${command}: only the tagged answer`);
    t.match(answer[0], new RegExp(`^b${i} BAD `), command);
  }
  t.equal(await found(client, 'ALL'), '* SEARCH 1 2 3 4 5');
});

t.test('long OR chains work; nesting too deep for the stack answers BAD', async (t) => {
  const client = await selected();
  const subjects = Array.from({ length: 200 }, (_, i) => `SUBJECT s${i}`);
  const chain = `${'OR '.repeat(200)}${subjects.join(' ')} FROM carol`;
  t.equal(await found(client, chain), '* SEARCH 2');
  t.equal(await found(client, `${'NOT '.repeat(200)}SEEN`), '* SEARCH 1 2');
  t.match(await run(client, `d1 SEARCH ${'NOT '.repeat(5000)}SEEN`), [/^d1 BAD Search keys nested too deeply/]);
  t.match(await run(client, `d2 SEARCH ${'('.repeat(5000)}SEEN${')'.repeat(5000)}`), [/^d2 BAD Search keys nested too deeply/]);
});

t.test('SEARCH before SELECT is refused; results use the session view', async (t) => {
  const client = await connect();
  t.match((await run(client, 'n1 SEARCH ALL')).at(-1), /^n1 BAD SEARCH is not allowed now/);
  t.match((await run(client, 'n2 UID SEARCH ALL')).at(-1), /^n2 BAD /);
});

t.test('RECENT, NEW and OLD follow the session; new mail is only found once announced', async (t) => {
  const address = 'recent@search.test';
  const id = await imap.mailbox(address);
  await mail.append(id, 'INBOX', lines('Subject: old', '', 'x', ''), { flags: ['\\Seen'] });
  await imap.claimRecent(id);
  const client = await LineClient.connect(imap.port);
  t.teardown(() => client.close());
  await client.readLine();
  await run(client, `l1 LOGIN ${address} "${PASSWORD}"`);
  await run(client, 's1 SELECT INBOX');
  await imap.deliver(address, 'Subject: new\r\n\r\nhello\r\n');
  await imap.deliver(address, 'Subject: newer\r\n\r\nhello\r\n');
  // Delivered but not yet announced: not in the answer, whatever the store matched.
  const early = await run(client, 'r0 SEARCH ALL');
  t.equal(early[0], '* SEARCH 1');
  // The sync after it may already announce them (EXISTS is allowed after any command).
  const announced = [...early, ...(await until(client, (seen) => [...early, ...seen].includes('* 3 EXISTS')))];
  t.ok(announced.includes('* 2 RECENT'));
  t.equal(await found(client, 'RECENT'), '* SEARCH 2 3');
  t.equal(await found(client, 'NEW'), '* SEARCH 2 3');
  t.equal(await found(client, 'OLD'), '* SEARCH 1');
  t.equal(await found(client, 'RECENT SUBJECT newer'), '* SEARCH 3');
  t.equal(await found(client, 'NOT RECENT', true), '* SEARCH 1');
  await run(client, 'r1 STORE 2 +FLAGS (\\Seen)');
  t.equal(await found(client, 'NEW'), '* SEARCH 3');
  t.equal(await found(client, 'RECENT'), '* SEARCH 2 3');
});

t.test('MODSEQ: the answer carries the highest MODSEQ of what matched, and CONDSTORE is on', async (t) => {
  const client = await selected();
  const all = await mail.changesSince(accountId, inbox, 0);
  const highest = Math.max(...all.changed.map((m) => m.modseq));
  const changed = await mail.changeFlags(accountId, inbox, [5], 'add', ['$Seen2']);
  const modseq = changed.changed[0]!.modseq;
  t.ok(modseq > highest);
  await until(client, (seen) => seen.includes('* 4 FETCH (FLAGS ($Seen2 \\Draft) UID 5)'));
  t.equal(await found(client, `MODSEQ ${modseq}`), `* SEARCH 4 (MODSEQ ${modseq})`);
  t.equal(await found(client, `MODSEQ "/flags/$Seen2" all ${modseq}`, true), `* SEARCH 5 (MODSEQ ${modseq})`);
  t.equal(await found(client, `MODSEQ ${modseq + 1}`), '* SEARCH', 'nothing matched: no MODSEQ');
  const seenOnes = all.changed.filter((m) => [2, 3].includes(m.uid)).map((m) => m.modseq);
  t.equal(await found(client, 'MODSEQ 1 SEEN'), `* SEARCH 1 2 (MODSEQ ${Math.max(...seenOnes)})`);
  t.equal(await found(client, `OR MODSEQ ${modseq} SEEN`), `* SEARCH 1 2 4 (MODSEQ ${modseq})`);
  t.equal(await found(client, `NOT MODSEQ ${modseq} SEEN`), `* SEARCH 1 2 (MODSEQ ${Math.max(...seenOnes)})`);
  // With CONDSTORE on, the STORE answer carries MODSEQ.
  const store = await run(client, 'm1 STORE 5 +FLAGS ($Marked)');
  t.match(store[0], /^\* 5 FETCH \(FLAGS \(\$Marked\) MODSEQ \(\d+\)\)$/);
});

t.test('SEARCH by sequence number sends no EXPUNGE; UID SEARCH may', async (t) => {
  const address = 'expunges@search.test';
  const id = await imap.mailbox(address);
  const folder = (await mail.folders.get(id, 'INBOX')).id;
  for (const subject of ['a', 'b', 'c']) await mail.append(id, 'INBOX', lines(`Subject: ${subject}`, '', 'x', ''));
  const client = await LineClient.connect(imap.port);
  t.teardown(() => client.close());
  await client.readLine();
  await run(client, `l1 LOGIN ${address} "${PASSWORD}"`);
  await run(client, 's1 SELECT INBOX');
  const probe = await LineClient.connect(imap.port);
  t.teardown(() => probe.close());
  await probe.readLine();
  await run(probe, `l1 LOGIN ${address} "${PASSWORD}"`);
  await run(probe, 's1 SELECT INBOX');
  // Another device expunges message 2. Once the probe has heard, so has the client's session
  // (the change feed tells every session of a process at once).
  await mail.changeFlags(id, folder, [2], 'add', ['\\Deleted']);
  await mail.expunge(id, folder);
  await until(probe, (lines) => lines.includes('* 2 EXPUNGE'));
  const bySequence = await run(client, 'e1 SEARCH ALL');
  t.same(bySequence, ['* SEARCH 1 3', 'e1 OK SEARCH completed'], 'numbers of the view as it was; no EXPUNGE');
  t.same(await run(client, 'e2 SEARCH SUBJECT c'), ['* SEARCH 3', 'e2 OK SEARCH completed']);
  const byUid = await run(client, 'e3 UID SEARCH ALL');
  t.same(byUid, ['* SEARCH 1 3', '* 2 EXPUNGE', 'e3 OK UID SEARCH completed']);
  t.same(await run(client, 'e4 SEARCH ALL'), ['* SEARCH 1 2', 'e4 OK SEARCH completed']);
});

async function imapflow(): Promise<ImapFlow> {
  const client = imap.imapflow(ADDRESS);
  await client.connect();
  t.teardown(() => client.close());
  return client;
}

t.test('imapflow searches', async (t) => {
  const client = await imapflow();
  await client.mailboxOpen('INBOX');
  t.same(await client.search({ seen: false }), [3, 4, 5]);
  t.same(await client.search({ seen: false }, { uid: true }), [4, 5, 6]);
  t.same(await client.search({ or: [{ flagged: true }, { keyword: '$Label' }] }), [2, 3]);
  t.same(await client.search({ from: 'carol', seen: true }), [2]);
  t.same(await client.search({ header: { 'x-priority': '1' } }), [2]);
  t.same(await client.search({ body: 'quarterly' }), [2]);
  t.same(await client.search({ subject: 'caf\u00e9' }), [3]);
  t.same(await client.search({ since: new Date('2026-02-15T00:00:00Z') }), [3, 4, 5]);
  t.same(await client.search({ sentBefore: new Date('2026-02-01T00:00:00Z') }), [1]);
  t.same(await client.search({ larger: 1000 }), [2]);
  t.same(await client.search({ uid: '3:4' }), [2, 3]);
  t.same(await client.search({ not: { seen: true } }), [3, 4, 5]);
  t.same(await client.search({ all: true }), [1, 2, 3, 4, 5]);
});

const IMAPLIB = `
import imaplib, json, sys
plan = json.loads(sys.argv[1])
client = imaplib.IMAP4("127.0.0.1", plan["port"])
client.login(plan["user"], plan["password"])
client.select("INBOX")
out = {}
out["unseen"] = client.search(None, "UNSEEN")[1][0].decode()
out["or"] = client.search(None, "(OR SEEN DRAFT)")[1][0].decode()
out["uid"] = client.uid("SEARCH", "SUBJECT", "quarterly")[1][0].decode()
out["since"] = client.search(None, "SINCE", "15-Feb-2026")[1][0].decode()
client.literal = "caf\\u00e9".encode("utf-8")
out["literal"] = client.search("UTF-8", "SUBJECT")[1][0].decode()
typ, data = client.search("ISO-8859-1", "ALL")
out["badcharset"] = typ + " " + data[0].decode()
try:
    client.search(None, "FROBNICATE")
    out["bad"] = "accepted"
except imaplib.IMAP4.error as error:
    out["bad"] = str(error)
client.logout()
print(json.dumps(out))
`;

t.test("Python's imaplib searches", async (t) => {
  const { stdout } = await promisify(execFile)('python3', [
    '-c',
    IMAPLIB,
    JSON.stringify({ port: imap.port, user: ADDRESS, password: PASSWORD }),
  ]);
  const out = JSON.parse(stdout);
  t.equal(out.unseen, '3 4 5');
  t.equal(out.or, '1 2 4');
  t.equal(out.uid, '2');
  t.equal(out.since, '3 4 5');
  t.equal(out.literal, '3');
  t.equal(out.badcharset, 'NO [BADCHARSET (UTF-8 US-ASCII)] The charset ISO-8859-1 is not supported');
  t.match(out.bad, /SEARCH command error: BAD/);
});
