import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import t from 'tap';
import { patternMatcher } from '../../src/imap/commands/list.js';
import { LineClient, run, until } from '../helpers/line-client.js';
import { PASSWORD, startTestImap } from '../helpers/imap.js';

const imap = await startTestImap(t);
const MESSAGE = 'From: a@example.org\r\nSubject: hello\r\n\r\nHello\r\n';

let mailboxes = 0;
/** A fresh mailbox per test, so folder trees do not meet. */
async function freshMailbox(): Promise<{ address: string; accountId: number }> {
  const address = `user${++mailboxes}@folders.test`;
  return { address, accountId: await imap.mailbox(address) };
}

async function imapflow(address: string): Promise<ImapFlow> {
  const client = imap.imapflow(address);
  await client.connect();
  t.teardown(() => client.close());
  return client;
}

t.test('LIST: the default folders with SPECIAL-USE and CHILDREN attributes, the delimiter', async (t) => {
  const { address } = await freshMailbox();
  const client = await imap.login(address);
  t.same(await run(client, 'a1 LIST "" "*"'), [
    '* LIST (\\HasNoChildren) "/" "INBOX"',
    '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
    '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
    '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
    '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
    '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
    'a1 OK LIST completed',
  ]);
  t.same(await run(client, 'a2 LIST "" ""'), ['* LIST (\\Noselect) "/" ""', 'a2 OK LIST completed']);
  t.same(await run(client, 'a3 LIST "Archive/" ""'), ['* LIST (\\Noselect) "/" ""', 'a3 OK LIST completed']);
  t.same(await run(client, 'a4 LIST "" inbox'), ['* LIST (\\HasNoChildren) "/" "INBOX"', 'a4 OK LIST completed']);
  t.same(await run(client, 'a5 LIST "" "in%"'), ['* LIST (\\HasNoChildren) "/" "INBOX"', 'a5 OK LIST completed']);
  t.same(await run(client, 'a6 LIST "" "Nothing*"'), ['a6 OK LIST completed']);
  t.match((await run(client, 'a7 LIST "" ')).at(-1), /^a7 BAD/);
  t.match((await run(client, 'a8 LIST "" ((x))')).at(-1), /^a8 BAD/);
  t.match((await run(client, `a9 LIST "" "${'*a'.repeat(700)}"`)).at(-1), /^a9 BAD The folder name pattern is too long/);
});

t.test('LIST: levels, % and *, reference, intermediate levels that do not exist, modified UTF-7', async (t) => {
  const { address } = await freshMailbox();
  const client = await imap.login(address);
  for (const name of ['Work', 'Work/2025', 'Work/2026', 'Deep/a/b', '"Entw&APw-rfe"', 'INBOX/Lists']) {
    t.match((await run(client, `c CREATE ${name}`)).at(-1), /^c OK CREATE completed/, name);
  }
  t.same(await run(client, 'b1 LIST "" %'), [
    '* LIST (\\HasChildren) "/" "INBOX"',
    '* LIST (\\HasNoChildren \\Archive) "/" "Archive"',
    '* LIST (\\NonExistent \\Noselect \\HasChildren) "/" "Deep"',
    '* LIST (\\HasNoChildren \\Drafts) "/" "Drafts"',
    '* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"',
    '* LIST (\\HasNoChildren \\Junk) "/" "Junk"',
    '* LIST (\\HasNoChildren \\Sent) "/" "Sent"',
    '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
    '* LIST (\\HasChildren) "/" "Work"',
    'b1 OK LIST completed',
  ]);
  t.same(await run(client, 'b2 LIST "" Work/%'), [
    '* LIST (\\HasNoChildren) "/" "Work/2025"',
    '* LIST (\\HasNoChildren) "/" "Work/2026"',
    'b2 OK LIST completed',
  ]);
  t.same(await run(client, 'b3 LIST Work/ *6'), ['* LIST (\\HasNoChildren) "/" "Work/2026"', 'b3 OK LIST completed']);
  t.same(await run(client, 'b4 LIST "" Deep*'), [
    '* LIST (\\NonExistent \\Noselect \\HasChildren) "/" "Deep"',
    '* LIST (\\NonExistent \\Noselect \\HasChildren) "/" "Deep/a"',
    '* LIST (\\HasNoChildren) "/" "Deep/a/b"',
    'b4 OK LIST completed',
  ]);
  t.same(await run(client, 'b5 LIST "" inbox/%'), ['* LIST (\\HasNoChildren) "/" "INBOX/Lists"', 'b5 OK LIST completed']);
  t.same(await run(client, 'b6 LIST "" "Entw&APw-*"'), ['* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"', 'b6 OK LIST completed']);
  // A name in raw UTF-8 is not modified UTF-7: refused, so no client ever sees a folder under two names.
  t.match((await run(client, 'b7 LIST "" "Entwürfe"')).at(-1), /^b7 NO \[CANNOT\] .*not a modified UTF-7 folder name/);
  t.match((await run(client, 'b8 SELECT "Entw&APw-rfe"')).at(-1), /^b8 OK/);
  t.match((await run(client, 'b9 SELECT Deep')).at(-1), /^b9 NO \[NONEXISTENT\]/);
});

