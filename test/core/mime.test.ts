import { spawnSync } from 'node:child_process';
import t, { type Test } from 'tap';
import { indexMessage } from '../../src/core/mime/index.js';
import { MIME_LIMITS } from '../../src/core/mime/limits.js';
import type { BodyPart, MessageIndex } from '../../src/core/mime/types.js';

const crlf = (...lines: string[]) => Buffer.from(lines.join('\r\n'), 'latin1');
const lf = (...lines: string[]) => Buffer.from(lines.join('\n'), 'latin1');
const bytes = (raw: Buffer, start: number, end: number) => raw.subarray(start, end).toString('latin1');
/** BODY[section.MIME] (BODY[HEADER] for the root) and BODY[section] of a part. */
const header = (raw: Buffer, part: BodyPart) => bytes(raw, part.headerStart, part.bodyStart);
const body = (raw: Buffer, part: BodyPart) => bytes(raw, part.bodyStart, part.end);

/** The part an IMAP section number names ("" is the root), following RFC 3501 §6.4.5. */
function section(index: MessageIndex, path: string): BodyPart {
  let part = index.structure;
  if (path === '') return part;
  for (const step of path.split('.').map(Number)) {
    if (part.message) part = part.message.body;
    if (part.parts) {
      const child = part.parts[step - 1];
      if (!child) throw new Error(`no part ${path}`);
      part = child;
    } else if (step !== 1) {
      throw new Error(`no part ${path}`);
    }
  }
  return part;
}

/** Every part, depth first, the enclosed message's root right after its message/rfc822 part. */
function flatten(part: BodyPart): BodyPart[] {
  const out = [part];
  if (part.message) out.push(...flatten(part.message.body));
  for (const child of part.parts ?? []) out.push(...flatten(child));
  return out;
}

/** What must hold for any input, however broken. */
function checkInvariants(t: Test, raw: Buffer, index: MessageIndex, label: string): void {
  const problems: string[] = [];
  const visit = (part: BodyPart, start: number, end: number, depth: number) => {
    const where = `${part.type}/${part.subtype}@${part.headerStart}`;
    if (!(start <= part.headerStart && part.headerStart <= part.bodyStart && part.bodyStart <= part.end && part.end <= end)) {
      problems.push(`${where}: offsets ${part.headerStart},${part.bodyStart},${part.end} outside ${start},${end}`);
    }
    if (part.size !== part.end - part.bodyStart) problems.push(`${where}: size`);
    if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(part.type) || !/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(part.subtype)) {
      problems.push(`${where}: type`);
    }
    if ((part.type === 'multipart') !== (part.parts !== undefined)) problems.push(`${where}: parts`);
    if (part.parts && part.parts.length === 0) problems.push(`${where}: no children`);
    const rfc822 = part.type === 'message' && part.subtype === 'rfc822';
    if (rfc822 !== (part.message !== undefined)) problems.push(`${where}: message`);
    if (depth > MIME_LIMITS.maxDepth + 1) problems.push(`${where}: too deep`);
    let previousEnd = part.bodyStart;
    for (const child of part.parts ?? []) {
      if (child.headerStart < previousEnd) problems.push(`${where}: children overlap`);
      visit(child, part.bodyStart, part.end, depth + 1);
      previousEnd = child.end;
    }
    if (part.message) {
      const inner = part.message.body;
      if (inner.headerStart !== part.bodyStart || inner.end !== part.end) problems.push(`${where}: enclosed range`);
      visit(inner, part.bodyStart, part.end, depth + 1);
    }
  };
  visit(index.structure, 0, raw.length, 0);
  if (index.structure.headerStart !== 0 || index.structure.end !== raw.length) problems.push('root range');
  const json = JSON.stringify(index);
  const { sentDate, ...rest } = JSON.parse(json) as MessageIndex & { sentDate: string | null };
  const { sentDate: date, ...expected } = index;
  if (JSON.stringify(rest) !== JSON.stringify(expected)) problems.push('changes in a JSON round trip');
  if (sentDate !== (date === null ? null : date.toISOString())) problems.push('sentDate');
  if (/\\u0000|\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f])/i.test(json)) problems.push('not storable in jsonb');
  t.same(problems, [], `${label}: invariants`);
}

function index(t: Test, raw: Buffer, label = 'message'): MessageIndex {
  const result = indexMessage(raw);
  checkInvariants(t, raw, result, label);
  return result;
}

