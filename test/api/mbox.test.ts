import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  asctime,
  flagsFromHeaders,
  mboxEntry,
  quoteFromLines,
  readMbox,
  separatorDate,
  takeMeta,
} from '../../src/api/mbox.js';
import { NotFoundError } from '../../src/core/errors.js';
import { buildTestApi, PASSWORD, type TestApi } from '../helpers/api.js';
import { apiClient, auditEvents, mailboxUrl, makeKey } from '../helpers/api-client.js';
import { assertProblem, type Injected } from '../helpers/problem.js';

const SETUP = { id: 'test', name: 'test setup', domains: null };

// ---------------------------------------------------------------------------------------------
// The mboxrd reader and writer on their own.

const entryOf = (raw: Buffer, meta = { folder: 'INBOX', flags: [] as string[], internalDate: new Date(0) }) =>
  Buffer.concat([...mboxEntry(raw, meta)]);

t.test('asctime is C asctime() in UTC, the day padded with a space', async (t) => {
  t.equal(asctime(new Date('2026-11-05T09:03:00.999Z')), 'Thu Nov  5 09:03:00 2026');
  t.equal(asctime(new Date('1999-12-31T23:59:59Z')), 'Fri Dec 31 23:59:59 1999');
});

t.test('separator dates read with or without seconds and zones; none gives null', async (t) => {
  const cases: [string, string | null][] = [
    ['MAILER-DAEMON Thu Nov  5 09:03:00 2026', '2026-11-05T09:03:00.000Z'],
    ['bob@example.org Tue Feb 28 08:00:00 +0100 2017', '2017-02-28T07:00:00.000Z'],
    ['bob@example.org Tue Feb 28 08:00:00 -0230 2017', '2017-02-28T10:30:00.000Z'],
    ['bob Mon Jan 2 15:04 2006', '2006-01-02T15:04:00.000Z'],
    ['bob Mon Jan  2 15:04:05 UTC 2006', '2006-01-02T15:04:05.000Z'],
    ['bob@example.org', null],
    ['', null],
    ['bob Mon Foo  2 15:04:05 2006', null],
  ];
  for (const [line, iso] of cases) t.equal(separatorDate(line)?.toISOString() ?? null, iso, line);
});

t.test('lines matching /^>*From / get one more >, nothing else changes', async (t) => {
  const raw = Buffer.from('From a\r\n>From b\r\n>>From c\r\nFrom\r\n From d\r\nFromage\r\nx From e\r\n>>>\r\nFrom ');
  const quoted = Buffer.concat([...quoteFromLines(raw)]).toString('latin1');
  t.equal(quoted, '>From a\r\n>>From b\r\n>>>From c\r\nFrom\r\n From d\r\nFromage\r\nx From e\r\n>>>\r\n>From ');
});

t.test('the meta line takes the message’s own line ending and comes off exactly', async (t) => {
  const meta = { folder: 'Projects/2026 ü; x', flags: ['\\Seen', '$Label;1'], internalDate: new Date('2026-01-02T03:04:05.678Z') };
  const crlf = entryOf(Buffer.from('Subject: a\r\n\r\nb\r\n'), meta).toString('utf8');
  t.equal(
    crlf,
    'From MAILER-DAEMON Fri Jan  2 03:04:05 2026\nX-Mailroom-Meta: folder=Projects%2F2026%20%C3%BC%3B%20x; flags=\\Seen $Label;1; internaldate=2026-01-02T03:04:05.678Z\r\nSubject: a\r\n\r\nb\r\n\n',
  );
  t.match(entryOf(Buffer.from('Subject: a\n\nb\n'), meta).toString(), /internaldate=2026-01-02T03:04:05.678Z\nSubject/);
  const [entry] = [...readMbox(Buffer.from(crlf))];
  const taken = takeMeta(entry!.raw)!;
  t.strictSame(taken.meta, meta);
  t.equal(taken.raw.toString(), 'Subject: a\r\n\r\nb\r\n');
  t.equal(takeMeta(Buffer.from('Subject: x\r\n\r\n')), null, 'no meta line');
  t.equal(takeMeta(Buffer.from('X-Mailroom-Meta: folder=INBOX; flags=; internaldate=2026-01-01T00:00:00Z'))?.raw.length, 0, 'nothing after it');
  t.throws(() => takeMeta(Buffer.from('X-Mailroom-Meta: folder=INBOX\r\n')), /does not read/);
  t.throws(() => takeMeta(Buffer.from('X-Mailroom-Meta: folder=%E0%A4%A; flags=; internaldate=2026-01-01T00:00:00Z\n')), /percent/);
  t.throws(() => takeMeta(Buffer.from('X-Mailroom-Meta: folder=INBOX; flags=; internaldate=yesterday\n')), /ISO/);
});

