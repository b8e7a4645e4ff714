/**
 * mbsync (Debian's isync) against `mailroom serve`: a full two-way sync of a mailbox with folders
 * and a local Maildir, over plain IMAP on loopback, IMAPS and STARTTLS.
 *
 * Mail goes in through the API (folders made with IMAP CREATE); Python's imaplib
 * (imaplib-client.py) is the second device that reads and changes the server's side. What
 * mbsync wrote is compared byte for byte with what was delivered, allowing only for mbsync's own
 * two changes: Maildir files have LF line ends (IMAP has CRLF), and each copied message carries
 * an `X-TUID:` line mbsync adds as the last header field to track it.
 *
 * Every run uses `-Dn` so that a failing assertion shows the IMAP conversation.
 *
 * Needs Debian's isync (mbsync 1.4) and Python 3.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { freePort, startServer } from '../helpers/server.js';

const TOKEN = 'interop-mbsync-admin-token';
const PASSWORD = 'a long mbsync passphrase';
const DOMAIN = 'mbsync.interop.test';
const ADDRESS = `reader@${DOMAIN}`;
const IMAPLIB_CLIENT = new URL('./imaplib-client.py', import.meta.url).pathname;

const work = await mkdtemp(join(tmpdir(), 'mailroom-mbsync-interop-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
// Our own data dir, so the self-signed certificate the server makes there can be handed to mbsync.
const dataDir = join(work, 'data');
await mkdir(dataDir);
const CERT = join(dataDir, 'tls', 'self-signed-cert.pem');

const imapPort = await freePort();
const imapsPort = await freePort();
const server = await startServer(t, {
  MAILROOM_ADMIN_TOKEN: TOKEN,
  MAILROOM_IMAP_PORT: String(imapPort),
  MAILROOM_IMAPS_PORT: String(imapsPort),
  MAILROOM_DATA_DIR: dataDir,
});
// The set-up below runs at top level: if it throws, tap's teardowns never run; don't leave the server behind.
process.once('exit', () => server.child.kill('SIGTERM'));

// ---------------------------------------------------------------------------------------------
// The API side.

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

/** Stores raw in folder (its name as the API spells it, UTF-8); answers the UID. */
async function deliver(address: string, raw: Buffer, folder: string): Promise<number> {
  const stored = await api('POST', `/v1/mailboxes/${address}/messages?folder=${encodeURIComponent(folder)}`, raw);
  if (stored.size !== raw.length) throw new Error(`stored ${stored.size} bytes of ${raw.length}`);
  return stored.uid as number;
}