t.test('a simple text message: header, body, lines, defaults', async (t) => {
  const raw = crlf('From: ann@example.com', 'Subject: hi', '', 'Hello', 'World', '');
  const result = index(t, raw);
  const root = result.structure;
  t.equal(header(raw, root), 'From: ann@example.com\r\nSubject: hi\r\n\r\n', 'BODY[HEADER] keeps the blank line');
  t.equal(body(raw, root), 'Hello\r\nWorld\r\n');
  t.match(root, {
    type: 'text', subtype: 'plain', params: { charset: 'us-ascii' }, encoding: '7BIT',
    id: null, description: null, md5: null, disposition: null, language: null, location: null,
    size: 14, lines: 2,
  });
  t.notOk('parts' in root, 'no parts key on a leaf');
  t.notOk('message' in root, 'no message key on a leaf');
  t.equal(section(result, '1'), root, 'BODY[1] of a single-part message is its body');
  t.same(indexMessage(new Uint8Array(raw) as Buffer), result, 'a plain Uint8Array is read the same');

  const noEol = index(t, crlf('Subject: x', '', 'one', 'two'));
  t.equal(noEol.structure.lines, 2, 'a last line without a line feed still counts');
  t.equal(index(t, crlf('Subject: x', '', '')).structure.lines, 0, 'an empty body has no lines');
  t.equal(index(t, crlf('Subject: x', '', '', '')).structure.lines, 1, 'one empty line');
});

// multipart/mixed: preamble, multipart/alternative (text, html), a PDF attachment, epilogue.
const mixedLines = [
  'From: Ann Example <ann@example.com>',
  'To: bob@example.net',
  'Subject: Report',
  'Date: Mon, 3 Jun 2024 09:15:00 +0200',
  'Message-ID: <report-1@example.com>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed;',
  ' boundary="==outer=="',
  '',
  'This is a multi-part message in MIME format.',
  '',
  '--==outer==',
  'Content-Type: multipart/alternative; boundary=inner',
  '',
  '--inner',
  'Content-Type: text/plain; charset="UTF-8"',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  'Hello Bob,',
  '',
  'the report is attached.=20',
  '',
  '--inner',
  'Content-Type: text/html; charset=UTF-8',
  'Content-Transfer-Encoding: 7bit',
  '',
  '<p>Hello Bob,</p><p>the report is attached.</p>',
  '--inner--',
  '',
  '--==outer==',
  'Content-Type: application/pdf; name="report.pdf"',
  'Content-Disposition: attachment; filename="report.pdf"; size=12',
  'Content-Transfer-Encoding: base64',
  'Content-ID: <pdf@example.com>',
  'Content-Description: The report',
  '',
  'JVBERi0xLjQK',
  'JSVFT0YK',
  '--==outer==--',
  'This epilogue is not a part.',
  '',
];

function checkMixed(t: Test, raw: Buffer, nl: string): void {
  const result = index(t, raw);
  const root = result.structure;
  t.match(root, { type: 'multipart', subtype: 'mixed', params: { boundary: '==outer==' } });
  t.equal(root.parts?.length, 2, 'the preamble and epilogue are not parts');
  t.ok(header(raw, root).endsWith(` boundary="==outer=="${nl}${nl}`), 'root header ends with the blank line');
  t.ok(body(raw, root).startsWith(`This is a multi-part`), 'a multipart body starts with the preamble');
  t.ok(body(raw, root).endsWith(`--==outer==--${nl}This epilogue is not a part.${nl}`), 'and runs through the epilogue');

  const alternative = section(result, '1');
  t.match(alternative, { type: 'multipart', subtype: 'alternative', params: { boundary: 'inner' } });
  t.equal(header(raw, alternative), `Content-Type: multipart/alternative; boundary=inner${nl}${nl}`, 'BODY[1.MIME]');
  t.equal(
    body(raw, alternative),
    [
      '--inner',
      'Content-Type: text/plain; charset="UTF-8"',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'Hello Bob,',
      '',
      'the report is attached.=20',
      '',
      '--inner',
      'Content-Type: text/html; charset=UTF-8',
      'Content-Transfer-Encoding: 7bit',
      '',
      '<p>Hello Bob,</p><p>the report is attached.</p>',
      '--inner--',
      '',
    ].join(nl),
    'BODY[1]: the inner multipart up to the CRLF before the outer delimiter (its epilogue is one empty line)',
  );

  const plain = section(result, '1.1');
  t.match(plain, { type: 'text', subtype: 'plain', params: { charset: 'UTF-8' }, encoding: 'QUOTED-PRINTABLE' });
  t.equal(header(raw, plain), `Content-Type: text/plain; charset="UTF-8"${nl}Content-Transfer-Encoding: quoted-printable${nl}${nl}`);
  t.equal(body(raw, plain), `Hello Bob,${nl}${nl}the report is attached.=20${nl}`, 'the CRLF before --inner is not in the body');
  t.equal(plain.size, Buffer.byteLength(body(raw, plain)));
  t.equal(plain.lines, 3);

  const html = section(result, '1.2');
  t.match(html, { type: 'text', subtype: 'html', encoding: '7BIT', lines: 1 });
  t.equal(body(raw, html), '<p>Hello Bob,</p><p>the report is attached.</p>');

  const pdf = section(result, '2');
  t.match(pdf, {
    type: 'application', subtype: 'pdf', params: { name: 'report.pdf' }, encoding: 'BASE64',
    id: '<pdf@example.com>', description: 'The report',
    disposition: { type: 'attachment', params: { filename: 'report.pdf', size: '12' } },
    lines: 0,
  });
  t.equal(body(raw, pdf), `JVBERi0xLjQK${nl}JSVFT0YK`);
  t.equal(pdf.size, 20 + nl.length);
}

