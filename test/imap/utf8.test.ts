import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { encodeFolderName } from '../../src/imap/mutf7.js';
import { type LineClient, run } from '../helpers/line-client.js';
import { PASSWORD, startTestImap } from '../helpers/imap.js';

const imap = await startTestImap(t, { limits: { maxBadCommands: 100 } });

let mailboxes = 0;
async function freshMailbox(): Promise<{ address: string; accountId: number }> {
  const address = `user${++mailboxes}@utf8.test`;
  return { address, accountId: await imap.mailbox(address) };
}

/** A command and its answer, with the lines read as UTF-8 (the line client reads bytes as latin1). */
async function run8(client: LineClient, line: string): Promise<string[]> {
  return (await run(client, line)).map((answer) => Buffer.from(answer, 'latin1').toString('utf8'));
}

/** A session that has ENABLEd UTF8=ACCEPT. */
async function utf8Session(address: string): Promise<LineClient> {
  const client = await imap.login(address);
  t.same(await run(client, 'e1 ENABLE UTF8=ACCEPT'), ['* ENABLED UTF8=ACCEPT', 'e1 OK ENABLE completed']);
  return client;
}

t.test('UTF8=ACCEPT is advertised after login and can be ENABLEd once, before SELECT', async (t) => {
  const { address } = await freshMailbox();
  const client = await imap.login(address);
  t.match((await run(client, 'c1 CAPABILITY'))[0], / UTF8=ACCEPT( |$)/);
  t.same(await run(client, 'e1 ENABLE utf8=accept CONDSTORE'), ['* ENABLED UTF8=ACCEPT CONDSTORE', 'e1 OK ENABLE completed']);
  t.same(await run(client, 'e2 ENABLE UTF8=ACCEPT'), ['* ENABLED', 'e2 OK ENABLE completed'], 'named only when newly enabled');
  const other = await imap.login(address);
  await run(other, 's1 SELECT INBOX');
  t.match((await run(other, 'e3 ENABLE UTF8=ACCEPT')).at(-1), /^e3 BAD /);
});

t.test('after ENABLE, folder names are UTF-8 both ways; a session without it sees modified UTF-7', async (t) => {
  const { address } = await freshMailbox();
  const client = await utf8Session(address);
  const legacy = await imap.login(address);
  t.same(await run8(client, 'a1 CREATE "Entwürfe/Ärger"'), ['a1 OK CREATE completed']);
  t.same(await run8(client, 'a2 CREATE Größe'), ['a2 OK CREATE completed'], 'as an atom, as imaplib sends it');
  t.same(await run8(client, 'a3 CREATE "Tom & Jerry"'), ['a3 OK CREATE completed'], "'&' is itself, not modified UTF-7");
  t.same(await run8(client, 'a4 LIST "" "Entw*"'), [
    '* LIST (\\NonExistent \\Noselect \\HasChildren) "/" "Entwürfe"',
    '* LIST (\\HasNoChildren) "/" "Entwürfe/Ärger"',
    'a4 OK LIST completed',
  ]);
  t.same(await run8(client, 'a5 LIST "Entwürfe/" %'), ['* LIST (\\HasNoChildren) "/" "Entwürfe/Ärger"', 'a5 OK LIST completed'], 'a UTF-8 reference');
  t.same(await run8(legacy, 'b1 LIST "" "*"'), [
    '* LIST (\\HasNoChildren) "/" "INBOX"',
    '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
    '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
    '* LIST (\\NonExistent \\Noselect \\HasChildren) "/" "Entw&APw-rfe"',
    '* LIST (\\HasNoChildren) "/" "Entw&APw-rfe/&AMQ-rger"',
    '* LIST (\\HasNoChildren) "/" "Gr&APYA3w-e"',
    '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
    '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
    '* LIST (\\HasNoChildren) "/" "Tom &- Jerry"',
    '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
    'b1 OK LIST completed',
  ]);
  // The reverse: made in modified UTF-7, read in UTF-8.
  t.same(await run8(legacy, 'b2 CREATE "&ZeVnLIqe-/&AMk-t&AOk-"'), ['b2 OK CREATE completed']);
  t.same(await run8(client, 'a6 LIST "" "日本語/*"'), ['* LIST (\\HasNoChildren) "/" "日本語/Été"', 'a6 OK LIST completed']);
  t.same(await run8(client, 'a7 LSUB "" "日本語*"'), ['* LSUB () "/" "日本語/Été"', 'a7 OK LSUB completed']);
  t.same(await run8(client, 'a8 LIST (SUBSCRIBED) "" "G*" RETURN (STATUS (MESSAGES))'), [
    '* LIST (\\HasNoChildren \\Subscribed) "/" "Größe"',
    '* STATUS "Größe" (MESSAGES 0)',
    'a8 OK LIST completed',
  ]);
  t.same(await run8(legacy, 'b3 LIST "" "G*" RETURN (STATUS (MESSAGES))'), [
    '* LIST (\\HasNoChildren) "/" "Gr&APYA3w-e"',
    '* STATUS "Gr&APYA3w-e" (MESSAGES 0)',
    'b3 OK LIST completed',
  ]);
  // In UTF-8 mode a modified UTF-7 spelling is just a name: it does not reach the folder made so.
  t.match((await run8(client, 'a9 SELECT "Gr&APYA3w-e"')).at(-1), /^a9 NO \[NONEXISTENT\]/);
});

