import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { LineClient, until } from '../helpers/line-client.js';
import { ACTOR, PASSWORD, startTestImap } from '../helpers/imap.js';

// Literals may be larger than the store takes, so the store's own limit answers (NO [LIMIT]).
const imap = await startTestImap(t, { limits: { maxBadCommands: 100, maxLiteralSize: 11 * 1024 * 1024 } });
const mail = imap.services.mail;
const MESSAGE = Buffer.from('From: Fred Foobar <foobar@example.com>\r\nSubject: afternoon meeting\r\n\r\nHello Joe, do you think we can meet at 3:30 tomorrow?\r\n');

let mailboxes = 0;
async function freshMailbox(fields: Record<string, unknown> = {}) {
  const address = `user${++mailboxes}@append.test`;
  const accountId = await imap.mailbox(address, fields);
  const inbox = await mail.folders.get(accountId, 'INBOX');
  return { address, accountId, inbox };
}

async function stored(accountId: number, folder = 'INBOX') {
  const { id } = await mail.folders.get(accountId, folder);
  return Promise.all(
    (await mail.list(accountId, id)).map(async (m) => ({
      uid: m.uid,
      flags: m.flags,
      internalDate: m.internalDate.toISOString(),
      raw: (await mail.read(accountId, id, m.uid)).toString('latin1'),
    })),
  );
}

async function usage(address: string) {
  return (await imap.services.mailboxes.get(address, ACTOR)).value.usage;
}

async function connect(address: string, select: string | null = null): Promise<LineClient> {
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

/** Reads every line up to and including the one tagged `tag`. */
async function answerTo(client: LineClient, tag: string): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const answer = await client.readLine();
    if (answer === null) return lines;
    lines.push(answer);
    if (answer.startsWith(`${tag} `)) return lines;
  }
}

/** Sends a tagged command and answers every line up to and including the tagged one. */
async function run(client: LineClient, line: string): Promise<string[]> {
  client.send(`${line}\r\n`);
  return answerTo(client, line.split(' ')[0]!);
}

/** APPEND with the message as a LITERAL+ literal, in one write. */
async function append(client: LineClient, tag: string, head: string, raw: Buffer = MESSAGE): Promise<string[]> {
  client.send(Buffer.concat([Buffer.from(`${tag} APPEND ${head} {${raw.length}+}\r\n`), raw, Buffer.from('\r\n')]));
  return answerTo(client, tag);
}

t.test('APPEND with flags and a date-time: APPENDUID, the bytes exactly as sent', async (t) => {
  const { address, accountId, inbox } = await freshMailbox();
  const client = await connect(address);
  // RFC 3501 §6.3.11's example, with a synchronising literal.
  client.send(`a1 APPEND saved-messages (\\Seen) "17-Jul-1996 02:44:25 -0700" {${MESSAGE.length}}\r\n`);
  t.match(await client.readLine(), /^\+ /);
  client.send(Buffer.concat([MESSAGE, Buffer.from('\r\n')]));
  t.same(await answerTo(client, 'a1'), ['a1 NO [TRYCREATE] There is no folder saved-messages']);
  t.same(await append(client, 'a2', 'INBOX (\\Seen $Work) "17-Jul-1996 02:44:25 -0700"'), [
    `a2 OK [APPENDUID ${inbox.uidValidity} 1] APPEND completed`,
  ]);
  t.same(await append(client, 'a3', 'inbox'), [`a3 OK [APPENDUID ${inbox.uidValidity} 2] APPEND completed`], 'no flags, no date');
  t.same(await append(client, 'a4', 'INBOX " 7-Jan-2026 23:59:59 +0130"'), [`a4 OK [APPENDUID ${inbox.uidValidity} 3] APPEND completed`]);
  t.same(await append(client, 'a5', 'Archive ()'), [`a5 OK [APPENDUID ${(await mail.folders.get(accountId, 'Archive')).uidValidity} 1] APPEND completed`]);
  const before = Date.now();
  const messages = await stored(accountId);
  t.same(messages.map((m) => m.raw), [MESSAGE, MESSAGE, MESSAGE].map((m) => m.toString('latin1')));
  t.same(messages.map((m) => m.flags), [['$Work', '\\Seen'], [], []]);
  t.equal(messages[0]!.internalDate, '1996-07-17T09:44:25.000Z');
  t.ok(Math.abs(Date.parse(messages[1]!.internalDate) - before) < 60_000, 'no date: now');
  t.equal(messages[2]!.internalDate, '2026-01-07T22:29:59.000Z');
  t.same((await stored(accountId, 'Archive')).map((m) => m.flags), [[]]);
  t.equal((await usage(address)).messages, 4);
});