t.test('multipart/alternative inside multipart/mixed with an attachment (CRLF)', async (t) => {
  checkMixed(t, crlf(...mixedLines), '\r\n');
});

t.test('the same message with bare LF line ends', async (t) => {
  checkMixed(t, lf(...mixedLines), '\n');
});

t.test('mixed line ends keep exact offsets', async (t) => {
  const raw = Buffer.from('Content-Type: multipart/mixed; boundary=b\n\r\n--b\r\n\nfirst\n--b\nSubject: x\r\n\r\nsecond\r\n--b--', 'latin1');
  const result = index(t, raw);
  t.equal(body(raw, section(result, '1')), 'first');
  t.equal(header(raw, section(result, '2')), 'Subject: x\r\n\r\n');
  t.equal(body(raw, section(result, '2')), 'second');
});

t.test('message/rfc822 with its own multipart', async (t) => {
  const raw = crlf(
    'From: ann@example.com',
    'Subject: Fwd: minutes',
    'Content-Type: multipart/mixed; boundary=outer',
    '',
    '--outer',
    '',
    'See the forwarded message.',
    '--outer',
    'Content-Type: message/rfc822',
    'Content-Disposition: inline',
    '',
    'From: Carol <carol@example.org>',
    'To: ann@example.com',
    'Subject: minutes',
    'Date: Fri, 31 May 2024 17:00:00 -0400',
    'Content-Type: multipart/alternative; boundary="inner"',
    '',
    '--inner',
    'Content-Type: text/plain',
    '',
    'Minutes',
    '--inner',
    'Content-Type: text/html',
    '',
    '<b>Minutes</b>',
    '--inner--',
    '--outer--',
    '',
  );
  const result = index(t, raw);
  const first = section(result, '1');
  t.equal(header(raw, first), '\r\n', 'a part with no header fields has just the blank line');
  t.match(first, { type: 'text', subtype: 'plain', params: { charset: 'us-ascii' } });
  t.equal(body(raw, first), 'See the forwarded message.');

  const forwarded = section(result, '2');
  t.match(forwarded, { type: 'message', subtype: 'rfc822', disposition: { type: 'inline', params: {} } });
  const inner = forwarded.message!.body;
  t.equal(inner.headerStart, forwarded.bodyStart, 'the enclosed header starts the message part body');
  t.equal(inner.end, forwarded.end);
  t.ok(header(raw, inner).startsWith('From: Carol'), 'BODY[2.HEADER]');
  t.ok(header(raw, inner).endsWith('boundary="inner"\r\n\r\n'));
  t.equal(body(raw, forwarded), bytes(raw, inner.headerStart, inner.end));
  t.ok(body(raw, forwarded).endsWith('--inner--'), 'the enclosed message ends before the CRLF of --outer--');
  t.equal(forwarded.lines, 15, 'message/rfc822 lines count the whole enclosed message');
  t.match(forwarded.message!.envelope, {
    date: 'Fri, 31 May 2024 17:00:00 -0400',
    subject: 'minutes',
    from: [{ name: 'Carol', mailbox: 'carol', host: 'example.org' }],
    sender: [{ name: 'Carol', mailbox: 'carol', host: 'example.org' }],
    to: [{ name: null, mailbox: 'ann', host: 'example.com' }],
    messageId: null,
  });
  t.equal(body(raw, section(result, '2.1')), 'Minutes', 'BODY[2.1] is inside the enclosed multipart');
  t.equal(body(raw, section(result, '2.2')), '<b>Minutes</b>');
  t.equal(header(raw, section(result, '2.2')), 'Content-Type: text/html\r\n\r\n');
});

t.test('multipart/digest: parts default to message/rfc822', async (t) => {
  const raw = crlf(
    'Subject: digest',
    'Content-Type: multipart/digest; boundary=d',
    '',
    '--d',
    '',
    'Subject: first',
    'From: one@example.com',
    '',
    'Body one',
    '--d',
    '',
    'Subject: second',
    '',
    'Body two',
    '',
    '--d',
    'Content-Type: text/plain',
    '',
    'not a message',
    '--d--',
  );
  const result = index(t, raw);
  const [one, two, three] = result.structure.parts!;
  t.match(one, { type: 'message', subtype: 'rfc822', params: {} });
  t.equal(one!.message!.envelope.subject, 'first');
  t.equal(body(raw, one!.message!.body), 'Body one');
  t.equal(one!.lines, 4);
  t.match(two, { type: 'message', subtype: 'rfc822' });
  t.equal(body(raw, two!.message!.body), 'Body two\r\n');
  t.match(three, { type: 'text', subtype: 'plain' });
  t.notOk(three!.message);

  const cut = crlf('Content-Type: multipart/digest; boundary=d', '', '--d', 'Content-Description: cut short', '--d--');
  const cutPart = index(t, cut).structure.parts![0]!;
  t.match(cutPart, { type: 'message', subtype: 'rfc822', size: 0, lines: 0, description: 'cut short' });
  t.match(cutPart.message, { envelope: { subject: null, from: null }, body: { type: 'text', size: 0 } });
  t.equal(cutPart.message!.body.headerStart, cutPart.bodyStart, 'an empty enclosed message where the body would be');
});

