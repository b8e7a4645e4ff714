import { createHash } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import nodemailer from 'nodemailer';
import t from 'tap';
import { accounts, blobs } from '../../src/db/schema/index.js';
import { advertisedSize, RETURN_PATH_ROOM } from '../../src/lmtp/server.js';
import { dotStuff, pythonLmtp, RawLmtp } from './clients.js';
import { lmtpFixture, message } from './setup.js';

const MAX = 64 * 1024;
// One database and listener for the file, each test with mailboxes of its own domain: a fresh
// database costs seconds.
const f = await lmtpFixture(t, { maxMessageSize: MAX });

t.test('a message is stored byte for byte behind one Return-Path line (Python smtplib.LMTP)', async (t) => {
  await f.mailbox('ann@single.example');
  const sent = message('hello ann', 3000);
  const result = await pythonLmtp(f.port, [{ from: 'sender@example.net', to: ['Ann@Single.EXAMPLE'], message: sent }]);
  t.equal(result.lhlo[0], 250);
  const [tx] = result.transactions;
  t.same(tx!.mail, [250, 'Accepted']);
  t.same(tx!.rcpt, [[250, 'Accepted']]);
  t.same(tx!.data, [[250, '2.0.0 <Ann@Single.EXAMPLE> delivered, UID 1']]);
  const [stored, ...others] = await f.inbox('ann@single.example');
  t.same(others, [], 'one message');
  t.equal(stored!.raw.toString('latin1'), `Return-Path: <sender@example.net>\r\n${sent.toString('latin1')}`);
  const [account] = await f.database.db.select().from(accounts).where(eq(accounts.address, 'ann@single.example'));
  t.equal(account!.usedBytes, stored!.raw.length, 'usage counts the stored bytes, Return-Path included');
  t.equal(account!.usedMessages, 1);
});

t.test('nodemailer’s LMTP transport delivers; the null sender becomes Return-Path: <>', async (t) => {
  await f.mailbox('bob@nodemailer.example');
  const transport = nodemailer.createTransport({ lmtp: true, host: '127.0.0.1', port: f.port, ignoreTLS: true });
  t.teardown(() => transport.close());
  const raw = message('from nodemailer');
  const info = await transport.sendMail({ envelope: { from: 'relay@example.net', to: ['bob@nodemailer.example'] }, raw });
  t.same(info.accepted, ['bob@nodemailer.example']);
  t.match(info.response, /^250 2\.0\.0 <bob@nodemailer\.example> delivered, UID 1$/);
  // A bounce: MAIL FROM:<>.
  const bounce = message('delivery status notification');
  await transport.sendMail({ envelope: { from: '', to: ['bob@nodemailer.example'] }, raw: bounce });
  const stored = await f.inbox('bob@nodemailer.example');
  t.equal(stored[0]!.raw.toString(), `Return-Path: <relay@example.net>\r\n${raw}`);
  t.equal(stored[1]!.raw.toString(), `Return-Path: <>\r\n${bounce}`);
});

t.test('a Postfix-style transaction: per-recipient replies in RCPT order, one stored blob', async (t) => {
  await f.mailbox('ann@postfix.example');
  await f.mailbox('bob@postfix.example');
  await f.mailbox('full@postfix.example', { quota: { messages: 0 } });
  const sent = message('for four', 2000);
  const result = await pythonLmtp(f.port, [
    {
      from: 'list@example.net',
      to: ['ann@postfix.example', 'nobody@postfix.example', 'full@postfix.example', 'bob@postfix.example'],
      message: sent,
    },
  ]);
  const [tx] = result.transactions;
  t.same(tx!.rcpt.map(([code]) => code), [250, 250, 250, 250], 'existence is decided after DATA');
  t.same(tx!.data, [
    [250, '2.0.0 <ann@postfix.example> delivered, UID 1'],
    [550, '5.1.1 <nobody@postfix.example> No such mailbox'],
    [552, '5.2.2 <full@postfix.example> Mailbox is full'],
    [250, '2.0.0 <bob@postfix.example> delivered, UID 1'],
  ]);
  const expected = Buffer.from(`Return-Path: <list@example.net>\r\n${sent}`);
  t.same((await f.inbox('ann@postfix.example')).map((m) => m.raw.toString()), [expected.toString()]);
  t.same((await f.inbox('bob@postfix.example')).map((m) => m.raw.toString()), [expected.toString()]);
  t.same(await f.inbox('full@postfix.example'), []);
  const hash = createHash('sha256').update(expected).digest('hex');
  const stored = await f.database.db.select({ refCount: blobs.refCount, size: blobs.size }).from(blobs).where(eq(blobs.hash, hash));
  t.same(stored, [{ refCount: 2, size: expected.length }], 'one blob, referenced by both messages');
});

