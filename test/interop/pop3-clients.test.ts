/**
 * Real POP3 clients against `mailroom serve`: curl's pop3:// and pop3s:// (libcurl's POP3 with
 * CAPA, SASL PLAIN, STLS) and fetchmail (USER/PASS, STLS, implicit TLS, UIDL tracking, TOP to
 * download, DELE). Mail goes in through the API; what a client downloaded is compared byte for
 * byte with what was delivered, and what a deletion did is read back through the API's folder
 * counts, the same counters an IMAP client sees.
 *
 * Needs Debian's curl and fetchmail (.ci/run installs them).
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { freePort, startServer } from '../helpers/server.js';

const TOKEN = 'interop-pop3-admin-token';
const PASSWORD = 'a long pop3 passphrase';
const DOMAIN = 'pop3.interop.test';

const pop3Port = await freePort();
const pop3sPort = await freePort();
const server = await startServer(t, {
  MAILROOM_ADMIN_TOKEN: TOKEN,
  MAILROOM_POP3_PORT: String(pop3Port),
  MAILROOM_POP3S_PORT: String(pop3sPort),
});

const work = await mkdtemp(join(tmpdir(), 'mailroom-pop3-interop-'));
t.teardown(() => rm(work, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// The API side: mailboxes, delivery, folder counts.

async function api(method: string, path: string, body?: unknown): Promise<any> {
  const raw = Buffer.isBuffer(body);
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': raw ? 'message/rfc822' : 'application/json' }),
    },
    ...(body === undefined ? {} : { body: raw ? new Uint8Array(body) : JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text === '' ? null : JSON.parse(text);
}

await api('POST', '/v1/domains', { name: DOMAIN });
let mailboxes = 0;

/** A new mailbox for one test, so tests never see each other's mail. */
async function mailbox(fields: Record<string, unknown> = {}): Promise<string> {
  const address = `user${++mailboxes}@${DOMAIN}`;
  await api('POST', '/v1/mailboxes', { address, password: PASSWORD, protocols: { pop3: true }, ...fields });
  return address;
}

async function deliver(address: string, messages: Buffer[]): Promise<void> {
  for (const raw of messages) {
    const stored = await api('POST', `/v1/mailboxes/${address}/messages`, raw);
    if (stored.size !== raw.length) throw new Error(`stored ${stored.size} bytes of ${raw.length}`);
  }
}

interface FolderUsage {
  name: string;
  messages: number;
  storageBytes: number;
}

async function folder(address: string, name: string): Promise<FolderUsage> {
  const { items } = (await api('GET', `/v1/mailboxes/${address}/folders`)) as { items: FolderUsage[] };
  return items.find((f) => f.name === name)!;
}

// ---------------------------------------------------------------------------------------------
// The messages: every one has CRLF line ends, so what a client gets back must be the same bytes.

const header = (subject: string) =>
  `From: Sender <sender@example.org>\r\nTo: reader@${DOMAIN}\r\nSubject: ${subject}\r\n` +
  `Date: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.org>\r\n`;

/** Lines a POP3 server must stuff and a client must unstuff: '.', '..', '.x', '...', '. ' and '.\r' ends. */
const DOTTY = Buffer.from(
  `${header('dots')}\r\n` +
    '.\r\n' +
    '..\r\n' +
    '...\r\n' +
    '.leading dot\r\n' +
    '..two leading dots\r\n' +
    '. a dot and a space\r\n' +
    'a line\r\n.\r\nthat looks like the end\r\n' +
    '.\r\n.\r\n' +
    'last line\r\n' +
    '.\r\n',
);

/** Over 64 KiB, with 8-bit bytes and dotted lines on both sides of the server's 64 KiB pieces. */
function large(): Buffer {
  const lines: string[] = [];
  for (let i = 0; lines.join('\r\n').length < 200_000; i++) {
    lines.push(i % 7 === 0 ? `.${i} dotted ${'\u00e9'.repeat(i % 40)}` : `line ${i} ${'x'.repeat(i % 90)} \u00fc\u00df`);
  }
  return Buffer.from(`${header('large')}Content-Type: text/plain; charset=iso-8859-1\r\n\r\n${lines.join('\r\n')}\r\n`, 'latin1');
}