t.test('patterns: wildcards in the middle, no backtracking blow-up', async (t) => {
  t.ok(patternMatcher('', 'a*c')('ab/xc'));
  t.notOk(patternMatcher('', 'a%c')('ab/xc'));
  t.ok(patternMatcher('', 'a%c')('abxc'));
  t.ok(patternMatcher('', '%/%')('a/b'));
  t.notOk(patternMatcher('', '%/%')('a/b/c'));
  t.ok(patternMatcher('', 'a.(b)+[c]')('a.(b)+[c]'), 'regular expression characters are literal');
  t.ok(patternMatcher('', '**%*%')('anything/at/all'));
  t.notOk(patternMatcher('', 'inbox')('Inbox/x'));
  t.ok(patternMatcher('INBOX/', '*')('INBOX/x'));
  const start = Date.now();
  const hostile = patternMatcher('', `${'*a'.repeat(500)}b`);
  t.notOk(hostile('a'.repeat(1000)));
  t.ok(Date.now() - start < 2000, `a hostile pattern took ${Date.now() - start} ms`);
});

t.test('SUBSCRIBE, UNSUBSCRIBE and LSUB', async (t) => {
  const { address, accountId } = await freshMailbox();
  const client = await imap.login(address);
  await run(client, 'c1 CREATE News/Daily');
  t.same(await run(client, 'c2 UNSUBSCRIBE Junk'), ['c2 OK UNSUBSCRIBE completed']);
  t.same(await run(client, 'c3 LSUB "" *'), [
    '* LSUB () "/" "INBOX"',
    '* LSUB () "/" "Archive"',
    '* LSUB () "/" "Drafts"',
    '* LSUB () "/" "News/Daily"',
    '* LSUB () "/" "Sent"',
    '* LSUB () "/" "Trash"',
    'c3 OK LSUB completed',
  ]);
  // Only News/Daily is subscribed, so % gives News, \Noselect (RFC 3501 §6.3.9).
  t.same(await run(client, 'c4 LSUB "" News%'), ['* LSUB (\\Noselect) "/" "News"', 'c4 OK LSUB completed']);
  t.same(await run(client, 'c5 LSUB "" ""'), ['c5 OK LSUB completed']);
  t.same(await run(client, 'c6 SUBSCRIBE Junk'), ['c6 OK SUBSCRIBE completed']);
  t.same(await run(client, 'c7 LSUB "" J*'), ['* LSUB () "/" "Junk"', 'c7 OK LSUB completed']);
  t.match((await run(client, 'c8 SUBSCRIBE Nowhere')).at(-1), /^c8 NO \[NONEXISTENT\]/);
  t.match((await run(client, 'c9 UNSUBSCRIBE')).at(-1), /^c9 BAD/);
  t.ok((await imap.services.mail.folders.tree(accountId)).subscribed.includes('Junk'));
});

t.test('CREATE: trailing delimiter, nothing else made, ALREADYEXISTS, bad names', async (t) => {
  const { address } = await freshMailbox();
  const client = await imap.login(address);
  t.same(await run(client, 'd1 CREATE Projects/'), ['d1 OK CREATE completed']);
  t.same(await run(client, 'd2 CREATE x/y/z'), ['d2 OK CREATE completed']);
  t.same(await run(client, 'd3 LIST "" x*'), [
    '* LIST (\\NonExistent \\Noselect \\HasChildren) "/" "x"',
    '* LIST (\\NonExistent \\Noselect \\HasChildren) "/" "x/y"',
    '* LIST (\\HasNoChildren) "/" "x/y/z"',
    'd3 OK LIST completed',
  ]);
  t.same(await run(client, 'd4 LIST "" Projects'), ['* LIST (\\HasNoChildren) "/" "Projects"', 'd4 OK LIST completed']);
  t.match((await run(client, 'd5 CREATE Projects')).at(-1), /^d5 NO \[ALREADYEXISTS\]/);
  t.match((await run(client, 'd6 CREATE inbox')).at(-1), /^d6 NO \[ALREADYEXISTS\]/);
  t.match((await run(client, 'd7 CREATE "a//b"')).at(-1), /^d7 NO \[CANNOT\]/);
  t.match((await run(client, 'd8 CREATE "star*"')).at(-1), /^d8 NO \[CANNOT\]/);
  t.match((await run(client, 'd9 CREATE')).at(-1), /^d9 BAD/);
});