t.test('any message survives writing and reading byte for byte (generated cases)', async (t) => {
  const pieces = ['From ', '>From ', '>>From ', 'From', '>', 'x', ' ', '\r\n', '\n', '\r', '\n\n', 'From x\n', '\u00e4', '\u0000'];
  let seed = 7;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const messages: Buffer[] = [];
  for (let i = 0; i < 300; i++) {
    let text = '';
    for (let j = random(40); j > 0; j--) text += pieces[random(pieces.length)];
    messages.push(Buffer.from(text, 'latin1'));
  }
  const file = Buffer.concat(messages.map((raw, i) => entryOf(raw, { folder: `F${i % 3}`, flags: [], internalDate: new Date(i * 1000) })));
  const read = [...readMbox(file)];
  t.equal(read.length, messages.length, 'one entry per message');
  let exact = 0;
  read.forEach((entry, i) => {
    const taken = takeMeta(entry.raw);
    if (taken?.raw.equals(messages[i]!) && taken.meta.folder === `F${i % 3}` && taken.meta.internalDate.getTime() === i * 1000) exact++;
  });
  t.equal(exact, messages.length, 'every message, folder and date comes back exactly');
});

t.test('reading: CRLF files, a missing final blank line, and what is not an mbox', async (t) => {
  const crlf = [...readMbox(Buffer.from('From a Mon Jan  2 15:04:05 2006\r\nSubject: c\r\n\r\nbody\r\n\r\nFrom b\r\nx\r\n'))];
  t.strictSame(
    crlf.map((e) => [e.separator, e.raw.toString()]),
    [
      ['a Mon Jan  2 15:04:05 2006', 'Subject: c\r\n\r\nbody\r\n'],
      ['b', 'x'],
    ],
  );
  const bare = [...readMbox(Buffer.from('From a\nSubject: x\n\nlast'))];
  t.equal(bare[0]!.raw.toString(), 'Subject: x\n\nlast');
  t.strictSame([...readMbox(Buffer.alloc(0))], []);
  t.throws(() => readMbox(Buffer.from('Subject: x\n\nFrom a\n')), { code: 'invalid_mbox' });
  t.throws(() => readMbox(Buffer.from('\nFrom a\n')), { code: 'invalid_mbox', message: 'An mbox starts with a "From " separator line' });
});

t.test('flags from Status, X-Status and X-Keywords, in the header only', async (t) => {
  const raw = Buffer.from(
    'Status: RO\r\nX-Status: AFDT\r\nX-Keywords: $Label1,\r\n  NonJunk work\r\nSubject: s\r\n\r\nStatus: R\r\nX-Keywords: body\r\n',
  );
  t.strictSame(flagsFromHeaders(raw).sort(), ['$Label1', 'NonJunk', '\\Answered', '\\Deleted', '\\Draft', '\\Flagged', '\\Seen', 'work'].sort());
  t.strictSame(flagsFromHeaders(Buffer.from('Status: O\n\n')), [], 'O alone is old, not seen');
  t.strictSame(flagsFromHeaders(Buffer.from('Subject: x\n\nStatus: R\n')), [], 'a body line is no header');
});

// ---------------------------------------------------------------------------------------------
// Export and import through the API.

const api = await buildTestApi(t);
const { app, services } = api;
const admin = apiClient(app).as(api.admin);

for (const name of ['mail.test', 'other.test']) {
  const created = await admin.post('/v1/domains', { name });
  if (created.statusCode !== 201) throw new Error(`setup: ${created.body}`);
}

async function createMailbox(test: TestApi, address: string, fields: object = {}): Promise<number> {
  const created = await test.app.inject({
    method: 'POST',
    url: '/v1/mailboxes',
    headers: test.admin,
    payload: { address, password: PASSWORD, ...fields },
  });
  if (created.statusCode !== 201) throw new Error(`setup: mailbox ${address}: ${created.body}`);
  return (await test.services.mailboxes.find(address, SETUP)).id;
}