t.test('a missing close delimiter ends the part with its enclosing part', async (t) => {
  const raw = crlf(
    'Content-Type: multipart/mixed; boundary=outer',
    '',
    '--outer',
    'Content-Type: multipart/alternative; boundary=inner',
    '',
    '--inner',
    '',
    'inner one',
    '--outer',
    '',
    'outer two',
    '--outer--',
  );
  const result = index(t, raw);
  const alternative = section(result, '1');
  t.equal(alternative.parts?.length, 1);
  t.equal(body(raw, alternative), '--inner\r\n\r\ninner one', 'the unclosed multipart ends before the CRLF of --outer');
  t.equal(body(raw, section(result, '1.1')), 'inner one');
  t.equal(body(raw, section(result, '2')), 'outer two');

  const open = crlf('Content-Type: multipart/mixed; boundary=b', '', '--b', '', 'runs to the end', '');
  const openResult = index(t, open);
  t.equal(body(open, openResult.structure.parts![0]!), 'runs to the end\r\n', 'with no delimiter after it, the last line break is content');
  t.equal(openResult.structure.end, open.length);
});

t.test('preamble, epilogue, transport padding and boundary look-alikes', async (t) => {
  const raw = crlf(
    'Content-Type: multipart/mixed; boundary="b 1"',
    '',
    'preamble --b 1 is not at a line start',
    '--b 1 \t ',
    '',
    'one',
    '--b 1x',
    '--b 12--',
    ' --b 1',
    '--b 1',
    '',
    'two',
    '--b 1-- \t',
    'epilogue',
    '--b 1',
    'still epilogue',
  );
  const result = index(t, raw);
  t.equal(result.structure.parts?.length, 2);
  t.equal(body(raw, section(result, '1')), 'one\r\n--b 1x\r\n--b 12--\r\n --b 1', 'lines that only start like a delimiter are content');
  t.equal(body(raw, section(result, '2')), 'two');
  t.ok(body(raw, result.structure).endsWith('epilogue\r\n--b 1\r\nstill epilogue'), 'delimiters after the close are epilogue');

  const immediate = crlf('Content-Type: multipart/mixed; boundary=b', '', '--b', '', 'x', '--b--');
  t.equal(body(immediate, index(t, immediate).structure.parts![0]!), 'x', 'no preamble at all');

  const empty = crlf('Content-Type: multipart/mixed; boundary=b', '', '--b', 'Content-Type: text/html', '--b', '--b--');
  const emptyResult = index(t, empty);
  const [cut, bare] = emptyResult.structure.parts!;
  t.equal(header(empty, cut!), 'Content-Type: text/html', 'a delimiter in the header ends the part; the CRLF is the delimiter\'s');
  t.match(cut, { type: 'text', subtype: 'html', size: 0, lines: 0 });
  t.match(bare, { headerStart: bare!.bodyStart, size: 0, type: 'text', subtype: 'plain' });
});

t.test('the same boundary nested, and a boundary that is a prefix of another', async (t) => {
  const raw = crlf(
    'Content-Type: multipart/mixed; boundary=ab',
    '',
    '--ab',
    'Content-Type: multipart/mixed; boundary=abc',
    '',
    '--abc',
    '',
    'deep',
    '--abc--',
    '--ab',
    'Content-Type: multipart/mixed; boundary=ab',
    '',
    '--ab',
    '',
    'same boundary',
    '--ab--',
    '--ab--',
  );
  const result = index(t, raw);
  t.equal(body(raw, section(result, '1.1')), 'deep');
  t.equal(body(raw, section(result, '2.1')), 'same boundary', 'the innermost multipart claims a shared boundary');
  t.equal(result.structure.parts?.length, 2);
});