t.test('DELETE: NONEXISTENT, INBOX and folders with children refused, the selected folder closed', async (t) => {
  const { address, accountId } = await freshMailbox();
  const client = await imap.login(address);
  await run(client, 'e1 CREATE Old/Child');
  await run(client, 'e2 CREATE Old');
  await imap.deliver(address, MESSAGE, 'Old/Child');
  t.match((await run(client, 'e3 DELETE Nowhere')).at(-1), /^e3 NO \[NONEXISTENT\]/);
  t.match((await run(client, 'e4 DELETE inbox')).at(-1), /^e4 NO \[CANNOT\]/);
  t.match((await run(client, 'e5 DELETE Old')).at(-1), /^e5 NO \[CANNOT\] Delete the folders below Old first/);
  t.match((await run(client, 'e6 SELECT Old/Child')).at(-1), /^e6 OK/);
  t.same(await run(client, 'e7 DELETE Old/Child'), ['* OK [CLOSED] The selected folder was deleted', 'e7 OK DELETE completed']);
  t.match((await run(client, 'e8 NOOP')).at(-1), /^e8 OK/);
  t.same(await run(client, 'e9 DELETE Old'), ['e9 OK DELETE completed']);
  t.same(await run(client, 'e10 LIST "" Old*'), ['e10 OK LIST completed']);
  const quota = await imap.services.mail.folders.quota(accountId);
  t.equal(quota.usedMessages, 0, 'the deleted messages no longer count');
});

t.test('RENAME: folders below follow, the selected folder keeps its view, ALREADYEXISTS, NONEXISTENT', async (t) => {
  const { address } = await freshMailbox();
  const client = await imap.login(address);
  await run(client, 'f1 CREATE Trips/2025');
  await run(client, 'f2 CREATE Trips');
  await imap.deliver(address, MESSAGE, 'Trips/2025');
  const uidValidity = /UIDVALIDITY (\d+)/.exec((await run(client, 'f3 SELECT Trips/2025')).join('\n'))![1];
  t.same(await run(client, 'f4 RENAME Trips Travel/'), ['f4 OK RENAME completed']);
  t.same(await run(client, 'f5 LIST "" T*'), [
    '* LIST (\\HasNoChildren \\Trash) "/" "Trash"',
    '* LIST (\\HasChildren) "/" "Travel"',
    '* LIST (\\HasNoChildren) "/" "Travel/2025"',
    'f5 OK LIST completed',
  ]);
  t.same(await run(client, 'f6 STATUS Travel/2025 (MESSAGES UIDVALIDITY)'), [
    `* STATUS "Travel/2025" (MESSAGES 1 UIDVALIDITY ${uidValidity})`,
    'f6 OK STATUS completed',
  ]);
  t.match((await run(client, 'f7 NOOP')).at(-1), /^f7 OK/);
  t.match((await run(client, 'f8 RENAME Travel Sent')).at(-1), /^f8 NO \[ALREADYEXISTS\]/);
  t.match((await run(client, 'f9 RENAME Nowhere Else')).at(-1), /^f9 NO \[NONEXISTENT\]/);
  t.match((await run(client, 'f10 RENAME Travel Travel/Inner')).at(-1), /^f10 NO \[CANNOT\]/);
  t.match((await run(client, 'f11 RENAME Travel')).at(-1), /^f11 BAD/);
});

