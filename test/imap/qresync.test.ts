import t from 'tap';
import { type LineClient, run, until } from '../helpers/line-client.js';
import { startTestImap } from '../helpers/imap.js';

const imap = await startTestImap(t, { limits: { maxBadCommands: 100 } });
const mail = imap.services.mail;

let mailboxes = 0;
/** A fresh mailbox whose INBOX holds messages with UIDs 1..count, none \Recent any more. */
async function freshMailbox(count: number) {
  const address = `user${++mailboxes}@qresync.test`;
  const accountId = await imap.mailbox(address);
  for (let i = 1; i <= count; i++) await imap.deliver(address, `Subject: ${i}\r\n\r\nbody ${i}\r\n`);
  await imap.claimRecent(accountId);
  const inbox = await mail.folders.get(accountId, 'INBOX');
  return { address, accountId, inbox: inbox.id, uidValidity: inbox.uidValidity, modseq: inbox.highestModseq };
}

async function qresyncSession(address: string): Promise<LineClient> {
  const client = await imap.login(address);
  t.same(await run(client, 'e1 ENABLE QRESYNC'), ['* ENABLED QRESYNC', 'e1 OK ENABLE completed']);
  return client;
}

/** As another device would: flag UID 3 and expunge UIDs 2 and 5. */
async function changeElsewhere(address: string): Promise<void> {
  const other = await imap.login(address);
  await run(other, 's1 SELECT INBOX');
  await run(other, 'a1 UID STORE 3 +FLAGS (\\Flagged)');
  await run(other, 'a2 UID STORE 2,5 +FLAGS (\\Deleted)');
  const expunge = await run(other, 'a3 UID EXPUNGE 2,5');
  if (expunge.at(-1) !== 'a3 OK UID EXPUNGE completed') throw new Error(`setup: ${expunge.join('\n')}`);
  other.close();
}

async function modseqOf(accountId: number, inbox: number, uid: number): Promise<number> {
  return (await mail.list(accountId, inbox)).find((m) => m.uid === uid)!.modseq;
}

t.test('QRESYNC is advertised; ENABLE QRESYNC turns CONDSTORE on too', async (t) => {
  const { address } = await freshMailbox(1);
  const client = await imap.login(address);
  t.match((await run(client, 'c1 CAPABILITY'))[0], / CONDSTORE .*QRESYNC/);
  t.same(await run(client, 'e1 ENABLE QRESYNC'), ['* ENABLED QRESYNC', 'e1 OK ENABLE completed']);
  t.same(await run(client, 'e2 ENABLE CONDSTORE QRESYNC'), ['* ENABLED', 'e2 OK ENABLE completed'], 'both already on');
  await run(client, 's1 SELECT INBOX');
  t.match(await run(client, 'a1 STORE 1 +FLAGS (\\Seen)'), [/^\* 1 FETCH \(FLAGS \(\\Seen\) MODSEQ \(\d+\)\)$/, 'a1 OK STORE completed']);
});

t.test('SELECT (QRESYNC …): VANISHED (EARLIER) from the tombstones, then FETCH of the changed messages', async (t) => {
  const { address, accountId, inbox, uidValidity, modseq } = await freshMailbox(6);
  await changeElsewhere(address);
  const flagged = await modseqOf(accountId, inbox, 3);
  const client = await qresyncSession(address);
  const answer = await run(client, `s1 SELECT INBOX (QRESYNC (${uidValidity} ${modseq}))`);
  const highest = (await mail.folders.get(accountId, 'INBOX')).highestModseq;
  t.same(answer.slice(-4), [
    `* OK [HIGHESTMODSEQ ${highest}] Highest`,
    '* VANISHED (EARLIER) 2,5',
    `* 2 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ (${flagged}))`,
    's1 OK [READ-WRITE] SELECT completed',
  ]);
  t.ok(answer.includes('* 4 EXISTS'));

  // RFC 7162 §3.2.5.2: only the known UIDs are reported; seq-match-data is accepted.
  const known = await run(client, `s2 EXAMINE INBOX (QRESYNC (${uidValidity} ${modseq} 1:4 (1:3 1,3,4)))`);
  t.equal(known[0], '* OK [CLOSED] Previous folder closed', 'the SELECT closed the folder open before');
  t.same(known.slice(-3), ['* VANISHED (EARLIER) 2', `* 2 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ (${flagged}))`, 's2 OK [READ-ONLY] EXAMINE completed']);
  const unchanged = await run(client, `s3 SELECT INBOX (QRESYNC (${uidValidity} ${highest}))`);
  t.same(unchanged.slice(-2), [`* OK [HIGHESTMODSEQ ${highest}] Highest`, 's3 OK [READ-WRITE] SELECT completed'], 'nothing since');
});

t.test('SELECT (QRESYNC …) with another UIDVALIDITY is a plain SELECT', async (t) => {
  const { address, uidValidity, modseq } = await freshMailbox(3);
  const plain = await run(await imap.login(address), 's1 SELECT INBOX (CONDSTORE)');
  const client = await qresyncSession(address);
  const answer = await run(client, `s1 SELECT INBOX (QRESYNC (${uidValidity + 1} ${modseq}))`);
  t.same(answer, plain);
  t.notOk(answer.some((line) => /VANISHED|FETCH/.test(line)));
});