t.test('Content-Type parameters: RFC 2231, charsets, case, defaults', async (t) => {
  const raw = crlf(
    'Content-Type: multipart/mixed; boundary=b',
    '',
    '--b',
    'Content-Type: Application/Octet-Stream;',
    "\tNAME*0*=utf-8''%C3%A4rger;",
    '\tname*1*=%20und%20mehr.txt;',
    "\ttitle*=iso-8859-1'en'%A3%20rates",
    "Content-Disposition: ATTACHMENT; filename*=UTF-8''%E2%82%AC.txt; creation-date=\"Tue, 4 Jun 2024 10:00:00 +0000\"",
    'Content-Language: en, de-CH (Swiss)',
    'Content-Location: http://example.com/x',
    'Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==',
    'Content-Transfer-Encoding: Base64 (comment)',
    '',
    'AAAA',
    '--b',
    'Content-Type: text/plain; charset="iso-8859-1"; format=flowed (comment)',
    '',
    'x',
    '--b',
    'Content-Type: nonsense',
    '',
    'y',
    '--b',
    'Content-Type: text/',
    '',
    'z',
    '--b--',
  );
  const result = index(t, raw);
  t.match(section(result, '1'), {
    type: 'application',
    subtype: 'octet-stream',
    params: { name: 'ärger und mehr.txt', title: '£ rates' },
    disposition: { type: 'attachment', params: { filename: '€.txt', 'creation-date': 'Tue, 4 Jun 2024 10:00:00 +0000' } },
    language: ['en', 'de-CH'],
    location: 'http://example.com/x',
    md5: 'Q2hlY2sgSW50ZWdyaXR5IQ==',
    encoding: 'BASE64',
  });
  t.same(section(result, '2').params, { charset: 'iso-8859-1', format: 'flowed' }, 'comments are not parameters');
  t.same(section(result, '3').params, { charset: 'us-ascii' }, 'an invalid type means text/plain; charset=us-ascii');
  t.match(section(result, '3'), { type: 'text', subtype: 'plain' });
  t.match(section(result, '4'), { type: 'text', subtype: 'plain', params: { charset: 'us-ascii' } });
  t.match(index(t, crlf('Content-Type: TEXT/HTML; Charset=UTF-8', '', 'x')).structure, {
    type: 'text', subtype: 'html', params: { charset: 'UTF-8' },
  });
  const proto = index(t, crlf('Content-Type: text/plain; __proto__=x; constructor=y', '', 'x')).structure.params;
  t.equal(Object.getPrototypeOf(proto), Object.prototype, 'a parameter called __proto__ is not a prototype');
  t.same(Object.keys(proto), ['__proto__', 'constructor']);
});

t.test('a multipart without a usable boundary is text/plain', async (t) => {
  for (const [label, contentType] of [
    ['no boundary', 'multipart/mixed'],
    ['empty boundary', 'multipart/mixed; boundary=""'],
    ['boundary never used', 'multipart/mixed; boundary=zzz'],
  ] as const) {
    const raw = crlf(`Content-Type: ${contentType}`, '', '--b', '', 'text', '--b--', '');
    const root = index(t, raw, label).structure;
    t.match(root, { type: 'text', subtype: 'plain', params: { charset: 'us-ascii' }, lines: 4 }, label);
    t.notOk(root.parts, label);
    t.equal(body(raw, root), '--b\r\n\r\ntext\r\n--b--\r\n', label);
  }
});

t.test('envelope: fields as they stand, decoded search text', async (t) => {
  const raw = crlf(
    'Date: Wed, 5 Jun 2024 08:00:00 +0000',
    'Subject: =?UTF-8?Q?Gr=C3=BC?=',
    ' =?UTF-8?Q?=C3=9Fe?= aus =?ISO-8859-1?B?S/Zsbg==?=',
    'From: =?UTF-8?B?w4RubmU=?= <anne@example.com>',
    'Sender: "Mail, System" <system@example.com>',
    'Reply-To: replies@example.com (Replies)',
    'To: bob@example.net, "Carol" <carol@example.net>',
    'Cc: undisclosed-recipients:;',
    'Bcc: Team: dave@example.org, erin@example.org;, frank@example.org',
    'In-Reply-To: <earlier@example.com>',
    'Message-ID: <now@example.com>',
    'Subject: a second subject is ignored',
    '',
    'x',
  );
  const result = index(t, raw);
  t.same(result.envelope, {
    date: 'Wed, 5 Jun 2024 08:00:00 +0000',
    subject: '=?UTF-8?Q?Gr=C3=BC?= =?UTF-8?Q?=C3=9Fe?= aus =?ISO-8859-1?B?S/Zsbg==?=',
    from: [{ name: '=?UTF-8?B?w4RubmU=?=', mailbox: 'anne', host: 'example.com' }],
    sender: [{ name: 'Mail, System', mailbox: 'system', host: 'example.com' }],
    replyTo: [{ name: 'Replies', mailbox: 'replies', host: 'example.com' }],
    to: [
      { name: null, mailbox: 'bob', host: 'example.net' },
      { name: 'Carol', mailbox: 'carol', host: 'example.net' },
    ],
    cc: [
      { name: null, mailbox: 'undisclosed-recipients', host: null },
      { name: null, mailbox: null, host: null },
    ],
    bcc: [
      { name: null, mailbox: 'Team', host: null },
      { name: null, mailbox: 'dave', host: 'example.org' },
      { name: null, mailbox: 'erin', host: 'example.org' },
      { name: null, mailbox: null, host: null },
      { name: null, mailbox: 'frank', host: 'example.org' },
    ],
    inReplyTo: '<earlier@example.com>',
    messageId: '<now@example.com>',
  });
  t.equal(result.subject, 'Grüße aus Köln', 'unfolded, encoded-words decoded, white space between two of them dropped');
  t.equal(result.from, 'Änne <anne@example.com>');
  t.equal(result.to, 'bob@example.net, Carol <carol@example.net>');
  t.same(result.headers.subject, ['Grüße aus Köln', 'a second subject is ignored']);
  t.same(result.headers.cc, ['undisclosed-recipients:;']);
  t.equal(result.sentDate?.toISOString(), '2024-06-05T08:00:00.000Z');

  const group = index(t, crlf('From: a@example.com', 'To: "The Team": x@example.com, =?UTF-8?Q?Y=C3=BC?= <y@example.com>;', '', ''));
  t.equal(group.to, 'The Team: x@example.com, Yü <y@example.com>;');
  t.same(group.envelope.to?.[0], { name: null, mailbox: 'The Team', host: null });
});