function exportOf(address: string, query = '', headers: Record<string, string> = api.admin, test = api): Promise<Injected & { rawPayload: Buffer }> {
  return test.app.inject({ method: 'GET', url: `${mailboxUrl(address)}/export${query}`, headers });
}

function importInto(address: string, mbox: Buffer | string, headers: Record<string, string> = api.admin, query = '', test = api) {
  return test.app.inject({
    method: 'POST',
    url: `${mailboxUrl(address)}/import${query}`,
    headers: { 'content-type': 'application/mbox', ...headers },
    payload: mbox,
  });
}

interface StoredMessage {
  folder: string;
  flags: string[];
  internalDate: string;
  raw: Buffer;
}

/** Every message of a mailbox, folder by folder in UID order, read through the core. */
async function contents(accountId: number, test = api): Promise<StoredMessage[]> {
  const all: StoredMessage[] = [];
  for (const folder of await test.services.mail.folders.list(accountId)) {
    for (const message of await test.services.mail.list(accountId, folder.id)) {
      const raw = await test.services.mail.read(accountId, folder.id, message.uid);
      all.push({ folder: folder.name, flags: message.flags, internalDate: message.internalDate.toISOString(), raw });
    }
  }
  return all;
}

/** The tricky messages: From lines, line endings, 8-bit bytes, trailing blank lines, a fake meta line. */
const TRICKY: { folder: string; flags: string[]; internalDate?: Date; raw: Buffer }[] = [
  {
    folder: 'INBOX',
    flags: [],
    raw: Buffer.from('Subject: quoting\r\n\r\nFrom here\r\n>From there\r\n>>From x\r\nFrom\r\n From y\r\nFromage\r\n'),
  },
  { folder: 'INBOX', flags: ['\\Seen'], internalDate: new Date('1999-12-31T23:59:59.123Z'), raw: Buffer.from('From bob@example.org Thu Nov  5 09:03:00 2026\nSubject: starts like an mbox\n\nno final newline') },
  { folder: 'INBOX', flags: ['\\Flagged', '\\Answered', '$Label1'], raw: Buffer.concat([Buffer.from('Subject: 8bit\r\n\r\n'), Buffer.from([0xe4, 0x0d, 0x00, 0xff, 0x0a, 0x0d, 0x0a])]) },
  { folder: 'Sent', flags: ['\\Seen'], raw: Buffer.from('Subject: trailing blank lines\n\nbody\n\n\n') },
  { folder: 'Sent', flags: [], raw: Buffer.from('Subject: crlf blank lines\r\n\r\nbody\r\n\r\n') },
  {
    folder: 'Projects/2026 ü; x',
    flags: ['\\Draft', '\\Deleted', 'Work;late'],
    internalDate: new Date('2026-06-30T12:00:00.001Z'),
    raw: Buffer.from('X-Mailroom-Meta: folder=Fake; flags=\\Seen; internaldate=2000-01-01T00:00:00Z\r\nSubject: fake meta\r\n\r\nx\r\n'),
  },
  { folder: 'Archive', flags: [], raw: Buffer.from('Subject: lone\r\n\r\n>From the archive\r\n') },
];

async function fillTricky(address: string): Promise<number> {
  const id = await createMailbox(api, address);
  await services.mail.folders.create(id, 'Projects/2026 ü; x');
  for (const message of TRICKY) {
    await services.mail.append(id, message.folder, message.raw, {
      flags: message.flags,
      ...(message.internalDate ? { internalDate: message.internalDate } : {}),
    });
  }
  return id;
}