const MESSAGES = [Buffer.from(`${header('first')}\r\nHello from the first message.\r\n`), DOTTY, large()];

// ---------------------------------------------------------------------------------------------
// Running the clients.

interface Run {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

function run(command: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout: Buffer.concat(stdout), stderr }));
  });
}

type Transport = 'pop3' | 'stls' | 'pop3s';
const TRANSPORTS: Transport[] = ['pop3', 'stls', 'pop3s'];

/** curl on the plain port, on the plain port upgraded with STLS, or on the POP3S port (-k: self-signed). */
function curl(transport: Transport, address: string, path = '', extra: string[] = [], password = PASSWORD): Promise<Run> {
  const url = transport === 'pop3s' ? `pop3s://127.0.0.1:${pop3sPort}/${path}` : `pop3://127.0.0.1:${pop3Port}/${path}`;
  const tls = transport === 'stls' ? ['--ssl-reqd', '-k'] : transport === 'pop3s' ? ['-k'] : [];
  return run('curl', ['-sS', '--max-time', '30', ...tls, ...extra, '-u', `${address}:${password}`, url]);
}

async function curlOk(t: Test, transport: Transport, address: string, path = '', extra: string[] = []): Promise<Buffer> {
  const result = await curl(transport, address, path, extra);
  t.equal(result.status, 0, `curl ${[transport, ...extra, path || 'LIST'].join(' ')} succeeds`, { stderr: result.stderr });
  return result.stdout;
}

/** curl's LIST output ("n size" lines) as [number, size] pairs; for an empty one curl prints a lone CRLF. */
const listing = (output: Buffer) =>
  output
    .toString('latin1')
    .split('\r\n')
    .filter((line) => line !== '')
    .map((line) => line.split(' ').map(Number) as [number, number]);

interface FetchmailOptions {
  transport: Transport;
  keep?: boolean;
}

/**
 * A fetchmail set-up of its own (rc file, UIDL id file, pid file) writing each message it
 * downloads, in order, to `out/0000`, `out/0001`, … through an MDA. `no stripcr` keeps the CRLF
 * line ends the server sent, so the files can be compared byte for byte.
 */