t.test('envelope: missing and empty fields', async (t) => {
  const none = index(t, crlf('X-Only: this', '', 'body'));
  t.same(none.envelope, {
    date: null, subject: null, from: null, sender: null, replyTo: null,
    to: null, cc: null, bcc: null, inReplyTo: null, messageId: null,
  });
  t.equal(none.subject, null);
  t.equal(none.from, null);
  t.equal(none.to, null);
  t.equal(none.sentDate, null);

  const defaults = index(t, crlf('From: Ann <ann@example.com>', 'Sender:', 'Subject:', '', ''));
  const from = [{ name: 'Ann', mailbox: 'ann', host: 'example.com' }];
  t.same(defaults.envelope.sender, from, 'an empty Sender takes From');
  t.same(defaults.envelope.replyTo, from, 'an absent Reply-To takes From');
  t.not(defaults.envelope.sender, defaults.envelope.from, 'as copies, not the same array');
  t.equal(defaults.envelope.subject, '', 'a present but empty Subject is not NIL');
});

t.test('envelope: broken addresses are kept as far as they go', async (t) => {
  const result = index(
    t,
    crlf('From: <>', 'To: just-a-name, @example.com, local@, "unterminated <x@y>, Name <a@b', 'Cc: ,,,;;', 'Bcc: (((', '', ''),
  );
  t.equal(result.envelope.from, null, 'nothing usable in From');
  t.same(result.envelope.to, [
    { name: 'just-a-name', mailbox: 'MISSING_MAILBOX', host: 'MISSING_DOMAIN' },
    { name: null, mailbox: 'MISSING_MAILBOX', host: 'example.com' },
    { name: null, mailbox: 'local', host: 'MISSING_DOMAIN' },
    // An unterminated quote swallows the rest; addressparser still digs an address out of it.
    { name: 'unterminated < >, Name <a@b', mailbox: 'x', host: 'y' },
  ]);
  t.equal(result.envelope.cc, null);
  t.equal(result.envelope.sender, null, 'Sender defaults to a NIL From');

  const odd = index(t, crlf('To: "a \\" b" <x@example.com>, outer: inner: y@example.com;, (only a comment)', '', ''));
  t.same(odd.envelope.to, [
    { name: 'a " b', mailbox: 'x', host: 'example.com' },
    { name: null, mailbox: 'outer', host: null },
    { name: null, mailbox: 'y', host: 'example.com' },
    { name: null, mailbox: null, host: null },
    { name: 'only a comment', mailbox: 'MISSING_MAILBOX', host: 'MISSING_DOMAIN' },
  ], 'escaped quotes, a group inside a group flattened, a lone comment');

  const many = index(t, crlf(`To: ${Array.from({ length: 5000 }, (_, i) => `u${i}@example.com`).join(', ')}`, '', ''));
  t.equal(many.envelope.to?.length, MIME_LIMITS.addressesPerList, 'address lists are capped');
});

t.test('the Date header', async (t) => {
  const cases: [string, string | null][] = [
    ['Tue, 1 Jul 2003 10:52:37 +0200', '2003-07-01T08:52:37.000Z'],
    ['1 Jul 2003 10:52 -0000', '2003-07-01T10:52:00.000Z'],
    ['Tue, 01 Jul 03 10:52:37 EDT', '2003-07-01T14:52:37.000Z'],
    ['Thu, 13 Feb 1969 23:32:54 -0330', null],
    ['Tue,  1-Jul-2003 10:52:37 GMT (comment)', '2003-07-01T10:52:37.000Z'],
    ['Mon, 31 Feb 2024 10:00:00 +0000', null],
    ['2024-06-05T08:00:00Z', '2024-06-05T08:00:00.000Z'],
    ['2024-06-05 08:00:00+02:00', '2024-06-05T06:00:00.000Z'],
    ['Sat, 1 Jan 100 00:00:00 +0530', '1999-12-31T18:30:00.000Z'],
    ['1 January 2000 00:00 PST', '2000-01-01T08:00:00.000Z'],
    ['1 Jan 2000 00:00 A', '2000-01-01T00:00:00.000Z'],
    ['1 Jan 1990 23:59:60 +0000', '1990-01-01T23:59:59.000Z'],
    ['1 Foo 2000 00:00 +0000', null],
    ['1 Jan 2000 24:00 +0000', null],
    ['1 Jan 2000 00:00:61 +0000', null],
    ['yesterday', null],
    ['1', null],
    ['', null],
  ];
  for (const [date, expected] of cases) {
    const result = index(t, crlf(`Date: ${date}`, '', ''), date);
    t.equal(result.sentDate?.toISOString() ?? null, expected, JSON.stringify(date));
    t.equal(result.envelope.date, date, 'ENVELOPE keeps the text');
  }
});