t.test('round trip: export, import into a fresh mailbox, export again gives the same bytes, folders and flags', async (t) => {
  const sourceId = await fillTricky('source@mail.test');
  // One through the delivery route too, dated now.
  const delivered = await app.inject({
    method: 'POST',
    url: `${mailboxUrl('source@mail.test')}/messages`,
    headers: { ...api.admin, 'content-type': 'message/rfc822' },
    payload: 'Subject: delivered\r\n\r\nFrom the API\r\n',
  });
  t.equal(delivered.statusCode, 201);
  await services.mail.folders.create(sourceId, 'Empty');

  const first = await exportOf('source@mail.test');
  t.equal(first.statusCode, 200);
  t.equal(first.headers['content-type'], 'application/mbox');
  t.equal(first.headers['content-disposition'], `attachment; filename="source@mail.test.mbox"; filename*=UTF-8''source%40mail.test.mbox`);
  const text = first.rawPayload.toString('latin1');
  t.match(text, '\r\n>From here\r\n>>From there\r\n>>>From x\r\nFrom\r\n From y\r\nFromage\r\n', 'mboxrd quoting in bodies');
  t.match(text, '\r\n>>From the archive\r\n');
  t.match(text, '\n>From the API\r\n');
  t.equal(text.match(/^From /gm)?.length, TRICKY.length + 1, 'one separator line per message, no more');

  const targetId = await createMailbox(api, 'target@mail.test');
  const imported = await importInto('target@mail.test', first.rawPayload);
  t.equal(imported.statusCode, 200);
  t.strictSame(imported.json(), { imported: TRICKY.length + 1, skipped: 0, errors: [] });

  const second = await exportOf('target@mail.test');
  t.ok(second.rawPayload.equals(first.rawPayload), 'the second export is byte-identical');

  const before = await contents(sourceId);
  const after = await contents(targetId);
  t.equal(after.length, before.length);
  after.forEach((message, i) => {
    const source = before[i]!;
    t.ok(message.raw.equals(source.raw), `message ${i}: same bytes`);
    t.strictSame([message.folder, message.flags, message.internalDate], [source.folder, source.flags, source.internalDate], `message ${i}: same folder, flags, date`);
  });
  const names = async (address: string) =>
    (await admin.get(`${mailboxUrl(address)}/folders`)).json().items.map((f: { name: string; messages: number }) => `${f.name}:${f.messages}`);
  t.strictSame(
    (await names('target@mail.test')),
    (await names('source@mail.test')).filter((name: string) => name !== 'Empty:0'),
    'the same folders and counts; empty custom folders are not in an mbox',
  );
  t.strictSame((await admin.get(mailboxUrl('target@mail.test'))).json().usage, (await admin.get(mailboxUrl('source@mail.test'))).json().usage);
});

t.test('?folder= exports one folder; unknown folders 404; an empty mailbox is an empty file', async (t) => {
  const sent = await exportOf('source@mail.test', '?folder=Sent');
  t.equal(sent.statusCode, 200);
  t.equal(sent.headers['content-disposition'], `attachment; filename="source@mail.test-Sent.mbox"; filename*=UTF-8''source%40mail.test-Sent.mbox`);
  const entries = [...readMbox(sent.rawPayload)].map((entry) => takeMeta(entry.raw)!);
  t.strictSame(entries.map((e) => e.meta.folder), ['Sent', 'Sent']);
  t.strictSame(entries.map((e) => e.raw.toString()), [TRICKY[3]!.raw.toString(), TRICKY[4]!.raw.toString()]);

  const unicode = await exportOf('source@mail.test', `?folder=${encodeURIComponent('Projects/2026 ü; x')}`);
  t.equal(
    unicode.headers['content-disposition'],
    `attachment; filename="source@mail.test-Projects_2026____x.mbox"; filename*=UTF-8''source%40mail.test-Projects%2F2026%20%C3%BC%3B%20x.mbox`,
  );
  t.equal([...readMbox(unicode.rawPayload)].length, 1);
  t.equal((await exportOf('source@mail.test', '?folder=inbox')).headers['content-disposition']?.toString().includes('-INBOX.mbox'), true);

  assertProblem(t, await exportOf('source@mail.test', '?folder=Nowhere'), 404, 'folder_not_found');
  assertProblem(t, await exportOf('nobody@mail.test'), 404, 'mailbox_not_found');
  await createMailbox(api, 'empty@mail.test');
  const empty = await exportOf('empty@mail.test');
  t.equal(empty.statusCode, 200);
  t.equal(empty.rawPayload.length, 0);
});