t.test('SIZE is advertised and enforced at MAIL FROM and at the end of DATA', async (t) => {
  await f.mailbox('ann@size.example');
  await f.mailbox('bob@size.example');
  const limit = advertisedSize(MAX);
  t.equal(limit, MAX - RETURN_PATH_ROOM, 'room is kept for the Return-Path line');

  const fits = Buffer.concat([message('exactly at the limit', limit).subarray(0, limit - 2), Buffer.from('\r\n')]);
  t.equal(fits.length, limit);
  const over = message('one line too many', limit + 100);
  const longSender = `${'s'.repeat(242)}@example.net`;
  const result = await pythonLmtp(f.port, [
    { from: 'sender@example.net', to: ['ann@size.example'], message: fits, mailOptions: [`SIZE=${limit}`] },
    { from: 'sender@example.net', to: ['ann@size.example'], message: over, mailOptions: [`SIZE=${limit + 1}`] },
    // The client does not declare a size: refused after DATA, once per recipient.
    { from: 'sender@example.net', to: ['ann@size.example', 'bob@size.example'], message: over },
    // The longest sender an RFC 5321 path holds (254 characters) still fits in the room kept for it.
    { from: longSender, to: ['bob@size.example'], message: fits },
  ]);
  t.equal(result.features.size, String(limit), 'LHLO advertises SIZE');
  const [atLimit, declared, undeclared, longPath] = result.transactions;
  t.same(atLimit!.data, [[250, '2.0.0 <ann@size.example> delivered, UID 1']], 'a message of exactly SIZE bytes is accepted');
  t.equal(declared!.mail[0], 552, 'SIZE= over the limit is refused at MAIL FROM');
  t.same(declared!.rcpt, [], 'and the transaction goes no further');
  t.same(undeclared!.data, [
    [552, `5.3.4 The message is larger than the ${limit} bytes accepted`],
    [552, `5.3.4 The message is larger than the ${limit} bytes accepted`],
  ]);
  t.same(longPath!.data, [[250, '2.0.0 <bob@size.example> delivered, UID 1']]);
  const ann = await f.inbox('ann@size.example');
  t.equal(ann.length, 1, 'nothing of the refused messages is stored');
  t.equal(ann[0]!.raw.length, limit + 'Return-Path: <sender@example.net>\r\n'.length);
  t.equal((await f.inbox('bob@size.example'))[0]!.raw.length, MAX, 'a 254-character sender fills the room exactly');
});

t.test('a sender longer than any RFC path can push the message over the store limit: 552 5.3.4', async (t) => {
  await f.mailbox('ann@longpath.example');
  const limit = advertisedSize(MAX);
  const fits = Buffer.concat([message('near the limit', limit).subarray(0, limit - 2), Buffer.from('\r\n')]);
  const result = await pythonLmtp(f.port, [{ from: `${'s'.repeat(400)}@example.net`, to: ['ann@longpath.example'], message: fits }]);
  t.same(result.transactions[0]!.data, [[552, `5.3.4 The message is larger than the ${limit} bytes accepted`]]);
  t.same(await f.inbox('ann@longpath.example'), []);
});