t.test('APPEND to the selected folder: EXISTS at once; other sessions hear too, without \\Recent', async (t) => {
  const { address, inbox } = await freshMailbox();
  const client = await connect(address, 'SELECT INBOX');
  const other = await connect(address, 'EXAMINE INBOX');
  t.same(await append(client, 'b1', 'INBOX (\\Flagged)'), ['* 1 EXISTS', '* 1 RECENT', `b1 OK [APPENDUID ${inbox.uidValidity} 1] APPEND completed`]);
  t.same(await run(client, 'b2 SEARCH FLAGGED RECENT'), ['* SEARCH 1', 'b2 OK SEARCH completed']);
  t.same(await until(other, (lines) => lines.length > 0), ['* 1 EXISTS'], 'the appending session claimed it');
  t.same(await append(client, 'b3', 'Archive'), [`b3 OK [APPENDUID ${(await mail.folders.get(inbox.accountId, 'Archive')).uidValidity} 1] APPEND completed`], 'another folder: nothing to tell');
});

t.test('APPEND over quota: NO [OVERQUOTA], nothing stored', async (t) => {
  const { address, accountId } = await freshMailbox({ quota: { storageBytes: MESSAGE.length * 2 + 10, messages: null } });
  const client = await connect(address);
  t.match(await append(client, 'q1', 'INBOX'), [/^q1 OK \[APPENDUID \d+ 1\]/]);
  t.match(await append(client, 'q2', 'INBOX'), [/^q2 OK \[APPENDUID \d+ 2\]/]);
  t.match(await append(client, 'q3', 'INBOX'), [/^q3 NO \[OVERQUOTA\] /]);
  t.equal((await stored(accountId)).length, 2);
  t.same(await usage(address), { storageBytes: MESSAGE.length * 2, messages: 2 });
  const counted = await freshMailbox({ quota: { storageBytes: null, messages: 1 } });
  const second = await connect(counted.address);
  t.match(await append(second, 'q4', 'Drafts (\\Draft)'), [/^q4 OK /]);
  t.match(await append(second, 'q5', 'INBOX'), [/^q5 NO \[OVERQUOTA\] /]);
});

t.test('APPEND larger than the store takes: NO [LIMIT]', async (t) => {
  const { address, accountId } = await freshMailbox();
  const client = await connect(address);
  const huge = Buffer.alloc(10 * 1024 * 1024 + 1, 'a');
  t.match(await append(client, 'z1', 'INBOX', huge), [/^z1 NO \[LIMIT\] /]);
  t.same(await stored(accountId), []);
  t.same(await run(client, 'z2 NOOP'), ['z2 OK NOOP completed'], 'the session goes on');
});

/** MULTIAPPEND (RFC 3502): messages, each after its own flags and date, as LITERAL+ literals in one write. */
async function appendMany(client: LineClient, tag: string, folder: string, messages: { head?: string; raw?: Buffer }[]): Promise<string[]> {
  const pieces: Buffer[] = [Buffer.from(`${tag} APPEND ${folder}`)];
  for (const { head, raw = MESSAGE } of messages) pieces.push(Buffer.from(`${head ? ` ${head}` : ''} {${raw.length}+}\r\n`), raw);
  client.send(Buffer.concat([...pieces, Buffer.from('\r\n')]));
  return answerTo(client, tag);
}

t.test('MULTIAPPEND and APPENDLIMIT are advertised', async (t) => {
  const { address } = await freshMailbox();
  const client = await connect(address);
  const [capabilities] = await run(client, 'c1 CAPABILITY');
  t.match(capabilities, / MULTIAPPEND /);
  t.match(capabilities, / APPENDLIMIT=10485760( |$)/, 'the store takes less than a literal may hold');
});