t.test('an mbox from another program: flags from its headers, dates from its separators, bytes kept', async (t) => {
  const id = await createMailbox(api, 'migrated@mail.test');
  const mbox = [
    'From alice@example.org Mon Jan  2 15:04:05 2006',
    'Status: RO',
    'X-Status: AF',
    'X-Keywords: $Label1, NonJunk bad(keyword',
    'Subject: one',
    '',
    '>From the archive',
    '>>From deeper',
    '',
    'From bob@example.org Tue Feb 28 08:00:00 +0100 2017',
    'Subject: two',
    '',
    'plain',
    '',
    'From carol@example.org sometime',
    'Status: O',
    'Subject: three',
    '',
    'no date',
    '',
    '',
  ].join('\n');
  const started = Date.now();
  const response = await importInto('migrated@mail.test', mbox, api.admin, `?folder=${encodeURIComponent('Old mail/2017')}`);
  t.strictSame(response.json(), { imported: 3, skipped: 0, errors: [] });
  const stored = await contents(id);
  t.strictSame(
    stored.map((m) => [m.folder, m.flags, m.raw.toString()]),
    [
      [
        'Old mail/2017',
        ['$Label1', 'NonJunk', '\\Answered', '\\Flagged', '\\Seen'],
        'Status: RO\nX-Status: AF\nX-Keywords: $Label1, NonJunk bad(keyword\nSubject: one\n\nFrom the archive\n>From deeper\n',
      ],
      ['Old mail/2017', [], 'Subject: two\n\nplain\n'],
      ['Old mail/2017', [], 'Status: O\nSubject: three\n\nno date\n'],
    ],
    'headers kept, From lines unquoted, invalid keywords dropped',
  );
  t.equal(stored[0]!.internalDate, '2006-01-02T15:04:05.000Z');
  t.equal(stored[1]!.internalDate, '2017-02-28T07:00:00.000Z');
  t.ok(Date.parse(stored[2]!.internalDate) >= started - 1000, 'no date on the separator: dated now');
});

t.test('entries that cannot be stored are skipped and reported; the rest is imported', async (t) => {
  const small = await buildTestApi(t, { maxMessageSize: 2048 });
  await small.app.inject({ method: 'POST', url: '/v1/domains', headers: small.admin, payload: { name: 'mail.test' } });
  const id = await createMailbox(small, 'picky@mail.test');
  const meta = (folder: string, flags = '') => `X-Mailroom-Meta: folder=${folder}; flags=${flags}; internaldate=2026-01-01T00:00:00.000Z\n`;
  const entries = [
    'Subject: fine\n\nok\n',
    'X-Mailroom-Meta: garbage\nSubject: x\n\n',
    `${meta('INBOX', '\\Bogus')}Subject: x\n\n`,
    `${meta('a%2F%2Fb')}Subject: x\n\n`,
    '',
    `Subject: big\n\n${'x'.repeat(3000)}\n`,
    `${meta('New%2FSub', '\\Seen')}Subject: new folder\n\n`,
    `${meta('%E0%A4%A')}Subject: x\n\n`,
  ];
  const mbox = entries.map((body) => `From someone Thu Jan  1 00:00:00 2026\n${body}\n`).join('');
  const response = await importInto('picky@mail.test', mbox, small.admin, '', small);
  t.equal(response.statusCode, 200);
  const report = response.json();
  t.equal(report.imported, 2);
  t.equal(report.skipped, 6);
  t.strictSame(
    report.errors.map((e: { index: number; code: string }) => [e.index, e.code]),
    [
      [1, 'invalid_meta'],
      [2, 'invalid_flag'],
      [3, 'invalid_folder_name'],
      [4, 'empty_message'],
      [5, 'message_too_large'],
      [7, 'invalid_meta'],
    ],
  );
  for (const error of report.errors) t.match(error.detail, /^\S/, `a detail for ${error.code}`);
  t.strictSame(
    (await contents(id, small)).map((m) => [m.folder, m.flags]),
    [
      ['INBOX', []],
      ['New/Sub', ['\\Seen']],
    ],
  );

  assertProblem(t, await importInto('picky@mail.test', 'Subject: no separator\n\nx\n', small.admin, '', small), 422, 'invalid_mbox');
  const limit = 20 * 2048;
  assertProblem(t, await importInto('picky@mail.test', `From x\n${'y'.repeat(limit)}`, small.admin, '', small), 413, 'body_too_large');
  t.strictSame((await importInto('picky@mail.test', '', small.admin, '', small)).json(), { imported: 0, skipped: 0, errors: [] });
  assertProblem(t, await importInto('picky@mail.test', 'From x\n\n', small.admin, '?folder=a%2F%2Fb', small), 422, 'invalid_folder_name');
});