t.test('a syntactically invalid recipient is refused at RCPT; the others still get the message', async (t) => {
  await f.mailbox('ann@syntax.example');
  const result = await pythonLmtp(f.port, [
    {
      from: 'sender@example.net',
      to: ['bad..dots@syntax.example', 'ann@syntax.example', 'no-domain@', 'x@-bad-.example'],
      message: message('hi'),
    },
  ]);
  const [tx] = result.transactions;
  t.same(tx!.rcpt, [
    [550, '5.1.1 <bad..dots@syntax.example> is not a valid mailbox address'],
    [250, 'Accepted'],
    // Not even the shape local@domain: smtp-server's own syntax error.
    [501, 'Error: Bad recipient address syntax'],
    [550, '5.1.1 <x@-bad-.example> is not a valid mailbox address'],
  ]);
  t.same(tx!.data, [[250, '2.0.0 <ann@syntax.example> delivered, UID 1']], 'one reply after DATA: only accepted recipients get one');
});

t.test('pipelining: a whole transaction in one write, answered in order', async (t) => {
  await f.mailbox('ann@pipelining.example');
  await f.mailbox('bob@pipelining.example');
  const client = await RawLmtp.open(f.port);
  t.teardown(() => client.close());
  const lhlo = await client.command('LHLO client.test');
  t.match(lhlo, /^250-.*\n250-PIPELINING\n/);
  t.match(lhlo, /\n250 SIZE \d+$/);
  t.notMatch(lhlo, /STARTTLS|AUTH/, 'no TLS or AUTH offered on the trusted LMTP port');
  const first = message('pipelined one');
  const second = message('pipelined two');
  // RFC 2920: MAIL, RCPT... DATA may go together; the message after 354; then the next transaction.
  client.write(
    'MAIL FROM:<a@example.net>\r\nRCPT TO:<ann@pipelining.example>\r\nRCPT TO:<ghost@pipelining.example>\r\n' +
      'RCPT TO:<bob@pipelining.example>\r\nDATA\r\n',
  );
  t.same(await client.replies(5), ['250 Accepted', '250 Accepted', '250 Accepted', '250 Accepted', '354 End data with <CR><LF>.<CR><LF>']);
  client.write(`${dotStuff(first)}.\r\nMAIL FROM:<b@example.net>\r\nRCPT TO:<bob@pipelining.example>\r\nDATA\r\n`);
  t.same(await client.replies(6), [
    '250 2.0.0 <ann@pipelining.example> delivered, UID 1',
    '550 5.1.1 <ghost@pipelining.example> No such mailbox',
    '250 2.0.0 <bob@pipelining.example> delivered, UID 1',
    '250 Accepted',
    '250 Accepted',
    '354 End data with <CR><LF>.<CR><LF>',
  ]);
  client.write(`${dotStuff(second)}.\r\nRSET\r\nQUIT\r\n`);
  t.same(await client.replies(3), ['250 2.0.0 <bob@pipelining.example> delivered, UID 2', '250 Flushed', '221 Bye']);
  await client.closed();
  const bob = await f.inbox('bob@pipelining.example');
  t.same(
    bob.map((m) => m.raw.toString()),
    [`Return-Path: <a@example.net>\r\n${first}`, `Return-Path: <b@example.net>\r\n${second}`],
  );
});

t.test('a suspended mailbox receives in a `receive` domain', async (t) => {
  await f.mailbox('away@receive.example', { status: 'suspended' }, { suspendedDelivery: 'receive' });
  const result = await pythonLmtp(f.port, [{ from: 's@example.net', to: ['away@receive.example'], message: message('still here') }]);
  t.same(result.transactions[0]!.data, [[250, '2.0.0 <away@receive.example> delivered, UID 1']]);
});