t.test('QRESYNC parameters are checked', async (t) => {
  const { address, uidValidity } = await freshMailbox(1);
  const plain = await imap.login(address);
  t.match(await run(plain, `s1 SELECT INBOX (QRESYNC (${uidValidity} 1))`), ['s1 BAD QRESYNC must be enabled first (ENABLE QRESYNC)']);
  await run(plain, 's2 SELECT INBOX');
  t.notOk((await run(plain, 's3 SELECT INBOX')).some((l) => l.includes('CLOSED')), 'no CLOSED without QRESYNC');
  t.match(await run(plain, 'f1 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)'), ['f1 BAD VANISHED needs ENABLE QRESYNC first']);
  const client = await qresyncSession(address);
  for (const bad of ['(QRESYNC)', '(QRESYNC ())', `(QRESYNC (${uidValidity}))`, `(QRESYNC (0 1))`, `(QRESYNC (${uidValidity} 1 1:*))`, `(QRESYNC (${uidValidity} 1 1 (1)))`]) {
    t.match((await run(client, `s1 SELECT INBOX ${bad}`)).at(-1), /^s1 BAD /, bad);
  }
  await run(client, 's2 SELECT INBOX');
  t.match((await run(client, 'f1 FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)')).at(-1), /^f1 BAD VANISHED needs UID FETCH and CHANGEDSINCE/);
  t.match((await run(client, 'f2 UID FETCH 1 (FLAGS) (VANISHED)')).at(-1), /^f2 BAD /);
});

t.test('UID FETCH … (CHANGEDSINCE m VANISHED): expunged UIDs of the set, then the changes', async (t) => {
  const { address, accountId, inbox, modseq } = await freshMailbox(6);
  const client = await qresyncSession(address);
  await run(client, 's1 SELECT INBOX');
  await changeElsewhere(address);
  // The session hears of the changes first: VANISHED (EARLIER) names only what it no longer holds.
  t.same((await until(client, (lines) => lines.some((l) => l.startsWith('* VANISHED')))).filter((l) => l.startsWith('* VANISHED')), ['* VANISHED 2,5']);
  const flagged = await modseqOf(accountId, inbox, 3);
  t.same(await run(client, `f1 UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${modseq} VANISHED)`), [
    '* VANISHED (EARLIER) 2,5',
    `* 2 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ (${flagged}))`,
    'f1 OK FETCH completed',
  ]);
  t.same(await run(client, `f2 UID FETCH 4:6 (FLAGS) (CHANGEDSINCE ${modseq} VANISHED)`), ['* VANISHED (EARLIER) 5', 'f2 OK FETCH completed']);
  t.same(await run(client, `f3 UID FETCH 6:* (FLAGS) (CHANGEDSINCE ${flagged} VANISHED)`), ['f3 OK FETCH completed']);
});

t.test('with QRESYNC, expunges are told as VANISHED: EXPUNGE, NOOP and IDLE', async (t) => {
  const { address, accountId, inbox } = await freshMailbox(6);
  const client = await qresyncSession(address);
  await run(client, 's1 SELECT INBOX');
  await run(client, 'a1 STORE 1,2 +FLAGS.SILENT (\\Deleted)');
  t.same(await run(client, 'a2 EXPUNGE'), ['* VANISHED 1:2', 'a2 OK EXPUNGE completed']);

  await mail.changeFlags(accountId, inbox, [4], 'add', ['\\Deleted']);
  await mail.expunge(accountId, inbox);
  t.same((await until(client, (lines) => lines.includes('* VANISHED 4'))).filter((l) => l.includes('VANISHED') || l.includes('EXPUNGE')), ['* VANISHED 4']);

  client.send('i1 IDLE\r\n');
  t.equal(await client.readLine(), '+ idling');
  await mail.changeFlags(accountId, inbox, [6], 'add', ['\\Deleted']);
  await mail.expunge(accountId, inbox);
  const pushed: string[] = [];
  while (!pushed.includes('* VANISHED 6')) pushed.push((await client.readLine())!);
  t.notOk(pushed.some((l) => l.includes('EXPUNGE')));
  client.send('DONE\r\n');
  t.equal(await client.readLine(), 'i1 OK IDLE terminated');
  t.same(await run(client, 'f1 UID FETCH 1:* (UID)'), ['* 1 FETCH (UID 3)', '* 2 FETCH (UID 5)', 'f1 OK FETCH completed']);
});

t.test('imapflow with qresync: an offline client gets only VANISHED (EARLIER) and the changed flags', async (t) => {
  const { address, accountId } = await freshMailbox(6);
  const connect = () =>
    imap.imapflow(address, { qresync: true });
  const first = connect();
  await first.connect();
  const seen = await first.mailboxOpen('INBOX');
  await first.logout();

  await changeElsewhere(address);
  await imap.deliver(address, 'Subject: new\r\n\r\nnew\r\n');

  const again = connect();
  const expunged: unknown[] = [];
  const flags: { uid?: number; flags: Set<string> }[] = [];
  again.on('expunge', (event) => expunged.push(event));
  again.on('flags', (event) => flags.push(event));
  await again.connect();
  t.teardown(() => again.close());
  const opened = await again.mailboxOpen('INBOX', { uidValidity: seen.uidValidity, changedSince: seen.highestModseq } as never);
  t.equal(opened.exists, 5);
  t.same(expunged, [
    { path: 'INBOX', uid: 2, vanished: true, earlier: true },
    { path: 'INBOX', uid: 5, vanished: true, earlier: true },
  ]);
  // The flagged message and the new one (\Recent for this session): nothing about the messages that did not change.
  t.same(flags.map((f) => [f.uid, [...f.flags]]), [[3, ['\\Flagged']], [7, ['\\Recent']]]);
  t.equal(opened.highestModseq, BigInt((await mail.folders.get(accountId, 'INBOX')).highestModseq));
  await again.logout();
});
