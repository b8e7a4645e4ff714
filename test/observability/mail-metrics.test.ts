import t from 'tap';
import { gatewayFixture } from '../helpers/gateway.js';
import { startTestImap } from '../helpers/imap.js';
import { LineClient, run } from '../helpers/line-client.js';
import { eventually, labelValues, sample } from '../helpers/metrics.js';
import { PASSWORD, startTestPop3 } from '../helpers/pop3.js';

// Two failures lock a mailbox, so locked_out can be seen; addresses are never locked.
const fixture = await gatewayFixture(t, undefined, { failuresPerIp: 0, failuresPerMailbox: 2, lockSeconds: 900, maxDelayMs: 0 });
const imap = await startTestImap(t, { fixture });
const pop3 = await startTestPop3(t, { fixture });
const metrics = () => fixture.services.metrics.registry.metrics();

const MESSAGE = Buffer.from('From: sender@example.net\r\nSubject: counted\r\n\r\nHello, metrics.\r\n');
const HEADER_BYTES = MESSAGE.indexOf('\r\n\r\n') + 4;

/** One LOGIN on a connection of its own, closed again; answers the tagged reply. */
async function imapLogin(address: string, password = PASSWORD): Promise<string> {
  const client = await LineClient.connect(imap.port);
  try {
    await client.readLine();
    return (await run(client, `l LOGIN ${address} "${password}"`)).at(-1)!;
  } finally {
    client.close();
  }
}

async function pop3Client(): Promise<LineClient> {
  const client = await LineClient.connect(pop3.port);
  t.teardown(() => client.close());
  await client.readLine();
  return client;
}

t.test('IMAP logins are counted by result, and the throttle metrics stay beside them', async (t) => {
  await fixture.mailbox('ok@metrics.test');
  await fixture.mailbox('noimap@metrics.test', { protocols: { imap: false } });
  await fixture.mailbox('away@metrics.test', { status: 'suspended' });
  await fixture.mailbox('locked@metrics.test');
  t.match(await imapLogin('ok@metrics.test'), /^l OK/);
  t.match(await imapLogin('ok@metrics.test', 'wrong password'), /^l NO \[AUTHENTICATIONFAILED\]/);
  t.match(await imapLogin('nobody@metrics.test'), /^l NO \[AUTHENTICATIONFAILED\]/);
  t.match(await imapLogin('noimap@metrics.test'), /^l NO \[CONTACTADMIN\]/);
  t.match(await imapLogin('away@metrics.test'), /^l NO \[CONTACTADMIN\]/);
  await imapLogin('locked@metrics.test', 'wrong one');
  await imapLogin('locked@metrics.test', 'wrong two');
  t.match(await imapLogin('locked@metrics.test'), /^l NO \[UNAVAILABLE\]/);

  const text = await metrics();
  const logins = (result: string) => sample(text, 'mailroom_logins_total', { protocol: 'imap', result });
  t.equal(logins('ok'), 1);
  t.equal(logins('invalid_credentials'), 4, 'wrong passwords and unknown addresses alike');
  t.equal(logins('protocol_disabled'), 1);
  t.equal(logins('mailbox_suspended'), 1);
  t.equal(logins('locked_out'), 1);
  t.equal(sample(text, 'mailroom_login_failures_total', { protocol: 'imap' }), 4, "the throttle's own counter is served from the same registry");
  t.equal(sample(text, 'mailroom_logins_total', { protocol: 'pop3', result: 'ok' }), undefined, 'no POP3 login yet');
});