t.test('import respects the quota: it stores what fits, stops, and says so', async (t) => {
  const mbox = (n: number) =>
    Array.from({ length: n }, (_, i) => `From x Thu Jan  1 00:00:00 2026\nSubject: ${i}\n\nbody ${i}\n\n`).join('');
  await createMailbox(api, 'three@mail.test', { quota: { storageBytes: null, messages: 3 } });
  const delivered = await app.inject({
    method: 'POST',
    url: `${mailboxUrl('three@mail.test')}/messages`,
    headers: { ...api.admin, 'content-type': 'message/rfc822' },
    payload: 'Subject: already there\r\n\r\n',
  });
  t.equal(delivered.statusCode, 201);
  const response = await importInto('three@mail.test', mbox(5));
  t.equal(response.statusCode, 200);
  const report = response.json();
  t.match(report, { imported: 2, skipped: 3 });
  t.equal(report.errors.length, 1);
  t.match(report.errors[0], { index: 2, code: 'quota_exceeded', detail: /the 2 after it were not imported/ });
  t.match((await admin.get(mailboxUrl('three@mail.test'))).json().usage, { messages: 3 });

  const size = 'Subject: 0\n\nbody 0\n'.length;
  await createMailbox(api, 'bytes@mail.test', { quota: { storageBytes: size * 2, messages: null } });
  const byBytes = (await importInto('bytes@mail.test', mbox(4))).json();
  t.match(byBytes, { imported: 2, skipped: 2, errors: [{ index: 2, code: 'quota_exceeded' }] });
  t.strictSame((await admin.get(mailboxUrl('bytes@mail.test'))).json().usage, { storageBytes: size * 2, messages: 2 });
});

t.test('roles: support may export but not import; confined keys only in their domains', async (t) => {
  await createMailbox(api, 'bob@other.test');
  const mbox = 'From x Thu Jan  1 00:00:00 2026\nSubject: r\n\nx\n\n';
  const support = await makeKey(services, 'support', 'helpdesk');
  t.equal((await exportOf('bob@other.test', '', support.headers)).statusCode, 200, 'support exports');
  assertProblem(t, await importInto('bob@other.test', mbox, support.headers), 403, 'role_forbidden');
  const provisioner = await makeKey(services, 'provisioner', 'migration script');
  t.equal((await importInto('bob@other.test', mbox, provisioner.headers)).statusCode, 200, 'provisioner imports');
  t.equal((await exportOf('bob@other.test', '', provisioner.headers)).statusCode, 200, 'provisioner exports');
  const confined = await makeKey(services, 'provisioner', 'mail.test script', ['mail.test']);
  assertProblem(t, await exportOf('bob@other.test', '', confined.headers), 404, 'mailbox_not_found');
  assertProblem(t, await importInto('bob@other.test', mbox, confined.headers), 404, 'mailbox_not_found');
  t.equal((await exportOf('source@mail.test', '?folder=Sent', confined.headers)).statusCode, 200);
  assertProblem(t, await exportOf('bob@other.test', '', {}), 401, 'unauthenticated');
  const wrongType = await importInto('bob@other.test', mbox, { ...api.admin, 'content-type': 'text/plain' });
  t.equal(assertProblem(t, wrongType, 415, 'unsupported_media_type').detail, 'Send the body as application/mbox');
});

t.test('an import writes one audit event with its counts; Idempotency-Key replays it without importing twice', async (t) => {
  await createMailbox(api, 'once@mail.test');
  const mbox =
    'From x Thu Jan  1 00:00:00 2026\nX-Mailroom-Meta: folder=Brand%20new; flags=; internaldate=2026-01-01T00:00:00.000Z\nSubject: secret subject\n\nx\n\n' +
    'From x Thu Jan  1 00:00:00 2026\n\n';
  const headers = { ...api.admin, 'idempotency-key': 'import-once-1', 'x-request-id': 'import-once' };
  const first = await importInto('once@mail.test', mbox, headers);
  t.strictSame(first.json(), { imported: 1, skipped: 1, errors: [{ index: 1, code: 'empty_message', detail: 'The entry holds no message' }] });
  const replay = await importInto('once@mail.test', mbox, headers);
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.equal(replay.body, first.body);
  assertProblem(t, await importInto('once@mail.test', `${mbox}From y\nSubject: z\n\n`, headers), 422, 'idempotency_key_reused');
  t.match((await admin.get(mailboxUrl('once@mail.test'))).json().usage, { messages: 1 });

  const { items, raw } = await auditEvents(admin, 'target=once@mail.test&action=mailbox.import');
  t.equal(items.length, 1);
  t.match(items[0], {
    actor: { id: 'bootstrap-admin' },
    domain: 'mail.test',
    requestId: 'import-once',
    after: { imported: 1, skipped: 1, foldersCreated: ['Brand new'] },
  });
  t.notMatch(raw, 'secret subject');
  await exportOf('once@mail.test');
  t.equal((await auditEvents(admin, 'target=once@mail.test')).items.filter((e) => e.action !== 'mailbox.create').length, 1, 'export writes none');
});