t.test('a suspended mailbox in a `reject` domain answers 550 5.2.1; active ones in it still receive', async (t) => {
  await f.mailbox('away@reject.example', { status: 'suspended' }, { suspendedDelivery: 'reject' });
  await f.mailbox('here@reject.example');
  const result = await pythonLmtp(f.port, [
    { from: 's@example.net', to: ['away@reject.example', 'here@reject.example'], message: message('refused') },
  ]);
  t.same(result.transactions[0]!.data, [
    [550, '5.2.1 <away@reject.example> Mailbox is suspended'],
    [250, '2.0.0 <here@reject.example> delivered, UID 1'],
  ]);
  t.same(await f.inbox('away@reject.example'), []);
  // The column decides at delivery time: switching the domain to `receive` lets mail in at once.
  await f.database.db.execute(sql`update domains set suspended_delivery = 'receive' where name = 'reject.example'`);
  const again = await pythonLmtp(f.port, [{ from: 's@example.net', to: ['away@reject.example'], message: message('now') }]);
  t.same(again.transactions[0]!.data, [[250, '2.0.0 <away@reject.example> delivered, UID 1']]);
});

t.test('Unicode: a punycode sender domain stays ASCII in Return-Path; a Unicode recipient domain finds its mailbox', async (t) => {
  await f.mailbox('ann@bücher.example');
  const client = await RawLmtp.open(f.port);
  t.teardown(() => client.close());
  await client.command('LHLO client.test');
  // smtp-server turns xn-- labels into Unicode; the header must get the ASCII form back.
  t.equal(await client.command('MAIL FROM:<Sender@xn--mller-kva.example>'), '250 Accepted');
  t.equal(await client.command('RCPT TO:<ann@xn--bcher-kva.example>'), '250 Accepted');
  t.equal(await client.command('DATA'), '354 End data with <CR><LF>.<CR><LF>');
  const sent = message('idn');
  client.write(`${dotStuff(sent)}.\r\n`);
  t.same(await client.replies(1), ['250 2.0.0 <ann@bücher.example> delivered, UID 1']);
  const [stored] = await f.inbox('ann@xn--bcher-kva.example');
  t.equal(stored!.raw.toString(), `Return-Path: <Sender@xn--mller-kva.example>\r\n${sent}`);
});

t.test('HELO and EHLO are refused on an LMTP port; commands before LHLO are refused', async (t) => {
  const client = await RawLmtp.open(f.port);
  t.teardown(() => client.close());
  t.match(await client.command('EHLO client.test'), /^500 /);
  t.match(await client.command('MAIL FROM:<a@example.net>'), /^503 /);
  t.match(await client.command('LHLO client.test'), /^250-/);
  t.match(await client.command('DATA'), /^503 /, 'DATA without recipients');
});

t.test('a message the MTA sends again (its reply was lost) is not stored twice; a later resend is', async (t) => {
  await f.mailbox('ann@resend.example');
  await f.mailbox('bob@resend.example');
  const sent = message('sent twice');
  const send = (to: string[]) => pythonLmtp(f.port, [{ from: 'mta@example.net', to, message: sent }]);
  t.same((await send(['ann@resend.example'])).transactions[0]!.data, [[250, '2.0.0 <ann@resend.example> delivered, UID 1']]);
  t.same(
    (await send(['ann@resend.example', 'bob@resend.example'])).transactions[0]!.data,
    [
      [250, '2.0.0 <ann@resend.example> delivered, UID 1'],
      [250, '2.0.0 <bob@resend.example> delivered, UID 1'],
    ],
    'ann is told of the copy she has; bob, who had none, gets one',
  );
  t.equal((await f.inbox('ann@resend.example')).length, 1, 'ann holds it once');
  const [ann] = await f.database.db.select().from(accounts).where(eq(accounts.address, 'ann@resend.example'));
  t.equal(ann!.usedMessages, 1, 'and is charged once');

  const other = await pythonLmtp(f.port, [{ from: 'someone-else@example.net', to: ['ann@resend.example'], message: sent }]);
  t.same(other.transactions[0]!.data, [[250, '2.0.0 <ann@resend.example> delivered, UID 2']], 'another sender: other bytes');

  await f.database.db.execute(sql`update messages set internal_date = now() - interval '2 days' where account_id = ${ann!.id}`);
  t.same((await send(['ann@resend.example'])).transactions[0]!.data, [[250, '2.0.0 <ann@resend.example> delivered, UID 3']], 'after a day it is new mail');
});