t.test('IMAP: live sessions, FETCH bytes and command latency by known command name only', async (t) => {
  await fixture.mailbox('reader@metrics.test');
  await imap.deliver('reader@metrics.test', MESSAGE);
  const sessions = async () => sample(await metrics(), 'mailroom_sessions', { protocol: 'imap' });
  t.ok(await eventually(async () => (await sessions()) === 0), 'the sessions of the login test have ended');
  const before = await metrics();
  const client = await imap.login('reader@metrics.test');
  t.equal(await sessions(), 1, 'one session logged in');

  t.match((await run(client, 's SELECT INBOX')).at(-1), /^s OK/);
  const fetched = await run(client, 'f FETCH 1 BODY[]');
  t.match(fetched.at(-1), /^f OK/);
  t.match((await run(client, 'b FROBNICATE now')).at(-1), /^b BAD/);
  t.match((await run(client, 'u UID FROBNICATE 1')).at(-1), /^u BAD/);
  t.match((await run(client, 'x LOGIN again please')).at(-1), /^x BAD/, 'a known command in the wrong state');
  client.send('i IDLE\r\n');
  t.match(await client.readLine(), /^\+ /);
  client.send('DONE\r\n');
  t.match(await client.readLine(), /^i OK/);
  const during = await metrics();
  const sent = (text: string) => sample(text, 'mailroom_bytes_sent_total', { protocol: 'imap' }) ?? 0;
  const fetchBytes = sent(during) - sent(before);
  t.ok(fetchBytes >= MESSAGE.length && fetchBytes < MESSAGE.length + 100, `the FETCH response's bytes are counted (${fetchBytes})`);

  const count = (command: string) => sample(during, 'mailroom_command_duration_seconds_count', { protocol: 'imap', command });
  t.equal(count('SELECT'), 1);
  t.equal(count('FETCH'), 1);
  t.equal(count('other'), 2, 'unknown commands, UID ones too, are "other"');
  t.equal(count('IDLE'), undefined, 'IDLE is not timed: it lasts as long as the client waits');
  t.equal(count('LOGIN'), 8 + 1 + 1, 'every LOGIN so far, the one refused for its state too');
  t.equal(
    sample(during, 'mailroom_command_duration_seconds_bucket', { protocol: 'imap', command: 'FETCH', le: '+Inf' }),
    1,
    'histogram buckets are served',
  );
  t.ok(sample(during, 'mailroom_command_duration_seconds_bucket', { protocol: 'imap', command: 'FETCH', le: '0.005' }) !== undefined);
  t.notOk(
    labelValues(during, 'mailroom_command_duration_seconds_count', 'command').some((name) => name.includes('FROBNICATE')),
    'a client cannot add label values',
  );

  await run(client, 'o LOGOUT');
  t.ok(await eventually(async () => (await sessions()) === 0), 'the session ended');
});

t.test('POP3: logins, RETR and TOP bytes, command latency', async (t) => {
  await fixture.mailbox('pop@metrics.test');
  await imap.deliver('pop@metrics.test', MESSAGE);
  const failed = await pop3Client();
  await failed.command('USER pop@metrics.test');
  t.match(await failed.command('PASS not it'), /^-ERR \[AUTH\]/);

  const client = await pop3Client();
  await client.command('USER pop@metrics.test');
  t.match(await client.command(`PASS ${PASSWORD}`), /^\+OK/);
  t.equal(sample(await metrics(), 'mailroom_sessions', { protocol: 'pop3' }), 1);
  t.match(await client.command('RETR 1'), /^\+OK/);
  await client.readMultiline();
  t.match(await client.command('TOP 1 0'), /^\+OK/);
  await client.readMultiline();
  t.match(await client.command('XYZZY'), /^-ERR/);
  t.match(await client.command('PASS again'), /^-ERR/);

  const text = await metrics();
  t.equal(sample(text, 'mailroom_logins_total', { protocol: 'pop3', result: 'ok' }), 1);
  t.equal(sample(text, 'mailroom_logins_total', { protocol: 'pop3', result: 'invalid_credentials' }), 1);
  // The message goes out byte for byte then '.\r\n'; TOP 0 sends the header and the blank line.
  t.equal(sample(text, 'mailroom_bytes_sent_total', { protocol: 'pop3' }), MESSAGE.length + 3 + HEADER_BYTES + 3);
  const count = (command: string) => sample(text, 'mailroom_command_duration_seconds_count', { protocol: 'pop3', command });
  t.equal(count('USER'), 2);
  t.equal(count('PASS'), 3, 'the one refused in the transaction state too');
  t.equal(count('RETR'), 1);
  t.equal(count('TOP'), 1);
  t.equal(count('other'), 1);

  t.match(await client.command('QUIT'), /^\+OK/);
  t.ok(await eventually(async () => sample(await metrics(), 'mailroom_sessions', { protocol: 'pop3' }) === 0), 'the session ended');
});

t.test('change-feed notifications are counted as they arrive', async (t) => {
  const received = async () => sample(await metrics(), 'mailroom_change_notifications_total') ?? 0;
  const before = await received();
  await imap.deliver('reader@metrics.test', MESSAGE);
  t.ok(await eventually(async () => (await received()) > before), 'a delivery notifies');
  t.equal(sample(await metrics(), 'mailroom_change_feed_resyncs_total'), 0, 'no reconnection, no resync');
});