async function fetchmailer(address: string) {
  const home = await mkdtemp(join(work, 'fetchmail-'));
  await chmod(home, 0o700);
  const out = join(home, 'out');
  const mda = join(home, 'deliver.sh');
  await writeFile(mda, `#!/bin/sh\nmkdir -p '${out}'\nn=$(ls '${out}' | wc -l)\nexec cat > '${out}'/$(printf %04d "$n")\n`);
  await chmod(mda, 0o755);
  let delivered = 0;
  return {
    /** Runs one poll; answers fetchmail's exit status (0: mail fetched, 1: no mail) and the new files. */
    async poll({ transport, keep = false }: FetchmailOptions): Promise<{ status: number | null; log: string; messages: Buffer[] }> {
      const rc = join(home, 'fetchmailrc');
      const port = transport === 'pop3s' ? pop3sPort : pop3Port;
      await writeFile(
        rc,
        [
          'set no syslog',
          `poll 127.0.0.1 service ${port} protocol pop3 uidl`,
          `  user "${address}" there password "${PASSWORD}"`,
          // Plain: no STLS at all; stls: fetchmail's default opportunistic STLS; pop3s: implicit TLS.
          transport === 'pop3' ? "  sslproto ''" : transport === 'pop3s' ? '  ssl no sslcertck' : '  no sslcertck',
          `  ${keep ? 'keep' : 'no keep'} no stripcr`,
          `  mda "${mda}"`,
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      const result = await run('fetchmail', ['-f', rc, '--nodetach', '-v', '--idfile', join(home, 'ids')], {
        HOME: home,
        FETCHMAILHOME: home,
      });
      const files = (await readdir(out).catch(() => [] as string[])).sort();
      const messages = await Promise.all(files.slice(delivered).map((name) => readFile(join(out, name))));
      delivered = files.length;
      return { status: result.status, log: result.stdout.toString('utf8') + result.stderr, messages };
    },
  };
}

/** fetchmail puts one Received: header (with continuation lines) on top and changes nothing else. */
function withoutReceived(t: Test, message: Buffer): Buffer {
  const text = message.toString('latin1');
  const match = /^Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*/.exec(text);
  t.match(match?.[0] ?? '', /with POP3 \(fetchmail/, 'fetchmail put its Received: header on top');
  return match ? message.subarray(match[0].length) : message;
}

/** The POP3 commands fetchmail sent, from its -v log. */
const commandsSent = (log: string) => [...log.matchAll(/POP3> (\S+)/g)].map((m) => m[1]);

// ---------------------------------------------------------------------------------------------

t.test('curl lists and retrieves byte-exact over pop3://, STLS and pop3s://', async (t) => {
  const address = await mailbox();
  await deliver(address, MESSAGES);
  for (const transport of TRANSPORTS) {
    t.same(
      listing(await curlOk(t, transport, address)),
      MESSAGES.map((m, i) => [i + 1, m.length]),
      `${transport}: LIST gives every message with its exact size`,
    );
    for (const [i, raw] of MESSAGES.entries()) {
      const got = await curlOk(t, transport, address, String(i + 1));
      t.ok(got.equals(raw), `${transport}: RETR ${i + 1} (${raw.length} bytes) is byte-exact`);
    }
  }
  const uidl = await curlOk(t, 'pop3', address, '', ['-X', 'UIDL']);
  t.equal(uidl.toString().trim().split('\r\n').length, MESSAGES.length, 'curl -X UIDL lists one id per message');
  t.same(await curlOk(t, 'pop3s', address, '', ['-X', 'UIDL']), uidl, 'the UIDL listing is the same in another session');

  const wrong = await curl('pop3', address, '', [], 'not the password');
  t.equal(wrong.status, 67, 'a wrong password is a refused login to curl (exit 67)');
  t.equal((await folder(address, 'INBOX')).messages, MESSAGES.length, 'reading removed nothing');
});

t.test('curl -X DELE removes the message: gone in the next session and in the IMAP-visible counts', async (t) => {
  const address = await mailbox();
  await deliver(address, MESSAGES);
  const uidlBefore = (await curlOk(t, 'pop3', address, '', ['-X', 'UIDL'])).toString().trim().split('\r\n');

  t.same(await curlOk(t, 'pop3', address, '2', ['-X', 'DELE', '-I']), Buffer.alloc(0), 'DELE 2 answers +OK');
  t.same(
    listing(await curlOk(t, 'pop3', address)),
    [
      [1, MESSAGES[0]!.length],
      [2, MESSAGES[2]!.length],
    ],
    'the next session lists the other two, renumbered',
  );
  const uidlAfter = (await curlOk(t, 'pop3', address, '', ['-X', 'UIDL'])).toString().trim().split('\r\n');
  t.same(
    uidlAfter.map((line) => line.split(' ')[1]),
    [uidlBefore[0], uidlBefore[2]].map((line) => line!.split(' ')[1]),
    'the others keep their UIDL',
  );
  t.ok((await curlOk(t, 'pop3s', address, '2')).equals(MESSAGES[2]!), 'message 2 is now the former message 3');

  const inbox = await folder(address, 'INBOX');
  t.equal(inbox.messages, 2, 'the INBOX count an IMAP client sees dropped');
  t.equal(inbox.storageBytes, MESSAGES[0]!.length + MESSAGES[2]!.length, 'and its bytes');
  const usage = (await api('GET', `/v1/mailboxes/${address}`)).usage;
  t.same(usage, { storageBytes: inbox.storageBytes, messages: 2 }, 'quota usage dropped with it (pop3DeleteMode remove)');
  t.equal((await folder(address, 'Trash')).messages, 0, 'nothing went to Trash');
});

t.test('fetchmail with keep and uidl: downloads everything once, leaves it on the server', async (t) => {
  const address = await mailbox();
  await deliver(address, MESSAGES);
  const fetchmail = await fetchmailer(address);

  const first = await fetchmail.poll({ transport: 'stls', keep: true });
  t.equal(first.status, 0, 'fetchmail fetched mail', { log: first.log });
  t.match(first.log, /POP3> STLS/, 'fetchmail upgraded the plain connection with STLS');
  t.ok(commandsSent(first.log).includes('UIDL'), 'and tracked the messages by UIDL');
  t.notOk(commandsSent(first.log).includes('DELE'), 'keep: no DELE');
  t.equal(first.messages.length, MESSAGES.length, 'every message was downloaded');
  for (const [i, raw] of MESSAGES.entries()) {
    t.ok(withoutReceived(t, first.messages[i] ?? Buffer.alloc(0)).equals(raw), `message ${i + 1} is byte-exact`);
  }
  t.equal((await folder(address, 'INBOX')).messages, MESSAGES.length, 'the messages stay on the server');

  const second = await fetchmail.poll({ transport: 'stls', keep: true });
  t.equal(second.status, 1, 'a second poll finds no new mail (fetchmail exit 1)');
  t.equal(second.messages.length, 0, 'and downloads nothing');
  t.match(second.log, new RegExp(`${MESSAGES.length} messages \\(${MESSAGES.length} seen\\)`), 'it knows every UIDL');

  const later = Buffer.from(`${header('later')}\r\nArrived after the first poll.\r\n`);
  await deliver(address, [later]);
  const third = await fetchmail.poll({ transport: 'pop3', keep: true });
  t.equal(third.status, 0, 'new mail: fetched');
  t.notMatch(third.log, /POP3> STLS/, "sslproto '': this time without TLS");
  t.equal(third.messages.length, 1, 'only the new message');
  t.ok(withoutReceived(t, third.messages[0] ?? Buffer.alloc(0)).equals(later), 'byte-exact');
  t.equal((await folder(address, 'INBOX')).messages, MESSAGES.length + 1, 'everything is still on the server');
});

t.test('fetchmail over POP3S without keep: downloads everything and the server removes it', async (t) => {
  const address = await mailbox();
  await deliver(address, MESSAGES);
  const fetchmail = await fetchmailer(address);

  const poll = await fetchmail.poll({ transport: 'pop3s' });
  t.equal(poll.status, 0, 'fetchmail fetched mail', { log: poll.log });
  t.match(poll.log, /SSL\/TLS: using protocol TLS/, 'over implicit TLS');
  t.equal(commandsSent(poll.log).filter((c) => c === 'DELE').length, MESSAGES.length, 'one DELE per message');
  t.equal(poll.messages.length, MESSAGES.length, 'every message was downloaded');
  for (const [i, raw] of MESSAGES.entries()) {
    t.ok(withoutReceived(t, poll.messages[i] ?? Buffer.alloc(0)).equals(raw), `message ${i + 1} is byte-exact`);
  }
  const inbox = await folder(address, 'INBOX');
  t.same([inbox.messages, inbox.storageBytes], [0, 0], 'the INBOX is empty for IMAP too');
  t.same((await api('GET', `/v1/mailboxes/${address}`)).usage, { storageBytes: 0, messages: 0 }, 'quota usage back to zero');
  t.same(listing(await curlOk(t, 'pop3', address)), [], 'curl lists nothing');
  const again = await fetchmail.poll({ transport: 'pop3s' });
  t.equal(again.status, 1, 'the next poll has no mail');
});

t.test('pop3DeleteMode hide: fetchmail deletes, IMAP keeps the messages, POP3 never offers them again', async (t) => {
  const address = await mailbox({ pop3DeleteMode: 'hide' });
  await deliver(address, MESSAGES);
  const fetchmail = await fetchmailer(address);

  const poll = await fetchmail.poll({ transport: 'pop3' });
  t.equal(poll.status, 0, 'fetchmail fetched mail', { log: poll.log });
  t.equal(commandsSent(poll.log).filter((c) => c === 'DELE').length, MESSAGES.length, 'one DELE per message');
  for (const [i, raw] of MESSAGES.entries()) {
    t.ok(withoutReceived(t, poll.messages[i] ?? Buffer.alloc(0)).equals(raw), `message ${i + 1} is byte-exact`);
  }
  const inbox = await folder(address, 'INBOX');
  t.equal(inbox.messages, MESSAGES.length, 'the INBOX still holds every message for IMAP');
  t.equal(inbox.storageBytes, MESSAGES.reduce((n, m) => n + m.length, 0), 'with all their bytes');
  t.equal((await api('GET', `/v1/mailboxes/${address}`)).usage.messages, MESSAGES.length, 'and they still count');
  t.equal((await folder(address, 'Trash')).messages, 0, 'nothing went to Trash');

  t.same(listing(await curlOk(t, 'pop3s', address)), [], 'POP3 (curl) lists none of them');
  const again = await fetchmail.poll({ transport: 'pop3' });
  t.equal(again.status, 1, 'fetchmail finds no mail');
  t.equal(again.messages.length, 0, 'and downloads nothing');

  const later = Buffer.from(`${header('after hiding')}\r\nNew mail is offered as usual.\r\n`);
  await deliver(address, [later]);
  t.same(listing(await curlOk(t, 'pop3', address)), [[1, later.length]], 'new mail is offered as usual');
  t.equal((await folder(address, 'INBOX')).messages, MESSAGES.length + 1, 'beside the hidden ones');
});

t.test('pop3DeleteMode trash: fetchmail deletes, the messages move to Trash', async (t) => {
  const address = await mailbox({ pop3DeleteMode: 'trash' });
  await deliver(address, MESSAGES);
  const poll = await (await fetchmailer(address)).poll({ transport: 'pop3s' });
  t.equal(poll.status, 0, 'fetchmail fetched mail', { log: poll.log });
  t.equal(poll.messages.length, MESSAGES.length, 'every message was downloaded');
  t.equal((await folder(address, 'INBOX')).messages, 0, 'the INBOX is empty');
  const trash = await folder(address, 'Trash');
  t.same([trash.messages, trash.storageBytes], [MESSAGES.length, MESSAGES.reduce((n, m) => n + m.length, 0)], 'Trash has them');
  t.same(listing(await curlOk(t, 'pop3', address)), [], 'POP3 lists nothing');
});

t.test('a message whose lines begin with "." round-trips byte-exact through curl and fetchmail', async (t) => {
  const address = await mailbox();
  // Alone in the mailbox, and once more with a body that starts with a dot right after the header.
  const bare = Buffer.from('Subject: dot first\r\n\r\n.\r\n..\r\n.x\r\n');
  await deliver(address, [DOTTY, bare]);
  for (const transport of TRANSPORTS) {
    t.ok((await curlOk(t, transport, address, '1')).equals(DOTTY), `curl ${transport}: the dotted message is byte-exact`);
    t.ok((await curlOk(t, transport, address, '2')).equals(bare), `curl ${transport}: so is the one starting with dots`);
  }
  const poll = await (await fetchmailer(address)).poll({ transport: 'stls', keep: true });
  t.equal(poll.status, 0, 'fetchmail fetched mail', { log: poll.log });
  t.ok(withoutReceived(t, poll.messages[0] ?? Buffer.alloc(0)).equals(DOTTY), 'fetchmail: the dotted message is byte-exact');
  t.ok(withoutReceived(t, poll.messages[1] ?? Buffer.alloc(0)).equals(bare), 'fetchmail: so is the one starting with dots');
});

t.test('a message stored with bare LF line ends is served with CRLF, the size LIST announced', async (t) => {
  const address = await mailbox();
  const lf = Buffer.from('Subject: unix line ends\n\nfirst\n.dotted\nlast\n');
  await deliver(address, [lf]);
  const crlf = Buffer.from(lf.toString('latin1').replaceAll('\n', '\r\n'), 'latin1');
  t.same(listing(await curlOk(t, 'pop3', address)), [[1, crlf.length]], 'LIST counts the CRLF form');
  t.ok((await curlOk(t, 'pop3', address, '1')).equals(crlf), 'curl gets the CRLF form');
  const poll = await (await fetchmailer(address)).poll({ transport: 'pop3', keep: true });
  t.ok(withoutReceived(t, poll.messages[0] ?? Buffer.alloc(0)).equals(crlf), 'and so does fetchmail');
});