t.test('RENAME INBOX: its messages move to the new folder, INBOX stays empty, sessions on INBOX see them go', async (t) => {
  const { address, accountId } = await freshMailbox();
  const client = await imap.login(address);
  const watcher = await imap.login(address);
  await run(client, 'g1 CREATE INBOX/Keep');
  for (let i = 0; i < 3; i++) await imap.deliver(address, MESSAGE);
  t.ok((await run(watcher, 'w1 SELECT INBOX')).includes('* 3 EXISTS'));
  t.same(await run(client, 'g2 RENAME inbox "Old Inbox"'), ['g2 OK RENAME completed']);
  t.same(await run(client, 'g3 STATUS INBOX (MESSAGES UIDNEXT)'), ['* STATUS "INBOX" (MESSAGES 0 UIDNEXT 4)', 'g3 OK STATUS completed']);
  t.same(await run(client, 'g4 STATUS "Old Inbox" (MESSAGES UIDNEXT SIZE)'), [
    `* STATUS "Old Inbox" (MESSAGES 3 UIDNEXT 4 SIZE ${3 * MESSAGE.length})`,
    'g4 OK STATUS completed',
  ]);
  t.same(await run(client, 'g5 LIST "" INBOX*'), [
    '* LIST (\\HasChildren) "/" "INBOX"',
    '* LIST (\\HasNoChildren) "/" "INBOX/Keep"',
    'g5 OK LIST completed',
  ]);
  t.same(
    (await until(watcher, (lines) => lines.filter((l) => l === '* 1 EXPUNGE').length === 3)).filter((l) => l.startsWith('*')),
    ['* 1 EXPUNGE', '* 1 EXPUNGE', '* 1 EXPUNGE'],
  );
  t.match((await run(client, 'g6 RENAME INBOX Sent')).at(-1), /^g6 NO \[ALREADYEXISTS\]/);
  t.match((await run(client, 'g7 RENAME INBOX inbox')).at(-1), /^g7 NO \[CANNOT\]/);
  // An empty INBOX renames too; messages keep their UIDs in the new folder.
  t.same(await run(client, 'g8 RENAME INBOX Empty'), ['g8 OK RENAME completed']);
  const { folders } = imap.services.mail;
  const old = await folders.get(accountId, 'Old Inbox');
  t.same((await imap.services.mail.list(accountId, old.id)).map((m) => m.uid), [1, 2, 3]);
  t.equal((await folders.get(accountId, 'Empty')).messageCount, 0);
  t.equal((await folders.quota(accountId)).usedMessages, 3, 'usage is unchanged by the move');
  // New mail still arrives in INBOX, above the UIDs it had given out.
  t.equal(await imap.deliver(address, MESSAGE), 4);
});

t.test('STATUS: every item, RECENT of the selected folder, bad items', async (t) => {
  const { address, accountId } = await freshMailbox();
  const client = await imap.login(address);
  await imap.deliver(address, MESSAGE);
  await imap.deliver(address, MESSAGE);
  const inbox = await imap.services.mail.folders.get(accountId, 'INBOX');
  await imap.services.mail.changeFlags(accountId, inbox.id, [1], 'add', ['\\Seen']);
  const after = await imap.services.mail.folders.get(accountId, 'INBOX');
  t.same(await run(client, 'h1 STATUS inbox (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)'), [
    `* STATUS "INBOX" (MESSAGES 2 RECENT 2 UIDNEXT 3 UIDVALIDITY ${inbox.uidValidity} UNSEEN 1 HIGHESTMODSEQ ${after.highestModseq} SIZE ${2 * MESSAGE.length})`,
    'h1 OK STATUS completed',
  ]);
  t.same(await run(client, 'h2 STATUS Drafts (unseen messages)'), ['* STATUS "Drafts" (UNSEEN 0 MESSAGES 0)', 'h2 OK STATUS completed']);
  await run(client, 'h3 SELECT INBOX');
  await imap.deliver(address, MESSAGE);
  t.ok((await until(client, (lines) => lines.includes('* 3 EXISTS'))).includes('* 3 RECENT'), 'two claimed at SELECT, one since');
  t.same(await run(client, 'h5 STATUS INBOX (RECENT MESSAGES)'), ['* STATUS "INBOX" (RECENT 3 MESSAGES 3)', 'h5 OK STATUS completed']);
  t.match((await run(client, 'h6 STATUS INBOX (BOGUS)')).at(-1), /^h6 BAD Unknown status item BOGUS/);
  t.match((await run(client, 'h7 STATUS INBOX ()')).at(-1), /^h7 BAD/);
  t.match((await run(client, 'h8 STATUS INBOX MESSAGES')).at(-1), /^h8 BAD/);
  t.match((await run(client, 'h9 STATUS Nowhere (MESSAGES)')).at(-1), /^h9 NO \[NONEXISTENT\]/);
});