t.test('headers: decoded, all top-level fields, bounded', async (t) => {
  const raw = crlf('X-A: one', 'x-a: two', 'Subject: =?UTF-8?Q?caf=C3=A9?=', 'Folded: a', '\tb', '', 'Subject: not a header', '');
  const result = index(t, raw);
  t.same(result.headers, { 'x-a': ['one', 'two'], subject: ['café'], folded: ['a\tb'] });

  const fields = Array.from({ length: 100_000 }, (_, i) => `X-Field-${i}: ${'v'.repeat(20)}`);
  const bigRaw = crlf('Subject: first', ...fields, 'Content-Type: text/html', '', 'body');
  const big = index(t, bigRaw, 'enormous header count');
  t.ok(JSON.stringify(big.headers).length < MIME_LIMITS.headerMapChars * 2, 'the map stays small');
  t.equal(big.subject, 'first');
  t.match(big.structure, { type: 'text', subtype: 'plain' }, `fields past the first ${MIME_LIMITS.fieldsPerHeader} are not read`);
  t.equal(body(bigRaw, big.structure), 'body', 'but the header still ends at its blank line');

  const long = index(t, crlf(`X-Long: ${'x'.repeat(100_000)}`, 'Subject: s', '', ''));
  t.ok(long.headers['x-long']![0]!.length <= MIME_LIMITS.headerValueChars, 'one value is cut');
  t.same(long.headers.subject, ['s']);
});

t.test('8-bit headers and bytes that are not UTF-8', async (t) => {
  const raw = Buffer.concat([
    Buffer.from('Subject: Grüße\r\nFrom: Jörg <jörg@exämple.com>\r\n', 'utf8'),
    Buffer.from('X-Bad: \xff\xfe\x00end\r\nContent-Type: text/plain; name="\xe4.txt"\r\n\r\nbody', 'latin1'),
  ]);
  const result = index(t, raw);
  t.equal(result.subject, 'Grüße');
  t.equal(result.envelope.subject, 'Grüße');
  t.same(result.envelope.from, [{ name: 'Jörg', mailbox: 'jörg', host: 'exämple.com' }]);
  t.same(result.headers['x-bad'], ['\ufffd\ufffd\ufffdend'], 'invalid UTF-8 and NUL become U+FFFD');
  t.equal(result.structure.params.name, '\ufffd.txt');
  t.equal(body(raw, result.structure), 'body');
});

t.test('garbage never throws and yields a plain-text leaf', async (t) => {
  const inputs: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from('x')],
    ['only a blank line', Buffer.from('\r\n')],
    ['blank lines', Buffer.from('\n\n\n')],
    ['no separator', Buffer.from('Subject: no body')],
    ['no header', Buffer.from('Just some text\r\nwith lines\r\n')],
    ['binary', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256))],
    ['nuls', Buffer.alloc(1000)],
    ['colons', Buffer.from(':::\r\n:\r\n\r\n')],
    ['continuation first', Buffer.from(' folded\r\nSubject: x\r\n\r\nbody')],
    ['CR only', Buffer.from('Subject: x\rFrom: y\r\rbody')],
  ];
  for (const [label, raw] of inputs) {
    const result = index(t, raw, label);
    t.match(result.structure, { type: 'text', subtype: 'plain', headerStart: 0, end: raw.length }, label);
  }
  const noHeader = index(t, Buffer.from('Just some text\r\nwith lines\r\n'));
  t.equal(noHeader.structure.bodyStart, 0, 'a first line that is not a field starts the body');
  const noBody = index(t, Buffer.from('Subject: no body'));
  t.equal(noBody.structure.bodyStart, 16, 'without a blank line it is all header');
  t.equal(noBody.subject, 'no body');
});

t.test('hostile structure stays bounded', async (t) => {
  const depth = 100;
  let nested = 'innermost';
  for (let level = depth; level > 0; level--) {
    nested = `Content-Type: multipart/mixed; boundary=b${level}\r\n\r\n--b${level}\r\n${nested}\r\n--b${level}--`;
  }
  const deep = index(t, Buffer.from(nested), 'deep multipart');
  let part = deep.structure;
  let levels = 0;
  while (part.parts) {
    part = part.parts[0]!;
    levels++;
  }
  t.equal(levels, MIME_LIMITS.maxDepth, 'nesting stops at maxDepth');
  t.match(part, { type: 'application', subtype: 'octet-stream' }, 'deeper content is an opaque leaf');

  let messages = 'Subject: bottom\r\n\r\nbottom';
  for (let level = 0; level < 100; level++) messages = `Content-Type: message/rfc822\r\n\r\n${messages}`;
  index(t, Buffer.from(messages), 'deep message/rfc822');

  const manyParts = ['Content-Type: multipart/mixed; boundary=b', ''];
  for (let i = 0; i < MIME_LIMITS.maxParts + 50; i++) manyParts.push('--b', '', `part ${i}`);
  manyParts.push('--b--');
  const many = index(t, crlf(...manyParts), 'many parts');
  t.equal(many.structure.parts?.length, MIME_LIMITS.maxParts - 1, 'parts are capped (the root counts)');
  t.ok(body(crlf(...manyParts), many.structure).endsWith('--b--'), 'the rest stays in the multipart body');

  const digest = ['Content-Type: multipart/digest; boundary=d', ''];
  for (let i = 0; i < 2000; i++) digest.push('--d', '', `To: ${'a@b, '.repeat(200)}`, '', 'x');
  index(t, crlf(...digest), 'digest of big address lists');

  const padded = Buffer.from(`Content-Type: multipart/mixed; boundary=b\r\n\r\n--b${' '.repeat(100_000)}\r\n\r\nx\r\n--b--`);
  t.equal(body(padded, index(t, padded, 'long padding').structure.parts![0]!), 'x');
});