t.test('MULTIAPPEND: several messages in one command, consecutive UIDs in one APPENDUID', async (t) => {
  const { address, accountId, inbox } = await freshMailbox();
  const client = await connect(address, 'SELECT INBOX');
  const second = Buffer.from('Subject: second\r\n\r\ntwo\r\n');
  t.same(
    await appendMany(client, 'm1', 'INBOX', [
      { head: '(\\Seen) "17-Jul-1996 02:44:25 -0700"' },
      { raw: second },
      { head: '"18-Jul-1996 02:44:25 +0000"', raw: MESSAGE },
      { head: '(\\Flagged $Work)', raw: MESSAGE },
    ]),
    ['* 4 EXISTS', '* 4 RECENT', `m1 OK [APPENDUID ${inbox.uidValidity} 1:4] APPEND completed`],
  );
  const messages = await stored(accountId);
  t.same(
    messages.map((m) => [m.uid, m.flags, m.raw]),
    [
      [1, ['\\Seen'], MESSAGE.toString('latin1')],
      [2, [], second.toString('latin1')],
      [3, [], MESSAGE.toString('latin1')],
      [4, ['$Work', '\\Flagged'], MESSAGE.toString('latin1')],
    ],
  );
  t.same([messages[0]!.internalDate, messages[2]!.internalDate], ['1996-07-17T09:44:25.000Z', '1996-07-18T02:44:25.000Z']);
  t.same(await usage(address), { storageBytes: MESSAGE.length * 3 + second.length, messages: 4 });
  t.same(await append(client, 'm2', 'INBOX'), ['* 5 EXISTS', '* 5 RECENT', `m2 OK [APPENDUID ${inbox.uidValidity} 5] APPEND completed`], 'one message as before');
});

t.test('MULTIAPPEND is all or none: a message over quota, too large, empty or malformed stores none', async (t) => {
  const { address, accountId } = await freshMailbox({ quota: { storageBytes: MESSAGE.length * 2 + 10, messages: null } });
  const client = await connect(address);
  t.match(await appendMany(client, 'n1', 'INBOX', [{}, {}, {}]), [/^n1 NO \[OVERQUOTA\] /], 'the third does not fit');
  t.match(await appendMany(client, 'n2', 'INBOX', [{}, { raw: Buffer.alloc(10 * 1024 * 1024 + 1, 'a') }]), [/^n2 NO \[LIMIT\] /]);
  t.match(await appendMany(client, 'n3', 'INBOX', [{}, { raw: Buffer.alloc(0) }]), [/^n3 NO \[CANNOT\] /]);
  t.match(await appendMany(client, 'n4', 'INBOX', [{}, { head: '"31-Feb-2024 00:00:00 +0000"' }]), [/^n4 BAD /]);
  t.match(await appendMany(client, 'n5', 'Nope', [{}, {}]), [/^n5 NO \[TRYCREATE\] /]);
  t.same(await stored(accountId), []);
  t.same(await usage(address), { storageBytes: 0, messages: 0 });
  t.match(await appendMany(client, 'n6', 'INBOX', [{}, {}]), [/^n6 OK \[APPENDUID \d+ 1:2\] /], 'two fit');
  t.match(await run(client, 'n7 APPEND INBOX "a message quoted"'), [/^n7 BAD /], 'a message is a literal');
});