t.test('over a real socket the export streams (chunked), and Python’s mailbox module reads it', async (t) => {
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const response = await fetch(`${address}${mailboxUrl('source@mail.test')}/export`, { headers: api.admin });
  t.equal(response.status, 200);
  t.equal(response.headers.get('transfer-encoding'), 'chunked', 'streamed, no length known up front');
  t.equal(response.headers.get('content-length'), null);
  const body = Buffer.from(await response.arrayBuffer());
  t.ok(body.equals((await exportOf('source@mail.test')).rawPayload), 'the same bytes as in-process');

  const dir = await mkdtemp(join(tmpdir(), 'mailroom-mbox-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'export.mbox'), body);
  const script = [
    'import json, mailbox, sys',
    'box = mailbox.mbox(sys.argv[1], create=False)',
    "print(json.dumps([[m['X-Mailroom-Meta'].split(';')[0], m['Subject']] for m in box]))",
  ].join('\n');
  const python = spawnSync('python3', ['-c', script, join(dir, 'export.mbox')], { encoding: 'utf8' });
  t.equal(python.status, 0, python.stderr);
  t.strictSame(JSON.parse(python.stdout), [
    ['folder=Archive', 'lone'],
    ['folder=INBOX', 'quoting'],
    // That message's own first line is a From_ line (now quoted), so Python sees no header after it.
    ['folder=INBOX', null],
    ['folder=INBOX', '8bit'],
    ['folder=INBOX', 'delivered'],
    ['folder=Projects%2F2026%20%C3%BC%3B%20x', 'fake meta'],
    ['folder=Sent', 'trailing blank lines'],
    ['folder=Sent', 'crlf blank lines'],
  ]);
});

t.test('a failure in the middle of an export breaks the stream instead of ending it cleanly', async (t) => {
  const address = app.server.listening ? `http://127.0.0.1:${(app.server.address() as { port: number }).port}` : await app.listen({ host: '127.0.0.1', port: 0 });
  const read = services.mail.read;
  let reads = 0;
  services.mail.read = async (...args) => {
    if (++reads === 3) throw new Error('the database went away');
    return read(...args);
  };
  t.teardown(() => {
    services.mail.read = read;
  });
  const response = await fetch(`${address}${mailboxUrl('source@mail.test')}/export`, { headers: api.admin });
  t.equal(response.status, 200, 'the headers were out before the failure');
  await t.rejects(response.arrayBuffer(), 'the client sees a broken transfer, not a short mbox');

  const head = await app.inject({ method: 'HEAD', url: `${mailboxUrl('source@mail.test')}/export`, headers: api.admin });
  t.equal(head.statusCode, 200, 'HEAD answers too');
  t.equal(head.body, '');
});

t.test('import: a folder made meanwhile is fine; a mailbox gone meanwhile is 404; a fault is 500', async (t) => {
  await createMailbox(api, 'racy@mail.test');
  const mbox = 'From x Thu Jan  1 00:00:00 2026\nX-Mailroom-Meta: folder=Sent; flags=; internaldate=2026-01-01T00:00:00.000Z\nSubject: r\n\nx\n\n';
  const { list } = services.mail.folders;
  const { append } = services.mail;
  t.teardown(() => {
    services.mail.folders.list = list;
    services.mail.append = append;
  });
  // As if Sent were made by someone else after the import looked.
  services.mail.folders.list = async () => [];
  t.strictSame((await importInto('racy@mail.test', mbox)).json(), { imported: 1, skipped: 0, errors: [] });
  t.match((await auditEvents(admin, 'target=racy@mail.test&action=mailbox.import')).items[0]?.after, { foldersCreated: [] });
  services.mail.folders.list = list;

  services.mail.append = async () => {
    throw new NotFoundError('mailbox_not_found', 'The mailbox no longer exists');
  };
  assertProblem(t, await importInto('racy@mail.test', mbox), 404, 'mailbox_not_found');
  services.mail.append = async () => {
    throw new Error('the database went away');
  };
  assertProblem(t, await importInto('racy@mail.test', mbox), 500, 'internal_error');
});