t.test('folder commands need a login', async (t) => {
  const client = await LineClient.connect(imap.port);
  t.teardown(() => client.close());
  await client.readLine();
  for (const command of ['LIST "" *', 'LSUB "" *', 'CREATE x', 'DELETE x', 'RENAME x y', 'STATUS x (MESSAGES)', 'SUBSCRIBE x']) {
    t.match((await run(client, `n ${command}`)).at(-1), /^n BAD .* is not allowed before login/, command);
  }
});

t.test('imapflow: list, create, rename, delete, status; a second client sees the changes in LIST', async (t) => {
  const { address } = await freshMailbox();
  const one = await imapflow(address);
  const two = await imapflow(address);
  const listed = await one.list();
  t.same(
    listed.map((m) => [m.path, m.specialUse ?? null]).sort(),
    [
      ['INBOX', '\\Inbox'],
      ['Sent', '\\Sent'],
      ['Drafts', '\\Drafts'],
      ['Archive', '\\Archive'],
      ['Junk', '\\Junk'],
      ['Trash', '\\Trash'],
    ].sort(),
    'special-use folders recognised',
  );
  t.equal(listed.find((m) => m.path === 'Sent')?.specialUseSource, 'extension', 'from the SPECIAL-USE attributes');
  const created = await one.mailboxCreate(['Clients', 'Ünïcode']);
  t.equal(created.path, 'Clients/Ünïcode');
  t.ok((await two.list()).some((m) => m.path === 'Clients/Ünïcode'), 'the other client sees the new folder');
  t.ok((await two.list()).find((m) => m.path === 'Clients')?.flags.has('\\Noselect'), 'the level above is \\Noselect');
  await one.mailboxRename('Clients/Ünïcode', 'Customers');
  let paths = (await two.list()).map((m) => m.path);
  t.ok(paths.includes('Customers') && !paths.includes('Clients/Ünïcode'), 'the rename shows in the other client');
  await imap.deliver(address, MESSAGE, 'Customers');
  const status = await two.status('Customers', { messages: true, unseen: true, uidNext: true, uidValidity: true, highestModseq: true });
  t.equal(status.messages, 1);
  t.equal(status.unseen, 1);
  t.equal(status.uidNext, 2);
  t.ok(status.uidValidity && status.uidValidity > 0n);
  await one.mailboxDelete('Customers');
  paths = (await two.list()).map((m) => m.path);
  t.notOk(paths.includes('Customers'), 'the delete shows in the other client');
  await t.rejects(one.mailboxDelete('INBOX'));
  t.same(
    (await one.listTree()).folders?.map((f) => f.path),
    (await two.listTree()).folders?.map((f) => f.path),
  );
});

t.test("Python's imaplib: LIST, CREATE, STATUS, RENAME, SUBSCRIBE, LSUB, DELETE", async (t) => {
  const { address } = await freshMailbox();
  const script = `
import imaplib, json, sys
c = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
c.login(sys.argv[2], sys.argv[3])
out = {}
out['create'] = c.create('Reports/2026')[0]
out['list'] = [line.decode() for line in c.list()[1]]
out['status'] = c.status('Reports/2026', '(MESSAGES UIDNEXT UNSEEN)')[1][0].decode()
out['rename'] = c.rename('Reports/2026', 'Papers/2026')[0]
out['unsubscribe'] = c.unsubscribe('Papers/2026')[0]
out['lsub'] = [line.decode() for line in c.lsub('""', 'Papers*')[1] if line]
out['delete'] = c.delete('Papers/2026')[0]
out['delete_again'] = c.delete('Papers/2026')[0]
out['namespace'] = c.namespace()[1][0].decode()
c.logout()
print(json.dumps(out))
`;
  const { stdout } = await promisify(execFile)('python3', ['-c', script, String(imap.port), address, PASSWORD]);
  const out = JSON.parse(stdout);
  t.equal(out.create, 'OK');
  t.ok(out.list.includes('(\\NonExistent \\Noselect \\HasChildren) "/" "Reports"'));
  t.ok(out.list.includes('(\\HasNoChildren) "/" "Reports/2026"'));
  t.equal(out.status, '"Reports/2026" (MESSAGES 0 UIDNEXT 1 UNSEEN 0)');
  t.equal(out.rename, 'OK');
  t.equal(out.unsubscribe, 'OK');
  t.same(out.lsub, []);
  t.equal(out.delete, 'OK');
  t.equal(out.delete_again, 'NO');
  t.equal(out.namespace, '(("" "/")) NIL NIL');
});