// ---------------------------------------------------------------------------------------------
// Running programs: mbsync and the imaplib client.

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { PATH: process.env.PATH, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: 90_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

type ImapOp =
  | { op: 'create'; name: string }
  | { op: 'list' }
  | { op: 'messages'; name: string }
  | { op: 'store'; name: string; uid: number; flags: string }
  | { op: 'expunge'; name: string; uid: number };

interface ServerMessage {
  uid: number;
  flags: string[];
  body: Buffer;
}

/** Runs ops in one imaplib session (plain IMAP on loopback); answers one result per op. */
async function imaplib(ops: ImapOp[], user = ADDRESS): Promise<any[]> {
  const result = await run('python3', [IMAPLIB_CLIENT], {
    input: JSON.stringify({ port: imapPort, user, password: PASSWORD, ops }),
  });
  if (result.status !== 0) throw new Error(`imaplib-client.py ${JSON.stringify(ops)}: ${result.stderr}`);
  return JSON.parse(result.stdout) as any[];
}

async function serverFolders(user = ADDRESS): Promise<{ name: string; attributes: string[] }[]> {
  const [folders] = await imaplib([{ op: 'list' }], user);
  return folders;
}

/** Names of the folders that hold messages (LIST without \Noselect), as they go on the wire. */
async function selectableFolders(user = ADDRESS): Promise<string[]> {
  return (await serverFolders(user))
    .filter((f) => !f.attributes.some((a) => a.toLowerCase() === '\\noselect'))
    .map((f) => f.name)
    .sort();
}

async function serverMessages(names: string[], user = ADDRESS): Promise<Map<string, ServerMessage[]>> {
  const results = await imaplib(
    names.map((name) => ({ op: 'messages', name })),
    user,
  );
  return new Map(
    names.map((name, i) => [
      name,
      (results[i] as { uid: number; flags: string[]; body: string }[]).map((m) => ({
        uid: m.uid,
        flags: m.flags,
        body: Buffer.from(m.body, 'base64'),
      })),
    ]),
  );
}

type Security = 'none' | 'imaps' | 'starttls';

interface Replica {
  /** The Maildir root: INBOX is `INBOX/`, every other folder its name verbatim below the root. */
  maildir: string;
  sync(): Promise<Run>;
}

/**
 * A Maildir of its own with an mbsyncrc for it: Patterns *, Create Both, Expunge Both, state
 * kept in each Maildir folder (SyncState *). TLS is checked against the server's own
 * self-signed certificate (a "host" certificate in CertificateFile, which isync trusts as is).
 */
async function replica(name: string, security: Security, user = ADDRESS): Promise<Replica> {
  const home = join(work, name);
  const maildir = join(home, 'Mail');
  await mkdir(maildir, { recursive: true });
  const tls =
    security === 'none'
      ? ['SSLType None']
      : [
          security === 'imaps' ? 'SSLType IMAPS' : 'SSLType STARTTLS',
          `CertificateFile ${CERT}`,
          'SystemCertificates no',
          'SSLVersions TLSv1.2 TLSv1.3',
        ];
  const rc = join(home, 'mbsyncrc');
  await writeFile(
    rc,
    [
      'IMAPAccount mailroom',
      'Host 127.0.0.1',
      `Port ${security === 'imaps' ? imapsPort : imapPort}`,
      `User ${user}`,
      `Pass "${PASSWORD}"`,
      ...tls,
      '',
      'IMAPStore mailroom-far',
      'Account mailroom',
      '',
      'MaildirStore mailroom-near',
      `Path ${maildir}/`,
      `Inbox ${maildir}/INBOX`,
      'SubFolders Verbatim',
      '',
      'Channel mailroom',
      'Far :mailroom-far:',
      'Near :mailroom-near:',
      'Patterns *',
      'Create Both',
      'Expunge Both',
      'SyncState *',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return {
    maildir,
    sync: () => run('mbsync', ['-Dn', '-c', rc, 'mailroom'], { env: { HOME: home } }),
  };
}

/** Runs a sync and checks it succeeded; answers the run, whose log goes with every failure. */
async function syncOk(t: Test, replica: Replica, what: string): Promise<Run> {
  const result = await replica.sync();
  t.equal(result.status, 0, `mbsync ${what}: exit 0`, { log: log(result) });
  return result;
}

const log = (result: Run) => (result.stdout + result.stderr).slice(-60_000);

/** The IMAP commands mbsync sent in a run (without tags), from its -Dn log. */
const commands = (result: Run) =>
  [...(result.stdout + result.stderr).matchAll(/^(?:\(\d+ in progress\) )?>>> \d+ (.*)$/gm)].map((m) => m[1]!);

/** mbsync's "far side: N messages, M recent" for each folder it opened. */
function farSideCounts(result: Run): Map<string, { messages: number; recent: number }> {
  const counts = new Map<string, { messages: number; recent: number }>();
  let box: string | null = null;
  for (const line of (result.stdout + result.stderr).split('\n')) {
    const opening = /^Opening far side box (.*)\.\.\.$/.exec(line);
    if (opening) box = opening[1]!;
    const count = /^far side: (\d+) messages, (\d+) recent$/.exec(line);
    if (count && box !== null) counts.set(box, { messages: Number(count[1]), recent: Number(count[2]) });
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------
// Maildirs.

interface LocalMessage {
  /** The folder's name as mbsync spells it on the wire ("INBOX", "Projects/2026"). */
  folder: string;
  path: string;
  /** The Maildir info flags after ":2,", e.g. "FS". */
  flags: string;
  content: Buffer;
}

/** Every message file in the Maildir tree, by folder; folders are the directories with cur/new/tmp. */
async function readMaildir(root: string): Promise<{ folders: string[]; messages: LocalMessage[] }> {
  const folders: string[] = [];
  const messages: LocalMessage[] = [];
  async function walk(dir: string, name: string): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true });
    const names = new Set(entries.filter((e) => e.isDirectory()).map((e) => e.name));
    const isFolder = names.has('cur') && names.has('new') && names.has('tmp');
    if (isFolder) {
      folders.push(name);
      for (const sub of ['new', 'cur']) {
        for (const file of (await readdir(join(dir, sub))).sort()) {
          const path = join(dir, sub, file);
          const info = /:2,([A-Za-z]*)$/.exec(file);
          messages.push({ folder: name, path, flags: info?.[1] ?? '', content: await readFile(path) });
        }
      }
    }
    for (const entry of entries) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      if (isFolder && ['cur', 'new', 'tmp'].includes(entry.name)) continue;
      await walk(join(dir, entry.name), name === '' ? entry.name : `${name}/${entry.name}`);
    }
  }
  await walk(root, '');
  return { folders: folders.filter((f) => f !== '').sort(), messages };
}

/** Gives a message file new Maildir flags, moving it to cur/ as a mail reader does. */
async function setLocalFlags(message: LocalMessage, flags: string): Promise<void> {
  const file = message.path.slice(message.path.lastIndexOf('/') + 1).replace(/:2,[A-Za-z]*$/, '');
  const folderDir = message.path.slice(0, message.path.lastIndexOf('/', message.path.lastIndexOf('/') - 1));
  await rename(message.path, join(folderDir, 'cur', `${file}:2,${flags}`));
}

let localFiles = 0;
/** A new message file as a mail reader would write it (LF line ends), straight into new/ or cur/. */
async function writeLocal(maildir: string, folder: string, content: string, flags?: string): Promise<Buffer> {
  const dir = join(maildir, folder);
  await Promise.all(['cur', 'new', 'tmp'].map((sub) => mkdir(join(dir, sub), { recursive: true })));
  const name = `1795900000.M${++localFiles}P${process.pid}.interop-test`;
  const bytes = Buffer.from(content, 'utf8');
  await writeFile(join(dir, flags === undefined ? 'new' : 'cur', flags === undefined ? name : `${name}:2,${flags}`), bytes);
  return bytes;
}

/** The left part of the Message-ID, `<plain@example.org>` -> "plain": how these tests name messages. */
const messageId = (content: Buffer) => /^Message-ID:\s*<([^@>]+)@/im.exec(content.toString('latin1'))?.[1] ?? null;

/** The first X-TUID field in the header taken out, as mbsync added it; the rest untouched. */
function withoutTuid(content: Buffer, all = false): Buffer {
  const text = content.toString('latin1');
  const blank = /\r?\n\r?\n/.exec(text);
  // The header with the line end of its last field; the rest starts with the empty line.
  const split = blank === null ? text.length : blank.index + (blank[0].startsWith('\r') ? 2 : 1);
  const pattern = all ? /^X-TUID: [^\r\n]*\r?\n/gim : /^X-TUID: [^\r\n]*\r?\n/im;
  return Buffer.from(text.slice(0, split).replace(pattern, '') + text.slice(split), 'latin1');
}

const toLf = (raw: Buffer) => Buffer.from(raw.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
const toCrlf = (raw: Buffer) => Buffer.from(raw.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');

/** Buffer equality that reports where two large messages part ways instead of dumping both. */
function sameBytes(t: Test, got: Buffer | undefined, want: Buffer, message: string): void {
  if (got === undefined) {
    t.fail(message, { reason: 'missing' });
    return;
  }
  if (got.equals(want)) {
    t.pass(message);
    return;
  }
  let at = 0;
  while (at < got.length && at < want.length && got[at] === want[at]) at++;
  t.fail(message, {
    gotLength: got.length,
    wantLength: want.length,
    firstDifference: at,
    got: got.subarray(Math.max(0, at - 40), at + 40).toString('latin1'),
    want: want.subarray(Math.max(0, at - 40), at + 40).toString('latin1'),
  });
}

function byMessageId(messages: LocalMessage[]): Map<string, LocalMessage[]> {
  const map = new Map<string, LocalMessage[]>();
  for (const message of messages) {
    const id = messageId(message.content) ?? `(no Message-ID) ${message.path}`;
    map.set(id, [...(map.get(id) ?? []), message]);
  }
  return map;
}

function findServerMessage(folder: ServerMessage[] | undefined, id: string): ServerMessage | undefined {
  return folder?.find((m) => messageId(m.body) === id);
}

/** What a Maildir holds, for comparing replicas: folder -> Message-ID -> flags and bytes (no X-TUID). */
async function maildirSummary(root: string): Promise<Record<string, Record<string, string>>> {
  const { folders, messages } = await readMaildir(root);
  const summary: Record<string, Record<string, string>> = Object.fromEntries(folders.map((f) => [f, {}]));
  for (const message of messages) {
    const body = withoutTuid(message.content, true).toString('latin1');
    summary[message.folder]![messageId(message.content) ?? message.path] =
      `${message.flags.split('').sort().join('')}\n${body}`;
  }
  return summary;
}

/** Everything on disk below a Maildir except mbsync's own state files: names and bytes. */
async function maildirFiles(root: string): Promise<Record<string, string>> {
  const { folders, messages } = await readMaildir(root);
  const files: Record<string, string> = Object.fromEntries(folders.map((f) => [`${f}/`, 'folder']));
  for (const m of messages) files[m.path.slice(root.length)] = m.content.toString('base64');
  return files;
}

/** The server's side: folder -> UID -> flags and bytes. */
async function serverSummary(user = ADDRESS): Promise<Record<string, Record<number, string>>> {
  const folders = await selectableFolders(user);
  const messages = await serverMessages(folders, user);
  return Object.fromEntries(
    folders.map((f) => [f, Object.fromEntries(messages.get(f)!.map((m) => [m.uid, `${m.flags.join(' ')}\n${m.body.toString('base64')}`]))]),
  );
}

// ---------------------------------------------------------------------------------------------
// The mailbox: folders made over IMAP, messages delivered through the API.

/** A folder as the API names it (UTF-8) and as IMAP4rev1 and mbsync's Maildir name it (modified UTF-7). */
interface Folder {
  api: string;
  imap: string;
}
const INBOX: Folder = { api: 'INBOX', imap: 'INBOX' };
const PROJECTS: Folder = { api: 'Projects/2026', imap: 'Projects/2026' };
const CLIENTS: Folder = { api: 'Clients & Partners', imap: 'Clients &- Partners' };
const SUMMER: Folder = { api: 'Été', imap: '&AMk-t&AOk-' };

const header = (id: string, subject: string, extra = '') =>
  `From: Sender <sender@example.org>\r\nTo: Reader <${ADDRESS}>\r\nSubject: ${subject}\r\n` +
  `Date: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <${id}@example.org>\r\n${extra}`;

function large(): Buffer {
  const lines: string[] = [];
  for (let i = 0; lines.join('\r\n').length < 400_000; i++) {
    lines.push(
      i % 13 === 0 ? `From the line ${i}, mbox would quote it` : i % 7 === 0 ? `.${i} dotted ${'é'.repeat(i % 40)}` : `line ${i} ${'x'.repeat(i % 90)} üß`,
    );
  }
  return Buffer.from(`${header('large', 'large')}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${lines.join('\r\n')}\r\n`, 'utf8');
}

function multipart(): Buffer {
  const attachment = Buffer.alloc(3000);
  for (let i = 0; i < attachment.length; i++) attachment[i] = (i * 131 + 7) % 256;
  const base64 = attachment.toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    header('multipart', 'with an attachment', 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b0undary"\r\n') +
      '\r\nThis is a multi-part message in MIME format.\r\n' +
      '--b0undary\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nSee the attachment.\r\n' +
      '--b0undary\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n' +
      `Content-Disposition: attachment; filename="data.bin"\r\n\r\n${base64}\r\n--b0undary--\r\n`,
  );
}

interface Delivered {
  folder: Folder;
  raw: Buffer;
  uid: number;
}

const MESSAGES: [string, Folder, Buffer][] = [
  ['plain', INBOX, Buffer.from(`${header('plain', 'plain')}\r\nHello from the first message.\r\n`)],
  [
    'utf8',
    INBOX,
    Buffer.from(
      `${header('utf8', '=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=', 'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n')}` +
        '\r\nGrüße aus Köln, 日本語, emoji 📬, NBSP\u00a0here.\r\n',
    ),
  ],
  ['large', INBOX, large()],
  ['no-final-newline', INBOX, Buffer.from(`${header('no-final-newline', 'no final newline')}\r\nthe last line has no CRLF`)],
  ['multipart', INBOX, multipart()],
  ...Array.from({ length: 40 }, (_, i): [string, Folder, Buffer] => [
    `bulk-${i}`,
    INBOX,
    Buffer.from(`${header(`bulk-${i}`, `bulk ${i}`)}\r\nbulk body ${i}\r\n`),
  ]),
  ['project-plan', PROJECTS, Buffer.from(`${header('project-plan', 'the plan')}\r\nStep one.\r\nStep two.\r\n`)],
  ['project-budget', PROJECTS, Buffer.from(`${header('project-budget', 'the budget')}\r\n1000 EUR\r\n`)],
  ['client', CLIENTS, Buffer.from(`${header('client', 'a client')}\r\nDear client,\r\n`)],
  ['summer', SUMMER, Buffer.from(`${header('summer', 'summer')}\r\nÉté 2026.\r\n`)],
];

await api('POST', '/v1/domains', { name: DOMAIN });
await api('POST', '/v1/mailboxes', { address: ADDRESS, password: PASSWORD });
await imaplib([PROJECTS, CLIENTS, SUMMER].map((f) => ({ op: 'create', name: f.imap })));
const delivered = new Map<string, Delivered>();
for (const [id, folder, raw] of MESSAGES) delivered.set(id, { folder, raw, uid: await deliver(ADDRESS, raw, folder.api) });

const plain = await replica('plain', 'none');
const first = await plain.sync();

// ---------------------------------------------------------------------------------------------

t.test('the first sync pulls every folder and every message byte for byte', async (t) => {
  t.equal(first.status, 0, 'mbsync exits 0', { log: log(first) });
  const { folders, messages } = await readMaildir(plain.maildir);
  t.same(folders, await selectableFolders(), 'the Maildir has exactly the folders LIST shows (modified UTF-7 names kept, as mbsync 1.4 does)');
  t.ok(
    [INBOX, PROJECTS, CLIENTS, SUMMER].every((f) => folders.includes(f.imap)),
    'including Projects/2026 (a subfolder), "Clients &- Partners" and "&AMk-t&AOk-" (Été)',
  );
  t.equal(messages.length, delivered.size, 'one file per delivered message');
  const local = byMessageId(messages);
  for (const [id, { folder, raw }] of delivered) {
    const copies = local.get(id) ?? [];
    t.equal(copies.length, 1, `${id}: one copy`);
    t.equal(copies[0]?.folder, folder.imap, `${id}: in ${folder.imap}`);
    t.equal(copies[0]?.flags, '', `${id}: no flags (delivered unseen)`);
    sameBytes(t, copies[0] && withoutTuid(copies[0].content), toLf(raw), `${id}: the delivered bytes (LF line ends)`);
  }
  // A message nobody has seen yet is \Recent for the first session that selects its folder
  // (RFC 3501 §2.3.2); mbsync reports the count it got from SELECT.
  const counts = farSideCounts(first);
  for (const folder of [INBOX, PROJECTS, CLIENTS, SUMMER]) {
    const count = counts.get(folder.imap);
    t.equal(count?.recent, count?.messages, `${folder.imap}: every message is \\Recent for mbsync's session`, { counts: count });
  }
});

t.test('flags travel both ways', async (t) => {
  const local = byMessageId((await readMaildir(plain.maildir)).messages);
  await setLocalFlags(local.get('plain')![0]!, 'FS');
  await setLocalFlags(local.get('project-plan')![0]!, 'RS');
  await setLocalFlags(local.get('client')![0]!, 'D');
  await imaplib([{ op: 'store', name: INBOX.imap, uid: delivered.get('utf8')!.uid, flags: '\\Flagged \\Answered' }]);

  const result = await syncOk(t, plain, 'after flag changes');
  t.match(commands(result).join('\n'), /UID STORE \d+ \+FLAGS/, 'mbsync stored flags', { log: log(result) });

  const server = await serverMessages([INBOX.imap, PROJECTS.imap, CLIENTS.imap]);
  t.same(findServerMessage(server.get(INBOX.imap), 'plain')?.flags, ['\\Flagged', '\\Seen'], 'Seen and Flagged set locally: on the server');
  t.same(findServerMessage(server.get(PROJECTS.imap), 'project-plan')?.flags, ['\\Answered', '\\Seen'], 'Replied and Seen: \\Answered \\Seen');
  t.same(findServerMessage(server.get(CLIENTS.imap), 'client')?.flags, ['\\Draft'], 'Draft: \\Draft');
  t.same(findServerMessage(server.get(INBOX.imap), 'utf8')?.flags, ['\\Answered', '\\Flagged'], 'the server-side change is kept');

  const after = byMessageId((await readMaildir(plain.maildir)).messages);
  t.equal(after.get('utf8')?.[0]?.flags, 'FR', '\\Flagged \\Answered set on the server: the Maildir file is renamed :2,FR');
  t.equal(after.get('plain')?.[0]?.flags, 'FS', 'the local change stays');
});

const localNote = `From: Me <${ADDRESS}>\nTo: Team <team@example.org>\nSubject: written offline\nDate: Mon, 30 Nov 2026 08:00:00 +0100\nMessage-ID: <local-note@example.org>\n\nWritten in the local Maildir.\n.\nA dotted line and an ümlaut.\n`;
const localSeen = `From: Me <${ADDRESS}>\nSubject: read here\nMessage-ID: <local-seen@example.org>\n\nAlready read.\n`;

t.test('messages added to the Maildir are appended to the server', async (t) => {
  const note = await writeLocal(plain.maildir, PROJECTS.imap, localNote);
  const seen = await writeLocal(plain.maildir, INBOX.imap, localSeen, 'S');

  const result = await syncOk(t, plain, 'after local additions');
  t.equal(commands(result).filter((c) => c.startsWith('APPEND ')).length, 2, 'two APPENDs', { log: log(result) });

  const server = await serverMessages([INBOX.imap, PROJECTS.imap]);
  const stored = findServerMessage(server.get(PROJECTS.imap), 'local-note');
  sameBytes(t, stored && withoutTuid(stored.body), toCrlf(note), 'the new file is in Projects/2026 on the server, byte for byte (CRLF)');
  t.same(stored?.flags, [], 'unflagged');
  const storedSeen = findServerMessage(server.get(INBOX.imap), 'local-seen');
  sameBytes(t, storedSeen && withoutTuid(storedSeen.body), toCrlf(seen), 'the file in INBOX/cur is in INBOX');
  t.same(storedSeen?.flags, ['\\Seen'], 'with \\Seen from its :2,S');
  t.equal(server.get(PROJECTS.imap)?.length, 3, 'Projects/2026 holds 3 messages');
});

t.test('deletions travel both ways', async (t) => {
  await imaplib([
    { op: 'expunge', name: INBOX.imap, uid: delivered.get('multipart')!.uid },
    { op: 'expunge', name: SUMMER.imap, uid: delivered.get('summer')!.uid },
  ]);
  const local = byMessageId((await readMaildir(plain.maildir)).messages);
  await rm(local.get('project-budget')![0]!.path);
  await setLocalFlags(local.get('bulk-3')![0]!, 'ST'); // trashed: mbsync deletes, Expunge Both expunges

  await syncOk(t, plain, 'after deletions');

  const after = byMessageId((await readMaildir(plain.maildir)).messages);
  t.notOk(after.has('multipart'), 'expunged on the server (STORE \\Deleted, EXPUNGE): removed from the Maildir');
  t.notOk(after.has('summer'), 'the same in &AMk-t&AOk- (Été)');
  t.ok(after.has('plain') && after.has('bulk-2') && after.has('bulk-4'), 'the other messages stay');
  const server = await serverMessages([INBOX.imap, PROJECTS.imap, SUMMER.imap]);
  t.notOk(findServerMessage(server.get(PROJECTS.imap), 'project-budget'), 'the file removed locally: expunged on the server');
  t.notOk(findServerMessage(server.get(INBOX.imap), 'bulk-3'), 'the file marked trashed (T) locally: expunged on the server');
  t.ok(findServerMessage(server.get(PROJECTS.imap), 'project-plan'), 'the rest of Projects/2026 stays');
  t.equal(server.get(SUMMER.imap)?.length, 0, '&AMk-t&AOk- is empty');
  t.equal(
    server.get(INBOX.imap)?.length,
    [...after.values()].flat().filter((m) => m.folder === 'INBOX').length,
    'INBOX holds as many messages on both sides',
  );
});

t.test('folders made in the Maildir are created on the server', async (t) => {
  const plan = await writeLocal(plain.maildir, 'Projects/2027', `Subject: next year\nMessage-ID: <plan-2027@example.org>\n\nPlans.\n`);
  await Promise.all(['cur', 'new', 'tmp'].map((sub) => mkdir(join(plain.maildir, 'Receipts', sub), { recursive: true })));

  const result = await syncOk(t, plain, 'after local folder creation');
  t.match(commands(result).join('\n'), /CREATE "Projects\/2027"/, 'mbsync sent CREATE', { log: log(result) });

  const folders = await selectableFolders();
  t.ok(folders.includes('Projects/2027'), 'Projects/2027 is on the server', { folders });
  t.ok(folders.includes('Receipts'), 'so is the empty Receipts', { folders });
  const server = await serverMessages(['Projects/2027']);
  const stored = findServerMessage(server.get('Projects/2027'), 'plan-2027');
  sameBytes(t, stored && withoutTuid(stored.body), toCrlf(plan), 'with its message');
  t.same((await readMaildir(plain.maildir)).folders, folders, 'both sides have the same folders');
});

t.test('a sync with nothing to do changes nothing', async (t) => {
  const localBefore = await maildirFiles(plain.maildir);
  const serverBefore = await serverSummary();
  const result = await syncOk(t, plain, 'with no changes');
  const writes = commands(result).filter((c) => /^(APPEND|CREATE|DELETE|RENAME|EXPUNGE|UID STORE|STORE|UID EXPUNGE)\b/.test(c));
  t.same(writes, [], 'mbsync sent no command that changes the server', { log: log(result) });
  t.same(await maildirFiles(plain.maildir), localBefore, 'no file in the Maildir appeared, vanished, moved or changed');
  t.same(await serverSummary(), serverBefore, 'the server holds the same folders, UIDs, flags and bytes');
});

t.test('over IMAPS: a second device pulls the same mailbox, and its changes reach the first', async (t) => {
  t.ok((await stat(CERT)).isFile(), 'the server made its self-signed certificate in the data dir');
  const secure = await replica('imaps', 'imaps');
  const result = await syncOk(t, secure, 'over IMAPS');
  t.match(log(result), /Connection is now encrypted/, 'TLS from the first byte');
  t.same(await maildirSummary(secure.maildir), await maildirSummary(plain.maildir), 'the same folders, messages, bytes and flags');

  const local = byMessageId((await readMaildir(secure.maildir)).messages);
  await setLocalFlags(local.get('bulk-7')![0]!, 'F');
  const note = await writeLocal(secure.maildir, CLIENTS.imap, `Subject: from the laptop\nMessage-ID: <laptop@example.org>\n\nHi.\n`, 'S');
  await syncOk(t, secure, 'over IMAPS after changes');
  await syncOk(t, plain, 'of the first device');
  const device1 = byMessageId((await readMaildir(plain.maildir)).messages);
  t.equal(device1.get('bulk-7')?.[0]?.flags, 'F', 'the flag set on the second device reached the first');
  const copy = device1.get('laptop')?.[0];
  t.equal(copy?.folder, CLIENTS.imap, 'the message written on the second device reached the first, in its folder');
  t.equal(copy?.flags, 'S', 'seen');
  sameBytes(t, copy && withoutTuid(copy.content, true), note, 'byte for byte');

  const again = await syncOk(t, secure, 'over IMAPS with no changes');
  t.same(commands(again).filter((c) => /^(APPEND|CREATE|UID STORE)\b/.test(c)), [], 'changes nothing', { log: log(again) });
  t.same(await maildirSummary(secure.maildir), await maildirSummary(plain.maildir), 'both devices agree');
});

t.test('over STARTTLS: a third device pulls the same mailbox', async (t) => {
  const upgraded = await replica('starttls', 'starttls');
  const result = await syncOk(t, upgraded, 'over STARTTLS');
  t.match(commands(result)[0], /^STARTTLS$/, 'STARTTLS first');
  t.match(log(result), /Connection is now encrypted/, 'then TLS');
  t.same(await maildirSummary(upgraded.maildir), await maildirSummary(plain.maildir), 'the same folders, messages, bytes and flags');
});

t.test('local folder names that are not modified UTF-7 do not come back under another name', async (t) => {
  // mbsync 1.4 sends a Maildir folder's name as it is: `CREATE "R&D"` (a bare "&", which modified
  // UTF-7 spells "&-") and `CREATE "Über"` (raw UTF-8). A server must refuse such a name (as
  // Dovecot does) or keep it as it came; creating it and then listing it as "R&-D" / "&ANw-ber"
  // makes mbsync pull a second copy of the folder and fail on the first one ever after.
  const address = `names@${DOMAIN}`;
  await api('POST', '/v1/mailboxes', { address, password: PASSWORD });
  const names = await replica('names', 'none', address);
  await writeLocal(names.maildir, 'R&D', 'Subject: research\nMessage-ID: <rnd@example.org>\n\nR&D.\n');
  await writeLocal(names.maildir, 'Über', 'Subject: about\nMessage-ID: <ueber@example.org>\n\nÜber.\n');
  const once = await names.sync();
  const twice = await names.sync();
  const folders = (await serverFolders(address)).map((f) => f.name);
  t.notOk(folders.includes('R&-D'), 'no folder "R&-D" that mbsync never asked for', { folders, log: log(once) });
  t.notOk(folders.includes('&ANw-ber'), 'no folder "&ANw-ber" that mbsync never asked for', { folders });
  const local = (await readMaildir(names.maildir)).folders;
  t.notOk(local.includes('R&-D') || local.includes('&ANw-ber'), 'the second sync made no duplicate local folders', { local, log: log(twice) });
  t.equal(
    byMessageId((await readMaildir(names.maildir)).messages).get('rnd')?.length,
    1,
    'the R&D message exists once locally',
  );
});