t.test('SELECT, STATUS, RENAME, APPEND, COPY, GETQUOTAROOT, SUBSCRIBE, DELETE with UTF-8 names', async (t) => {
  const { address } = await freshMailbox();
  const client = await utf8Session(address);
  const legacy = await imap.login(address);
  const message = 'Subject: hi\r\n\r\nhello\r\n';
  t.same(await run8(client, 'c1 CREATE "Crème brûlée"'), ['c1 OK CREATE completed']);
  t.match((await run8(client, `c2 APPEND "Crème brûlée" {${message.length}+}\r\n${message}`)).at(-1), /^c2 OK \[APPENDUID \d+ 1\]/);
  t.same(await run8(client, 'c3 STATUS "Crème brûlée" (MESSAGES UIDNEXT)'), ['* STATUS "Crème brûlée" (MESSAGES 1 UIDNEXT 2)', 'c3 OK STATUS completed']);
  t.same(await run8(client, 'c4 RENAME "Crème brûlée" "Crème caramel"'), ['c4 OK RENAME completed']);
  t.match((await run8(client, 'c5 SELECT "Crème caramel"')).at(-1), /^c5 OK \[READ-WRITE\]/);
  t.match((await run8(client, 'c6 COPY 1 "Ünïcode"')).at(-1), /^c6 NO \[TRYCREATE\]/);
  t.same(await run8(client, 'c7 CREATE "Ünïcode"'), ['c7 OK CREATE completed']);
  t.match((await run8(client, 'c8 COPY 1 "Ünïcode"')).at(-1), /^c8 OK \[COPYUID /);
  t.same((await run8(client, 'c9 GETQUOTAROOT "Ünïcode"'))[0], '* QUOTAROOT "Ünïcode" ""');
  t.same(await run8(client, 'c10 UNSUBSCRIBE "Ünïcode"'), ['c10 OK UNSUBSCRIBE completed']);
  t.same(await run8(legacy, 'd1 STATUS "&ANw-n&AO8-code" (MESSAGES)'), ['* STATUS "&ANw-n&AO8-code" (MESSAGES 1)', 'd1 OK STATUS completed']);
  t.same(await run8(legacy, 'd2 LSUB "" "Cr*"'), ['* LSUB () "/" "Cr&AOg-me caramel"', 'd2 OK LSUB completed']);
  t.same(await run8(client, 'c11 DELETE "Ünïcode"'), ['c11 OK DELETE completed']);
  t.same(await run8(legacy, 'd3 LIST "" "&ANw-*"'), ['d3 OK LIST completed']);
});

t.test('APPEND UTF8 (~{n}): a message with a UTF-8 header, stored as sent; with MULTIAPPEND too', async (t) => {
  const { address } = await freshMailbox();
  const client = await utf8Session(address);
  const message = Buffer.from('From: Jörg <jörg@bücher.example>\r\nSubject: Grüße\r\n\r\nHallo\r\n');
  const plain = 'Subject: plain\r\n\r\nx\r\n';
  const lines = await run8(client, `f1 APPEND INBOX (\\Seen) UTF8 (~{${message.length}+}\r\n${message.toString('utf8')})`);
  t.match(lines.at(-1), /^f1 OK \[APPENDUID \d+ 1\] APPEND completed/);
  const multi = await run8(
    client,
    `f2 APPEND INBOX UTF8 (~{${message.length}+}\r\n${message.toString('utf8')}) "17-Jul-1996 02:44:25 -0700" {${plain.length}+}\r\n${plain}`,
  );
  t.match(multi.at(-1), /^f2 OK \[APPENDUID \d+ 2:3\]/);
  await run(client, 's1 SELECT INBOX');
  const fetched = await run8(client, 'f3 FETCH 1:3 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
  t.same(fetched.filter((line) => line.startsWith('Subject')), ['Subject: Grüße', 'Subject: Grüße', 'Subject: plain']);
  t.match(fetched[0], /FLAGS \(\\Seen \\Recent\)/);
  t.same(await run8(client, 'f4 SEARCH SUBJECT "Grüße"'), ['* SEARCH 1 2', 'f4 OK SEARCH completed'], 'a UTF-8 quoted search string, no CHARSET');
});

t.test('errors: APPEND UTF8 needs ENABLE and one literal; SEARCH CHARSET after ENABLE; bytes that are not UTF-8; controls', async (t) => {
  const { address } = await freshMailbox();
  const legacy = await imap.login(address);
  t.match((await run8(legacy, 'g1 APPEND INBOX UTF8 (~{3+}\r\nabc)')).at(-1), /^g1 BAD APPEND UTF8 needs ENABLE UTF8=ACCEPT first/);
  await run(legacy, 's1 SELECT INBOX');
  t.match((await run8(legacy, 'g2 SEARCH CHARSET UTF-8 ALL')).at(-1), /^g2 OK/, 'without UTF8=ACCEPT a CHARSET is fine');
  t.match((await run8(legacy, 'g3 CREATE "Größe"')).at(-1), /^g3 NO \[CANNOT\] .*modified UTF-7/);
  const client = await utf8Session(address);
  t.match((await run8(client, 'h1 APPEND INBOX UTF8 ~{3+}\r\nabc')).at(-1), /^h1 BAD /);
  t.match((await run8(client, 'h2 APPEND INBOX UTF8 ({3+}\r\nabc {3+}\r\ndef)')).at(-1), /^h2 BAD Expected one message literal/);
  t.match((await run8(client, 'h3 APPEND INBOX UTF8 ("abc")')).at(-1), /^h3 BAD Expected the message as a literal/);
  t.match((await run8(client, 'h4 APPEND INBOX UTF8')).at(-1), /^h4 BAD /);
  await run(client, 's2 SELECT INBOX');
  t.match((await run8(client, 'h5 SEARCH CHARSET UTF-8 ALL')).at(-1), /^h5 BAD SEARCH takes no CHARSET after ENABLE UTF8=ACCEPT/);
  t.match((await run8(client, 'h6 UID SEARCH RETURN (COUNT) charset US-ASCII ALL')).at(-1), /^h6 BAD /);
  t.same(await run8(client, 'h7 SEARCH ALL'), ['* SEARCH', 'h7 OK SEARCH completed']);
  client.send(Buffer.concat([Buffer.from('h8 CREATE "Gr'), Buffer.from([0xf6, 0xdf]), Buffer.from('e"\r\n')]));
  t.match(await client.readLine(), /^h8 BAD Expected a folder name in UTF-8/, 'latin1 bytes are not UTF-8');
  t.match((await run8(client, 'h9 CREATE "Bad\u0085name"')).at(-1), /^h9 NO \[CANNOT\]/, 'a C1 control');
  t.match((await run8(client, 'h10 CREATE "Bad\u2028name"')).at(-1), /^h10 NO \[CANNOT\]/, 'a line separator');
});

t.test('imapflow ENABLEs UTF8=ACCEPT and sends UTF-8 names; a session without it sees them in modified UTF-7', async (t) => {
  const { address } = await freshMailbox();
  const client = imap.imapflow(address);
  await client.connect();
  t.teardown(() => client.close());
  t.ok(client.enabled.has('UTF8=ACCEPT'));
  await client.mailboxCreate(['Kunden', 'Müller & Söhne']);
  await client.append('Kunden/Müller & Söhne', 'Subject: x\r\n\r\ny\r\n');
  const listed = await client.list({ statusQuery: { messages: true } });
  t.match(listed.find((entry) => entry.path === 'Kunden/Müller & Söhne'), { status: { messages: 1 } });
  const legacy = await imap.login(address);
  t.same(await run8(legacy, 'l1 LIST "" "Kunden/*"'), [
    `* LIST (\\HasNoChildren) "/" "${encodeFolderName('Kunden/Müller & Söhne')}"`,
    'l1 OK LIST completed',
  ]);
  t.equal(encodeFolderName('Kunden/Müller & Söhne'), 'Kunden/M&APw-ller &- S&APY-hne');
});

t.test("Python's imaplib: enable UTF8=ACCEPT, create and list in UTF-8; another connection reads modified UTF-7", async (t) => {
  const { address } = await freshMailbox();
  const script = `
import imaplib, json, sys
out = {}
c = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
c.login(sys.argv[2], sys.argv[3])
out['enable'] = c.enable('UTF8=ACCEPT')[0]
out['create'] = c.create('"Привет/Мир"')[0]
out['list'] = [line.decode('utf-8') for line in c.list('""', '"Привет*"')[1]]
out['status'] = c.status('"Привет/Мир"', '(MESSAGES)')[1][0].decode('utf-8')
c.logout()
d = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
d.login(sys.argv[2], sys.argv[3])
out['legacy'] = [line.decode('ascii') for line in d.list('""', '*/*')[1]]
d.logout()
print(json.dumps(out))
`;
  const { stdout } = await promisify(execFile)('python3', ['-c', script, String(imap.port), address, PASSWORD]);
  const out = JSON.parse(stdout);
  t.equal(out.enable, 'OK');
  t.equal(out.create, 'OK');
  t.same(out.list, ['(\\NonExistent \\Noselect \\HasChildren) "/" "Привет"', '(\\HasNoChildren) "/" "Привет/Мир"']);
  t.equal(out.status, '"Привет/Мир" (MESSAGES 0)');
  t.same(out.legacy, [`(\\HasNoChildren) "/" "${encodeFolderName('Привет/Мир')}"`]);
});