t.test("a command's literals are bounded in all: a MULTIAPPEND past the limit is refused, stores nothing", async (t) => {
  const { address, accountId } = await freshMailbox();
  const client = await connect(address);
  const six = Buffer.alloc(6 * 1024 * 1024, 'a');
  client.send(`m1 APPEND INBOX {${six.length}}\r\n`);
  t.match(await client.readLine(), /^\+ /);
  client.send(Buffer.concat([six, Buffer.from(` {${six.length}}\r\n`)]));
  t.match(await client.readLine(), /^m1 BAD The command's literals are larger than the \d+ bytes allowed in all/, 'the second is not asked for');
  t.same(await stored(accountId), []);
  t.same(await run(client, 'm2 NOOP'), ['m2 OK NOOP completed'], 'the session goes on');
});

t.test('APPEND failures: bad syntax BAD, empty message NO, before login BAD', async (t) => {
  const { address, accountId } = await freshMailbox();
  const client = await connect(address);
  const bad: [string, string][] = [
    ['INBOX "17-Jul-1996 02:44:25"', 'no zone'],
    ['INBOX "32-Jul-1996 02:44:25 -0700"', 'no such day'],
    ['INBOX "29-Feb-2025 02:44:25 -0700"', 'not a leap year'],
    ['INBOX "17-Foo-1996 02:44:25 -0700"', 'no such month'],
    ['INBOX "17-Jul-1996 24:00:00 -0700"', 'no such hour'],
    ['INBOX 17-Jul-1996', 'a date as an atom'],
    ['INBOX (\\Recent)', '\\Recent'],
    ['INBOX (\\Bogus)', 'an unknown system flag'],
    ['INBOX ("\\Seen")', 'a flag as a string'],
    ['INBOX "17-Jul-1996 02:44:25 -0700" (\\Seen)', 'flags after the date'],
    ['INBOX (\\Seen) (\\Seen)', 'two flag lists'],
    ['(INBOX)', 'a list as the folder'],
  ];
  for (const [i, [head, why]] of bad.entries()) {
    t.match(await append(client, `b${i}`, head), [new RegExp(`^b${i} BAD `)], why);
  }
  t.match(await run(client, 'c1 APPEND INBOX'), [/^c1 BAD /], 'no message');
  t.match(await run(client, 'c2 APPEND'), [/^c2 BAD /]);
  t.match(await run(client, 'c3 APPEND INBOX (\\Seen) "17-Jul-1996 02:44:25 -0700" {3+}\r\nabc extra'), [/^c3 BAD /], 'too many arguments');
  t.match(await run(client, 'c4 APPEND INBOX (\\Seen) atom'), [/^c4 BAD Expected the message as a literal/]);
  t.same(await append(client, 'e1', 'INBOX', Buffer.alloc(0)), ['e1 NO [CANNOT] An empty message cannot be stored']);
  t.match(await append(client, 'k1', 'INBOX (50%)'), [/^k1 NO \[CANNOT\] /], 'a keyword the store refuses');
  t.match(await append(client, 'n1', '"bad//name"'), [/^n1 NO \[CANNOT\] /]);
  t.same(await stored(accountId), []);
  const anonymous = await LineClient.connect(imap.port);
  t.teardown(() => anonymous.close());
  await anonymous.readLine();
  t.match(await append(anonymous, 'x1', 'INBOX'), [/^x1 BAD APPEND is not allowed before login/]);
});

t.test('folder names in modified UTF-7', async (t) => {
  const { address, accountId } = await freshMailbox();
  await mail.folders.create(accountId, 'Entw\u00fcrfe');
  const client = await connect(address);
  t.match(await append(client, 'u1', '"Entw&APw-rfe" (\\Draft)'), [/^u1 OK \[APPENDUID \d+ 1\] APPEND completed$/]);
  t.same((await stored(accountId, 'Entw\u00fcrfe')).map((m) => m.flags), [['\\Draft']]);
});

t.test('imapflow appends', async (t) => {
  const { address, accountId, inbox } = await freshMailbox();
  const client = imap.imapflow(address);
  await client.connect();
  t.teardown(() => client.close());
  const result = await client.append('INBOX', MESSAGE, ['\\Seen'], new Date('2024-05-06T07:08:09Z'));
  t.ok(result);
  if (result) {
    t.equal(result.destination, 'INBOX');
    t.equal(Number(result.uidValidity), inbox.uidValidity);
    t.equal(result.uid, 1);
  }
  await client.mailboxOpen('INBOX');
  const second = await client.append('INBOX', 'Subject: two\r\n\r\nsecond\r\n');
  t.ok(second && second.uid === 2);
  t.equal(client.mailbox && client.mailbox.exists, 2, 'imapflow heard EXISTS');
  const failure: { serverResponseCode?: string } = await client.append('Nope', MESSAGE).then(
    () => ({}),
    (error: { serverResponseCode?: string }) => error,
  );
  t.equal(failure.serverResponseCode, 'TRYCREATE', 'imapflow reports TRYCREATE');
  const messages = await stored(accountId);
  t.same(messages.map((m) => [m.uid, m.flags, m.internalDate]).slice(0, 1), [[1, ['\\Seen'], '2024-05-06T07:08:09.000Z']]);
  t.equal(messages[0]!.raw, MESSAGE.toString('latin1'));
});

const IMAPLIB = `
import imaplib, json, sys
plan = json.loads(sys.argv[1])
client = imaplib.IMAP4("127.0.0.1", plan["port"])
client.login(plan["user"], plan["password"])
out = {}
message = b"Subject: from python\\r\\n\\r\\nhello\\r\\n"
typ, data = client.append("INBOX", "(\\\\Seen \\\\Answered)", imaplib.Time2Internaldate(1700000000), message)
out["append"] = [typ, data[0].decode()]
typ, data = client.append("Nope", None, None, message)
out["trycreate"] = [typ, data[0].decode()]
client.logout()
print(json.dumps(out))
`;

t.test("Python's imaplib appends", async (t) => {
  const { address, accountId, inbox } = await freshMailbox();
  const { stdout } = await promisify(execFile)('python3', ['-c', IMAPLIB, JSON.stringify({ port: imap.port, user: address, password: PASSWORD })]);
  const out = JSON.parse(stdout);
  t.same(out.append, ['OK', `[APPENDUID ${inbox.uidValidity} 1] APPEND completed`]);
  t.same(out.trycreate, ['NO', '[TRYCREATE] There is no folder Nope']);
  const messages = await stored(accountId);
  t.same(messages.map((m) => [m.flags, m.internalDate, m.raw]), [
    [['\\Answered', '\\Seen'], new Date(1700000000 * 1000).toISOString(), 'Subject: from python\r\n\r\nhello\r\n'],
  ]);
});