t.test('never throws on mutated messages', async (t) => {
  const seed = crlf(...mixedLines);
  let state = 42;
  const random = (n: number) => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % n;
  };
  const alphabet = Buffer.from('-\r\n:;= "\'<>()@*%\t\x00\xff=?abcB');
  for (let round = 0; round < 300; round++) {
    const raw = Buffer.from(seed);
    const edits = 1 + random(8);
    for (let i = 0; i < edits; i++) raw[random(raw.length)] = alphabet[random(alphabet.length)]!;
    const cut = random(4) === 0 ? raw.subarray(0, random(raw.length)) : raw;
    index(t, cut, `mutation ${round}`);
  }
});

t.test('agrees with Python\'s email package on a complex message', async (t) => {
  const raw = crlf(
    'From: Ann <ann@example.com>',
    'To: bob@example.net',
    'Subject: everything',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="outer"',
    '',
    'preamble',
    '--outer',
    'Content-Type: multipart/alternative; boundary="alt"',
    '',
    '--alt',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'plain line 1',
    'plain line 2',
    '',
    '--alt',
    'Content-Type: text/html; charset=utf-8',
    '',
    '<p>html</p>',
    '--alt--',
    'alt epilogue',
    '--outer',
    'Content-Type: image/png; name="dot.png"',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment; filename="dot.png"',
    '',
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
    '--outer',
    'Content-Type: message/rfc822',
    '',
    'From: carol@example.org',
    'Subject: inner',
    'Content-Type: multipart/mixed; boundary="in"',
    '',
    '--in',
    '',
    'inner text',
    '--in',
    'Content-Type: multipart/digest; boundary="dg"',
    '',
    '--dg',
    '',
    'Subject: digest item',
    '',
    'item body',
    '--dg--',
    '--in--',
    '--outer',
    'Content-Type: text/plain',
    '',
    'last',
    '',
    '--outer--',
    'epilogue',
    '',
  );
  const python = [
    'import base64, email, json, sys',
    'message = email.message_from_bytes(sys.stdin.buffer.read())',
    'out = []',
    'for part in message.walk():',
    '    entry = {"type": part.get_content_type()}',
    '    if not part.is_multipart():',
    '        entry["payload"] = base64.b64encode(part.get_payload().encode("ascii", "surrogateescape")).decode()',
    '    out.append(entry)',
    'print(json.dumps(out))',
  ].join('\n');
  const run = spawnSync('python3', ['-c', python], { input: raw, encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  const expected = JSON.parse(run.stdout) as { type: string; payload?: string }[];
  const ours = flatten(index(t, raw).structure).map((part) => {
    const entry: { type: string; payload?: string } = { type: `${part.type}/${part.subtype}` };
    if (!part.parts && !part.message) entry.payload = raw.subarray(part.bodyStart, part.end).toString('base64');
    return entry;
  });
  t.same(ours, expected, 'same parts, same order, same payload bytes');
  t.equal(expected.length, 12);
});

t.test('a library failure costs one field, an internal one falls back to a plain body', async (t) => {
  const failing = () => {
    throw new Error('boom');
  };
  const headers = await t.mockImport<typeof import('../../src/core/mime/headers.js')>('../../src/core/mime/headers.js', {
    libmime: { default: { decodeWords: failing, parseHeaderValue: failing } },
  });
  t.equal(headers.decodeText('=?UTF-8?Q?caf=C3=A9?='), '=?UTF-8?Q?caf=C3=A9?=', 'undecodable text is kept as it stands');
  const raw = crlf('Content-Type: text/html', 'Content-Disposition: inline', '', 'x');
  const content = headers.readContentFields(raw, [{ start: 0, colon: 12, end: 23 }, { start: 25, colon: 44, end: 52 }], 'text');
  t.match(content, { type: 'text', subtype: 'plain', params: { charset: 'us-ascii' }, disposition: null }, 'unparseable means the defaults');

  const { indexMessage: withBrokenParser } = await t.mockImport<typeof import('../../src/core/mime/index.js')>(
    '../../src/core/mime/index.js',
    { '../../src/core/mime/structure.js': { parseStructure: failing, countLines: () => 1 } },
  );
  const fallback = withBrokenParser(raw);
  checkInvariants(t, raw, fallback, 'fallback');
  t.match(fallback, { subject: null, headers: {}, structure: { headerStart: 0, bodyStart: 0, end: raw.length, size: raw.length } });
});
