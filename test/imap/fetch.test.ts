import { execFile } from 'node:child_process';
import { connect as connectTcp } from 'node:net';
import { promisify } from 'node:util';
import t from 'tap';
import { filterHeaderFields, parseSection, sectionName } from '../../src/imap/fetch/section.js';
import { LineClient } from '../helpers/line-client.js';
import { PASSWORD, startTestImap } from '../helpers/imap.js';

const imap = await startTestImap(t);
const mail = imap.services.mail;

// The multipart message every section test reads. Built from its pieces, so each expected answer
// below is a piece (or a join of pieces) written by hand, never something the server computed.
const ROOT_HEADER =
  'From: "Doe, Ann" <ann@example.com>\r\n' +
  'To: Bob <bob@example.org>\r\n' +
  'Cc: Team: carl@example.net, "Dee \\"D\\" Dee" <dee@example.net>;\r\n' +
  'Subject: Quarterly\r\n report\r\n' +
  'Date: Wed, 17 Jul 1996 02:44:25 -0700\r\n' +
  'Message-ID: <m1@example.com>\r\n' +
  'In-Reply-To: <m0@example.com>\r\n' +
  'Received: from a\r\n\tby b\r\n' +
  'Received: from c\r\n' +
  'X-Long: first\r\n\tsecond\r\n' +
  'MIME-Version: 1.0\r\n' +
  'Content-Type: multipart/mixed; boundary="outer"\r\n' +
  'Content-Language: en\r\n' +
  '\r\n';
const PREAMBLE = 'This is a multi-part message.\r\n';
const PART1_MIME = 'Content-Type: multipart/alternative; boundary=inner\r\n\r\n';
const PART11_MIME = 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n';
const PART11 = 'Hello Bob,=0D\r\ntwo lines'; // 24 octets, 2 lines (the CRLF after it is the delimiter's)
const PART12_MIME =
  'Content-Type: text/html; charset=utf-8\r\n' +
  'Content-ID: <h1@example.com>\r\n' +
  'Content-Description: HTML version\r\n' +
  'Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n' +
  'Content-Language: en, de\r\n' +
  'Content-Location: http://example.com/x.html\r\n' +
  '\r\n';
const PART12 = '<p>Hello</p>'; // 12 octets, 1 line
const PART1 = `--inner\r\n${PART11_MIME}${PART11}\r\n--inner\r\n${PART12_MIME}${PART12}\r\n--inner--`;
const PART2_MIME = 'Content-Type: message/rfc822\r\nContent-Disposition: attachment; filename="fwd.eml"\r\n\r\n';
const INNER_HEADER =
  'From: Carl <carl@example.net>\r\n' +
  'To: ann@example.com\r\n' +
  'Subject: inner\r\n' +
  'Message-ID: <m2@example.net>\r\n' +
  'MIME-Version: 1.0\r\n' +
  'Content-Type: multipart/mixed; boundary=b2\r\n' +
  '\r\n'; // 7 line feeds
const INNER1_MIME = 'Content-Type: text/plain\r\n\r\n';
const INNER1 = 'Inner body\r\nline 2'; // 18 octets, 2 lines
const INNER2_MIME = 'Content-Type: text/plain; name=note.txt\r\nContent-Disposition: attachment; filename=note.txt\r\n\r\n';
const INNER2 = 'note'; // 4 octets, 1 line
// 1 + 2 + 1 + 2 + 3 + 1 = 10 line feeds, and a last line without one.
const INNER_BODY = `--b2\r\n${INNER1_MIME}${INNER1}\r\n--b2\r\n${INNER2_MIME}${INNER2}\r\n--b2--`;
const PART2 = INNER_HEADER + INNER_BODY; // 7 + 10 line feeds + the last line: 18 lines
const PART3_MIME = 'Content-Type: application/octet-stream; name="a.bin"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: inline\r\n\r\n';
const PART3 = 'AAECAw==';
const ROOT_TEXT =
  `${PREAMBLE}--outer\r\n${PART1_MIME}${PART1}\r\n` +
  `--outer\r\n${PART2_MIME}${PART2}\r\n` +
  `--outer\r\n${PART3_MIME}${PART3}\r\n` +
  '--outer--\r\nepilogue\r\n';
const MESSAGE = ROOT_HEADER + ROOT_TEXT;

// A single-part message for ENVELOPE corners: no Date, an encoded Subject, an empty group, a
// Reply-To without a name, a UTF-8 display name (RFC 6532).
const SIMPLE_HEADER =
  'From: "Smith, John" <john@example.com>\r\n' +
  'To: undisclosed-recipients:;\r\n' +
  'Cc: Zoë <zoe@example.net>\r\n' +
  'Reply-To: <replies@example.com>\r\n' +
  'Subject: =?utf-8?q?caf=C3=A9?=\r\n' +
  'Message-ID: <x@y>\r\n' +
  'Content-Type: text/plain; charset=us-ascii\r\n' +
  '\r\n';
const SIMPLE_BODY = 'Just text.\r\nSecond line\r\n'; // 25 octets, 2 lines
const SIMPLE = SIMPLE_HEADER + SIMPLE_BODY;

const INTERNAL_DATE = new Date('1996-07-17T09:44:25Z');
const octets = (text: string) => Buffer.byteLength(text);

const ENVELOPE =
  '("Wed, 17 Jul 1996 02:44:25 -0700" "Quarterly report" ' +
  '(("Doe, Ann" NIL "ann" "example.com")) (("Doe, Ann" NIL "ann" "example.com")) (("Doe, Ann" NIL "ann" "example.com")) ' +
  '(("Bob" NIL "bob" "example.org")) ' +
  '((NIL NIL "Team" NIL)(NIL NIL "carl" "example.net")("Dee \\"D\\" Dee" NIL "dee" "example.net")(NIL NIL NIL NIL)) ' +
  'NIL "<m0@example.com>" "<m1@example.com>")';
const INNER_ENVELOPE =
  '(NIL "inner" (("Carl" NIL "carl" "example.net")) (("Carl" NIL "carl" "example.net")) (("Carl" NIL "carl" "example.net")) ' +
  '((NIL NIL "ann" "example.com")) NIL NIL NIL "<m2@example.net>")';
const SIMPLE_ENVELOPE =
  '(NIL "=?utf-8?q?caf=C3=A9?=" (("Smith, John" NIL "john" "example.com")) (("Smith, John" NIL "john" "example.com")) ' +
  '((NIL NIL "replies" "example.com")) ((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) ' +
  '(({4}\r\nZoë NIL "zoe" "example.net")) NIL NIL "<x@y>")';

// RFC 3501 §7.4.2, written out: text parts carry lines; message/rfc822 carries the enclosed
// envelope, body and lines; BODYSTRUCTURE adds MD5, disposition, language and location to
// single parts and parameters, disposition, language and location to multiparts.
function structure(extended: boolean): string {
  const x = (data: string) => (extended ? ` ${data}` : '');
  return (
    '(' +
    '(' +
    `("text" "plain" ("charset" "utf-8") NIL NIL "QUOTED-PRINTABLE" ${octets(PART11)} 2${x('NIL NIL NIL NIL')})` +
    `("text" "html" ("charset" "utf-8") "<h1@example.com>" "HTML version" "7BIT" ${octets(PART12)} 1` +
    `${x('"Q2hlY2sgSW50ZWdyaXR5IQ==" NIL ("en" "de") "http://example.com/x.html"')})` +
    ` "alternative"${x('("boundary" "inner") NIL NIL NIL')})` +
    `("message" "rfc822" NIL NIL NIL "7BIT" ${octets(PART2)} ${INNER_ENVELOPE} ` +
    '(' +
    `("text" "plain" NIL NIL NIL "7BIT" ${octets(INNER1)} 2${x('NIL NIL NIL NIL')})` +
    `("text" "plain" ("name" "note.txt") NIL NIL "7BIT" ${octets(INNER2)} 1${x('NIL ("attachment" ("filename" "note.txt")) NIL NIL')})` +
    ` "mixed"${x('("boundary" "b2") NIL NIL NIL')})` +
    ` 18${x('NIL ("attachment" ("filename" "fwd.eml")) NIL NIL')})` +
    `("application" "octet-stream" ("name" "a.bin") NIL NIL "BASE64" ${octets(PART3)}${x('NIL ("inline" NIL) NIL NIL')})` +
    ` "mixed"${x('("boundary" "outer") NIL "en" NIL')})`
  );
}
const SIMPLE_BODYSTRUCTURE = `("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" ${octets(SIMPLE_BODY)} 2 NIL NIL NIL NIL)`;
const SIMPLE_BODY_ITEM = `("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" ${octets(SIMPLE_BODY)} 2)`;

let mailboxes = 0;
/** A mailbox of its own holding MESSAGE (UID 1) and SIMPLE (UID 2), both unseen and no longer \Recent. */
async function freshMailbox(): Promise<{ address: string; accountId: number; folderId: number }> {
  const address = `user${++mailboxes}@fetch.test`;
  const accountId = await imap.mailbox(address);
  await mail.append(accountId, 'INBOX', Buffer.from(MESSAGE), { internalDate: INTERNAL_DATE });
  await mail.append(accountId, 'INBOX', Buffer.from(SIMPLE), { internalDate: INTERNAL_DATE });
  const folderId = (await mail.folders.get(accountId, 'INBOX')).id;
  await imap.claimRecent(accountId);
  return { address, accountId, folderId };
}

/** A logged-in raw client with INBOX selected (or examined), optionally after ENABLE CONDSTORE. */
async function connect(address: string, options: { examine?: boolean; condstore?: boolean } = {}): Promise<LineClient> {
  const client = await LineClient.connect(imap.port);
  t.teardown(() => client.close());
  await client.readLine();
  for (const line of [
    `l1 LOGIN ${address} "${PASSWORD}"`,
    ...(options.condstore ? ['l2 ENABLE CONDSTORE'] : []),
    `l3 ${options.examine ? 'EXAMINE' : 'SELECT'} INBOX`,
  ]) {
    const answer = await run(client, line);
    if (!answer.split('\r\n').at(-2)?.startsWith(`${line.slice(0, 2)} OK`)) throw new Error(`setup: ${answer}`);
  }
  return client;
}

/**
 * Sends a command and answers the exact bytes of the reply up to and including the tagged line,
 * as latin1 (lines joined with the CRLFs they were split at, so literals come back whole).
 */
async function run(client: LineClient, line: string): Promise<string> {
  const tag = line.split(' ')[0]!;
  client.send(`${line}\r\n`);
  const lines: string[] = [];
  for (;;) {
    const answer = await client.readLine(30_000);
    if (answer === null) break;
    lines.push(answer);
    if (answer.startsWith(`${tag} `)) break;
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** Text as the wire carries it (UTF-8), in run()'s latin1 reading. */
const wire = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
/** A literal as the server sends message data: `{n}` CRLF and the bytes (in run()'s reading). */
const lit = (text: string) => `{${octets(text)}}\r\n${wire(text)}`;

const shared = await freshMailbox();
const reader = await connect(shared.address, { examine: true });

t.test('every section kind answers exactly its bytes', async (t) => {
  const cases: [string, string, string][] = [
    ['', '', MESSAGE],
    ['HEADER', 'HEADER', ROOT_HEADER],
    ['TEXT', 'TEXT', ROOT_TEXT],
    ['1', '1', PART1],
    ['1.MIME', '1.MIME', PART1_MIME],
    ['1.1', '1.1', PART11],
    ['1.1.MIME', '1.1.MIME', PART11_MIME],
    ['1.2', '1.2', PART12],
    ['1.2.mime', '1.2.MIME', PART12_MIME],
    ['2', '2', PART2],
    ['2.MIME', '2.MIME', PART2_MIME],
    ['2.HEADER', '2.HEADER', INNER_HEADER],
    ['2.TEXT', '2.TEXT', INNER_BODY],
    ['2.1', '2.1', INNER1],
    ['2.1.MIME', '2.1.MIME', INNER1_MIME],
    ['2.2', '2.2', INNER2],
    ['2.2.MIME', '2.2.MIME', INNER2_MIME],
    ['2.HEADER.FIELDS (Subject)', '2.HEADER.FIELDS (SUBJECT)', 'Subject: inner\r\n\r\n'],
    ['3', '3', PART3],
    ['3.MIME', '3.MIME', PART3_MIME],
    // A part that is not multipart has a part 1: itself (RFC 3501 §6.4.5, as Dovecot).
    ['3.1', '3.1', PART3],
    ['2.1.1', '2.1.1', INNER1],
  ];
  for (const [i, [spec, label, expected]] of cases.entries()) {
    t.equal(
      await run(reader, `s${i} FETCH 1 (BODY.PEEK[${spec}])`),
      `* 1 FETCH (BODY[${label}] ${lit(expected)})\r\ns${i} OK FETCH completed\r\n`,
      `BODY[${spec}]`,
    );
  }
  t.equal(
    await run(reader, 's50 FETCH 2 (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[TEXT])'),
    `* 2 FETCH (BODY[1] ${lit(SIMPLE_BODY)} BODY[1.MIME] ${lit(SIMPLE_HEADER)} BODY[TEXT] ${lit(SIMPLE_BODY)})\r\ns50 OK FETCH completed\r\n`,
    'a single-part message: part 1 is its body, 1.MIME its header',
  );
});

t.test('parts that do not exist, and HEADER/TEXT of parts that are not messages, are empty strings', async (t) => {
  t.equal(
    await run(reader, 'e1 FETCH 1 (BODY.PEEK[4] BODY.PEEK[1.3] BODY.PEEK[3.2] BODY.PEEK[1.HEADER] BODY.PEEK[3.TEXT] BODY.PEEK[2.3.MIME] BODY.PEEK[9.1])'),
    '* 1 FETCH (BODY[4] "" BODY[1.3] "" BODY[3.2] "" BODY[1.HEADER] "" BODY[3.TEXT] "" BODY[2.3.MIME] "" BODY[9.1] "")\r\ne1 OK FETCH completed\r\n',
  );
  t.equal(
    await run(reader, 'e2 FETCH 2 (BODY.PEEK[2] BODY.PEEK[1.1.1] BODY.PEEK[1.HEADER.FIELDS (FROM)])'),
    '* 2 FETCH (BODY[2] "" BODY[1.1.1] "" BODY[1.HEADER.FIELDS (FROM)] "")\r\ne2 OK FETCH completed\r\n',
  );
});

t.test('partials: <start.length> answers BODY[section]<start>', async (t) => {
  t.equal(
    await run(reader, 'p1 FETCH 1 (BODY.PEEK[]<0.10> BODY.PEEK[TEXT]<5.10> BODY.PEEK[1.1]<6.1000> BODY.PEEK[2.HEADER]<0.4>)'),
    `* 1 FETCH (BODY[]<0> ${lit(MESSAGE.slice(0, 10))} BODY[TEXT]<5> ${lit(ROOT_TEXT.slice(5, 15))} ` +
      `BODY[1.1]<6> ${lit(PART11.slice(6))} BODY[2.HEADER]<0> ${lit('From')})\r\np1 OK FETCH completed\r\n`,
  );
  t.equal(
    await run(reader, `p2 FETCH 1 (BODY.PEEK[]<${octets(MESSAGE)}.10> BODY.PEEK[3]<8.1> BODY.PEEK[4]<0.5> BODY.PEEK[HEADER.FIELDS (SUBJECT)]<2.9>)`),
    `* 1 FETCH (BODY[]<${octets(MESSAGE)}> "" BODY[3]<8> "" BODY[4]<0> "" BODY[HEADER.FIELDS (SUBJECT)]<2> ${lit('bject: Qu')})\r\np2 OK FETCH completed\r\n`,
    'past the end: empty; HEADER.FIELDS: the partial is of the filtered header',
  );
  t.equal(
    await run(reader, `p3 FETCH 1 (BODY.PEEK[]<${octets(MESSAGE) - 4}.100>)`),
    `* 1 FETCH (BODY[]<${octets(MESSAGE) - 4}> ${lit(MESSAGE.slice(-4))})\r\np3 OK FETCH completed\r\n`,
    'a partial running past the end stops at the end',
  );
  t.equal(
    await run(reader, 'p4 FETCH 2 (BODY.PEEK[TEXT]<12>)'),
    `* 2 FETCH (BODY[TEXT]<12> ${lit(SIMPLE_BODY.slice(12))})\r\np4 OK FETCH completed\r\n`,
    '<start> without a length (not RFC 3501, sent by some clients): to the end',
  );
});

t.test('HEADER.FIELDS and HEADER.FIELDS.NOT keep folded fields whole, every occurrence, in header order', async (t) => {
  t.equal(
    await run(reader, 'h1 FETCH 1 (BODY.PEEK[HEADER.FIELDS (x-long "Subject" RECEIVED)])'),
    '* 1 FETCH (BODY[HEADER.FIELDS (X-LONG SUBJECT RECEIVED)] ' +
      lit('Subject: Quarterly\r\n report\r\nReceived: from a\r\n\tby b\r\nReceived: from c\r\nX-Long: first\r\n\tsecond\r\n\r\n') +
      ')\r\nh1 OK FETCH completed\r\n',
  );
  t.equal(
    await run(reader, 'h2 FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT (Subject X-Long Received Cc Content-Type)])'),
    '* 1 FETCH (BODY[HEADER.FIELDS.NOT (SUBJECT X-LONG RECEIVED CC CONTENT-TYPE)] ' +
      lit(
        'From: "Doe, Ann" <ann@example.com>\r\nTo: Bob <bob@example.org>\r\nDate: Wed, 17 Jul 1996 02:44:25 -0700\r\n' +
          'Message-ID: <m1@example.com>\r\nIn-Reply-To: <m0@example.com>\r\nMIME-Version: 1.0\r\nContent-Language: en\r\n\r\n',
      ) +
      ')\r\nh2 OK FETCH completed\r\n',
  );
  t.equal(
    await run(reader, 'h3 FETCH 1 (BODY.PEEK[HEADER.FIELDS (X-Absent)])'),
    `* 1 FETCH (BODY[HEADER.FIELDS (X-ABSENT)] ${lit('\r\n')})\r\nh3 OK FETCH completed\r\n`,
    'no field matches: the blank line alone',
  );
  t.equal(
    await run(reader, 'h4 FETCH 1 (BODY.PEEK[2.HEADER.FIELDS.NOT (From To Message-ID MIME-Version)])'),
    `* 1 FETCH (BODY[2.HEADER.FIELDS.NOT (FROM TO MESSAGE-ID MIME-VERSION)] ${lit('Subject: inner\r\nContent-Type: multipart/mixed; boundary=b2\r\n\r\n')})\r\nh4 OK FETCH completed\r\n`,
    'of an enclosed message',
  );
});

t.test('a header-list name may come as a literal, synchronising or LITERAL+', async (t) => {
  const plain = await run(reader, 'h0 FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])');
  t.match(plain, /^\* 1 FETCH \(BODY\[HEADER\.FIELDS \(SUBJECT FROM\)\] \{\d+\}\r\n/);
  reader.send('h1 FETCH 1 (BODY.PEEK[HEADER.FIELDS ({7}\r\n');
  t.match(await reader.readLine(), /^\+ /);
  reader.send('SUBJECT FROM)])\r\n');
  const lines: string[] = [];
  while (!lines.at(-1)?.startsWith('h1 ')) lines.push((await reader.readLine())!);
  t.equal(`${lines.join('\r\n')}\r\n`, plain.replace('h0 OK', 'h1 OK'));
  t.equal(await run(reader, 'h2 FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT {4+}\r\nFROM)])'), plain.replace('h0 OK', 'h2 OK'));
  t.equal(await run(reader, 'h3 FETCH 1 (BODY.PEEK[HEADER.FIELDS ({7+}\r\nSUBJECT {4+}\r\nFROM)])'), plain.replace('h0 OK', 'h3 OK'), 'two literals');
  t.equal(await run(reader, 'h4 FETCH 1 (BODY.PEEK[HEADER.FIELDS ({8+}\r\nSUB JECT)])'), "h4 BAD Invalid header field name 'SUB JECT'\r\n");
  t.equal(await run(reader, 'h5 FETCH 1 (BODY.PEEK[HEADER.FIELDS ({2+}\r\nX])])'), 'h5 BAD Invalid header field name in a literal\r\n');
  t.equal(await run(reader, 'h6 FETCH 1 (BODY.PEEK[HEADER.FIELDS {7+}\r\nSUBJECT])'), 'h6 BAD Invalid section [HEADER.FIELDS "SUBJECT"]\r\n');
  t.equal(await run(reader, 'h7 FETCH 1 BODY[HEADER {7+}\r\nSUBJECT'), 'h7 BAD Unbalanced bracket\r\n', 'no text after it closes the bracket');
});

t.test('ENVELOPE: groups, NIL, quoted and UTF-8 names, Sender and Reply-To defaulting to From', async (t) => {
  t.equal(await run(reader, 'v1 FETCH 1 ENVELOPE'), `* 1 FETCH (ENVELOPE ${ENVELOPE})\r\nv1 OK FETCH completed\r\n`);
  t.equal(await run(reader, 'v2 FETCH 2 (ENVELOPE)'), wire(`* 2 FETCH (ENVELOPE ${SIMPLE_ENVELOPE})\r\nv2 OK FETCH completed\r\n`));
});

t.test('BODYSTRUCTURE and BODY as RFC 3501 §7.4.2 describes them', async (t) => {
  t.equal(await run(reader, 'b1 FETCH 1 BODYSTRUCTURE'), `* 1 FETCH (BODYSTRUCTURE ${structure(true)})\r\nb1 OK FETCH completed\r\n`);
  t.equal(await run(reader, 'b2 FETCH 1 BODY'), `* 1 FETCH (BODY ${structure(false)})\r\nb2 OK FETCH completed\r\n`);
  t.equal(
    await run(reader, 'b3 FETCH 2 (BODYSTRUCTURE BODY)'),
    `* 2 FETCH (BODYSTRUCTURE ${SIMPLE_BODYSTRUCTURE} BODY ${SIMPLE_BODY_ITEM})\r\nb3 OK FETCH completed\r\n`,
  );
});

t.test('FLAGS, INTERNALDATE, RFC822.SIZE, UID, the macros and the RFC822 items', async (t) => {
  const date = 'INTERNALDATE "17-Jul-1996 09:44:25 +0000"';
  t.equal(
    await run(reader, 'm1 FETCH 1:2 (UID FLAGS INTERNALDATE RFC822.SIZE)'),
    `* 1 FETCH (UID 1 FLAGS () ${date} RFC822.SIZE ${octets(MESSAGE)})\r\n` +
      `* 2 FETCH (UID 2 FLAGS () ${date} RFC822.SIZE ${octets(SIMPLE)})\r\nm1 OK FETCH completed\r\n`,
  );
  t.equal(await run(reader, 'm2 FETCH 2 FAST'), `* 2 FETCH (FLAGS () ${date} RFC822.SIZE ${octets(SIMPLE)})\r\nm2 OK FETCH completed\r\n`);
  t.equal(
    await run(reader, 'm3 FETCH 2 all'),
    wire(`* 2 FETCH (FLAGS () ${date} RFC822.SIZE ${octets(SIMPLE)} ENVELOPE ${SIMPLE_ENVELOPE})\r\nm3 OK FETCH completed\r\n`),
  );
  t.equal(
    await run(reader, 'm4 FETCH 2 FULL'),
    wire(`* 2 FETCH (FLAGS () ${date} RFC822.SIZE ${octets(SIMPLE)} ENVELOPE ${SIMPLE_ENVELOPE} BODY ${SIMPLE_BODY_ITEM})\r\nm4 OK FETCH completed\r\n`),
  );
  t.equal(
    await run(reader, 'm5 UID FETCH 2 (RFC822.HEADER RFC822.TEXT RFC822)'),
    `* 2 FETCH (UID 2 RFC822.HEADER ${lit(SIMPLE_HEADER)} RFC822.TEXT ${lit(SIMPLE_BODY)} RFC822 ${lit(SIMPLE)})\r\nm5 OK FETCH completed\r\n`,
    'UID FETCH answers UID first; RFC822.* are named as asked',
  );
  t.equal(
    await run(reader, 'm6 UID FETCH 1 (FLAGS UID flags)'),
    '* 1 FETCH (UID 1 FLAGS ())\r\nm6 OK FETCH completed\r\n',
    'each item once',
  );
});

t.test('\\Seen: BODY[] sets it and tells the new FLAGS, BODY.PEEK[] and RFC822.HEADER do not', async (t) => {
  const { address } = await freshMailbox();
  const client = await connect(address);
  t.equal(
    await run(client, 'f1 FETCH 1 (BODY.PEEK[1.2] RFC822.HEADER)'),
    `* 1 FETCH (BODY[1.2] ${lit(PART12)} RFC822.HEADER ${lit(ROOT_HEADER)})\r\nf1 OK FETCH completed\r\n`,
  );
  t.equal(await run(client, 'f2 FETCH 1 FLAGS'), '* 1 FETCH (FLAGS ())\r\nf2 OK FETCH completed\r\n');
  t.equal(
    await run(client, 'f3 FETCH 1 (BODY[1.2])'),
    `* 1 FETCH (BODY[1.2] ${lit(PART12)} FLAGS (\\Seen))\r\nf3 OK FETCH completed\r\n`,
    'FLAGS follows when not asked for',
  );
  t.equal(
    await run(client, 'f4 FETCH 1 (BODY[1.2])'),
    `* 1 FETCH (BODY[1.2] ${lit(PART12)})\r\nf4 OK FETCH completed\r\n`,
    'already seen: nothing changed, nothing told',
  );
  t.equal(
    await run(client, 'f5 FETCH 2 (FLAGS RFC822.TEXT)'),
    `* 2 FETCH (FLAGS (\\Seen) RFC822.TEXT ${lit(SIMPLE_BODY)})\r\nf5 OK FETCH completed\r\n`,
    'FLAGS asked before the body already shows \\Seen',
  );
  t.equal(await run(client, 'f6 NOOP'), 'f6 OK NOOP completed\r\n', 'no repeated FETCH FLAGS afterwards');
  const other = await connect(address);
  t.equal(
    await run(other, 'f7 FETCH 1:2 FLAGS'),
    '* 1 FETCH (FLAGS (\\Seen))\r\n* 2 FETCH (FLAGS (\\Seen))\r\nf7 OK FETCH completed\r\n',
    'stored',
  );
});

t.test('\\Seen: RFC822 sets it; nothing is set in a folder opened with EXAMINE', async (t) => {
  const { address } = await freshMailbox();
  const examined = await connect(address, { examine: true });
  t.equal(
    await run(examined, 'x1 FETCH 2 (RFC822 BODY[TEXT])'),
    `* 2 FETCH (RFC822 ${lit(SIMPLE)} BODY[TEXT] ${lit(SIMPLE_BODY)})\r\nx1 OK FETCH completed\r\n`,
  );
  t.equal(await run(examined, 'x2 FETCH 2 FLAGS'), '* 2 FETCH (FLAGS ())\r\nx2 OK FETCH completed\r\n');
  const selected = await connect(address);
  t.equal(
    await run(selected, 'x3 FETCH 2 RFC822'),
    `* 2 FETCH (RFC822 ${lit(SIMPLE)} FLAGS (\\Seen))\r\nx3 OK FETCH completed\r\n`,
  );
});

t.test('CONDSTORE: MODSEQ, CHANGEDSINCE, and MODSEQ with an implicit \\Seen', async (t) => {
  const { address, accountId, folderId } = await freshMailbox();
  const modseqOf = async (uid: number) => (await mail.list(accountId, folderId)).find((m) => m.uid === uid)!.modseq;
  const client = await connect(address);
  const before = await modseqOf(1);
  t.equal(
    await run(client, 'c1 FETCH 1:2 (MODSEQ)'),
    `* 1 FETCH (MODSEQ (${before}))\r\n* 2 FETCH (MODSEQ (${await modseqOf(2)}))\r\nc1 OK FETCH completed\r\n`,
  );
  const since = Math.max(before, await modseqOf(2));
  // Another device flags message 2.
  await mail.changeFlags(accountId, folderId, [2], 'add', ['\\Flagged']);
  const flagged = await modseqOf(2);
  t.ok(flagged > since);
  t.equal(
    await run(client, `c2 FETCH 1:* (FLAGS) (CHANGEDSINCE ${since})`),
    `* 2 FETCH (FLAGS (\\Flagged) MODSEQ (${flagged}))\r\nc2 OK FETCH completed\r\n`,
    'only what changed, with MODSEQ; the flags are not told twice afterwards',
  );
  t.equal(
    await run(client, `c3 UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${flagged})`),
    'c3 OK FETCH completed\r\n',
  );
  t.equal(
    await run(client, `c4 UID FETCH 1:* (UID) (changedsince 0)`),
    `* 1 FETCH (UID 1 MODSEQ (${before}))\r\n* 2 FETCH (UID 2 MODSEQ (${flagged}))\r\nc4 OK FETCH completed\r\n`,
  );

  const enabled = await connect(address, { condstore: true });
  const response = await run(enabled, 'c5 FETCH 1 (BODY[1.2])');
  const seen = await modseqOf(1);
  t.ok(seen > flagged);
  t.equal(
    response,
    `* 1 FETCH (BODY[1.2] ${lit(PART12)} FLAGS (\\Seen) UID 1 MODSEQ (${seen}))\r\nc5 OK FETCH completed\r\n`,
    'with CONDSTORE enabled a FETCH that sets \\Seen tells UID and MODSEQ (RFC 7162 §3.2)',
  );
});

t.test('UID FETCH of UIDs that do not exist answers nothing for them; a sequence number beyond EXISTS is BAD', async (t) => {
  t.equal(await run(reader, 'u1 UID FETCH 999 (FLAGS)'), 'u1 OK FETCH completed\r\n');
  t.equal(await run(reader, 'u2 UID FETCH 2,7:9,999 (FLAGS)'), '* 2 FETCH (UID 2 FLAGS ())\r\nu2 OK FETCH completed\r\n');
  t.equal(await run(reader, 'u3 UID FETCH 2:* UID'), '* 2 FETCH (UID 2)\r\nu3 OK FETCH completed\r\n');
  t.match(await run(reader, 'u4 FETCH 3 (FLAGS)'), /^u4 BAD /);
  t.match(await run(reader, 'u5 FETCH 1:5 (FLAGS)'), /^u5 BAD /);
});

t.test('bad FETCH syntax is BAD and the session goes on', async (t) => {
  const client = await connect(shared.address, { examine: true });
  const bad = [
    'FETCH 1',
    'FETCH 1 ()',
    'FETCH 1 (FROBNICATE)',
    'FETCH 1 (ALL)',
    'FETCH 1 BODY.PEEK',
    'FETCH 1 (BODY[MIME])',
    'FETCH 1 (BODY[1.])',
    'FETCH 1 (BODY[0])',
    'FETCH 1 (BODY[1.FOO])',
    'FETCH 1 (BODY[HEADER.FIELDS])',
    'FETCH 1 (BODY[HEADER.FIELDS ()])',
    'FETCH 1 (BODY[]<0.0>)',
    'FETCH 1 (BODY[]<a.1>)',
    'FETCH 1 FLAGS (UNKNOWN 1)',
    'FETCH 1 FLAGS (CHANGEDSINCE x)',
    'FETCH 1 FLAGS CHANGEDSINCE',
    'FETCH x FLAGS',
    'FETCH 1 (FLAGS "UID")',
  ];
  for (const [i, command] of bad.entries()) t.match(await run(client, `k${i} ${command}`), new RegExp(`^k${i} BAD `), command);
  t.equal(await run(client, 'k99 FETCH 2 UID'), '* 2 FETCH (UID 2)\r\nk99 OK FETCH completed\r\n');
});

t.test('a message expunged by another session meanwhile is left out, with EXPUNGEISSUED', async (t) => {
  const { address, accountId, folderId } = await freshMailbox();
  const client = await connect(address);
  await mail.remove(accountId, folderId, [1]);
  t.equal(
    await run(client, 'g1 FETCH 1:2 (BODY.PEEK[TEXT])'),
    `* 2 FETCH (BODY[TEXT] ${lit(SIMPLE_BODY)})\r\ng1 OK [EXPUNGEISSUED] Some messages were expunged meanwhile; FETCH completed\r\n`,
    'and no EXPUNGE during FETCH by sequence number',
  );
  t.equal(
    await run(client, 'g2 FETCH 1 (BODY.PEEK[])'),
    'g2 OK [EXPUNGEISSUED] Some messages were expunged meanwhile; FETCH completed\r\n',
  );
  t.equal(
    await run(client, 'g3 FETCH 1:2 (FLAGS)'),
    '* 1 FETCH (FLAGS ())\r\n* 2 FETCH (FLAGS ())\r\ng3 OK FETCH completed\r\n',
    'what the session knows is still answered (RFC 2180 §4.1.1)',
  );
  t.equal(
    await run(client, 'g4 UID FETCH 1:* (UID)'),
    '* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 2)\r\n* 1 EXPUNGE\r\ng4 OK FETCH completed\r\n',
    'UID FETCH may tell the expunge once it is done',
  );
});

t.test('flags changed elsewhere are told once: in FETCH FLAGS, or by the sync when FLAGS was not asked for', async (t) => {
  const { address, accountId, folderId } = await freshMailbox();
  const client = await connect(address);
  await mail.changeFlags(accountId, folderId, [1], 'add', ['\\Flagged']);
  // RFC822.SIZE reads the stored summary, flags included; they must still reach the client.
  let told = await run(client, 'o1 FETCH 1 (RFC822.SIZE)');
  t.match(told, new RegExp(`^\\* 1 FETCH \\(RFC822\\.SIZE ${octets(MESSAGE)}\\)\r\n`));
  for (let i = 0; i < 40 && !told.includes('FLAGS (\\Flagged)'); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    told += await run(client, `o2${i} NOOP`);
  }
  t.match(told, /\* 1 FETCH \(FLAGS \(\\Flagged\) UID 1\)\r\n/, 'the sync tells the change');
});

t.test('odd bytes: NUL is sent as 0x80, bare LF line ends are kept, sizes agree', async (t) => {
  const address = 'odd@fetch.test';
  const accountId = await imap.mailbox(address);
  const raw = 'Subject: nul\nX-A: 1\n\nab\0cd\nlast';
  await mail.append(accountId, 'INBOX', Buffer.from(raw, 'latin1'));
  const client = await connect(address, { examine: true });
  const sent = raw.replace('\0', '\x80');
  t.equal(
    await run(client, 'n1 FETCH 1 (RFC822.SIZE BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[HEADER.FIELDS (X-A)] BODYSTRUCTURE)'),
    `* 1 FETCH (RFC822.SIZE ${raw.length} BODY[] {${raw.length}}\r\n${sent} BODY[HEADER] {21}\r\nSubject: nul\nX-A: 1\n\n ` +
      `BODY[TEXT] {10}\r\nab\x80cd\nlast BODY[HEADER.FIELDS (X-A)] {9}\r\nX-A: 1\n\r\n ` +
      'BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 10 2 NIL NIL NIL NIL))\r\nn1 OK FETCH completed\r\n',
  );
  t.equal(
    await run(client, 'n2 FETCH 1 (BODY.PEEK[]<4000000000.10> BODY.PEEK[TEXT]<0.4000000000>)'),
    '* 1 FETCH (BODY[]<4000000000> "" BODY[TEXT]<0> {10}\r\nab\x80cd\nlast)\r\nn2 OK FETCH completed\r\n',
    'offsets and lengths beyond any message',
  );
});

t.test('an empty folder: FETCH * is BAD, UID FETCH * answers nothing', async (t) => {
  const address = 'empty@fetch.test';
  await imap.mailbox(address);
  const client = await connect(address);
  t.match(await run(client, 'y1 FETCH * (FLAGS)'), /^y1 BAD /);
  t.match(await run(client, 'y2 FETCH 1:* (FLAGS)'), /^y2 BAD /);
  t.equal(await run(client, 'y3 UID FETCH * (FLAGS)'), 'y3 OK FETCH completed\r\n');
  t.equal(await run(client, 'y4 UID FETCH 1:* (FLAGS)'), 'y4 OK FETCH completed\r\n');
});

t.test('BODY.PEEK[] and BODY[] together still set \\Seen', async (t) => {
  const { address } = await freshMailbox();
  const client = await connect(address);
  t.equal(
    await run(client, 'w1 FETCH 2 (BODY.PEEK[TEXT] BODY[TEXT])'),
    `* 2 FETCH (BODY[TEXT] ${lit(SIMPLE_BODY)} FLAGS (\\Seen))\r\nw1 OK FETCH completed\r\n`,
  );
});

t.test('section parsing and header filtering, directly', async (t) => {
  const section = parseSection('1.2.header.fields.not ("X-A" b)');
  t.same(section, { path: [1, 2], text: 'HEADER.FIELDS.NOT', fields: ['X-A', 'B'] });
  t.equal(sectionName(section), '1.2.HEADER.FIELDS.NOT (X-A B)');
  t.same(parseSection(''), { path: [], text: null, fields: [] });
  t.same(parseSection('12.3'), { path: [12, 3], text: null, fields: [] });
  for (const spec of ['1.'.repeat(70) + '1', '1..2', '.1', '1.2.', 'HEADER.FIELDS (A', 'HEADER.FIELDS ("")', 'HEADER.FIELDS (A:B)', 'TEXT.1', 'MIME']) {
    t.throws(() => parseSection(spec), { name: 'ImapSyntaxError' }, spec);
  }
  const filter = (header: string, names: string[], exclude = false) =>
    filterHeaderFields(Buffer.from(header, 'latin1'), new Set(names), exclude).toString('latin1');
  t.equal(filter('Subject: x', ['SUBJECT']), 'Subject: x\r\n\r\n', 'a header without a line break gets one');
  t.equal(filter('Subject : x\r\n\r\n', ['SUBJECT']), 'Subject : x\r\n\r\n', 'white space before the colon');
  t.equal(filter('A: 1\r\n b\r\nB: 2\r\n\r\nA: body\r\n', ['A']), 'A: 1\r\n b\r\n\r\n', 'stops at the blank line');
  t.equal(filter('A: 1\r\nB: 2\r\n', ['A'], true), 'B: 2\r\n\r\n');
});

t.test('imapflow reads source, envelope, structure and parts as it parses them', async (t) => {
  const client = imap.imapflow(shared.address);
  await client.connect();
  t.teardown(() => client.close());
  await client.mailboxOpen('INBOX', { readOnly: true });
  const message = await client.fetchOne('1', {
    source: true,
    bodyStructure: true,
    envelope: true,
    internalDate: true,
    size: true,
    flags: true,
    headers: ['subject', 'x-long'],
    bodyParts: ['1.1', '2.HEADER', '3'],
  });
  t.ok(message);
  if (!message) return;
  t.equal(message.source?.toString('latin1'), MESSAGE);
  t.equal(message.size, octets(MESSAGE));
  t.same(message.internalDate, INTERNAL_DATE);
  t.equal(message.headers?.toString(), 'Subject: Quarterly\r\n report\r\nX-Long: first\r\n\tsecond\r\n\r\n');
  t.equal(message.bodyParts?.get('1.1')?.toString(), PART11);
  t.equal(message.bodyParts?.get('2.header')?.toString(), INNER_HEADER);
  t.equal(message.bodyParts?.get('3')?.toString(), PART3);
  t.match(message.envelope, {
    date: new Date('1996-07-17T09:44:25Z'),
    subject: 'Quarterly report',
    from: [{ name: 'Doe, Ann', address: 'ann@example.com' }],
    to: [{ name: 'Bob', address: 'bob@example.org' }],
    cc: [{ name: 'Team', address: '' }, { address: 'carl@example.net' }, { name: 'Dee "D" Dee', address: 'dee@example.net' }],
    inReplyTo: '<m0@example.com>',
    messageId: '<m1@example.com>',
  });
  t.match(message.bodyStructure, {
    type: 'multipart/mixed',
    parameters: { boundary: 'outer' },
    language: ['en'],
    childNodes: [
      {
        part: '1',
        type: 'multipart/alternative',
        parameters: { boundary: 'inner' },
        childNodes: [
          { part: '1.1', type: 'text/plain', parameters: { charset: 'utf-8' }, encoding: 'quoted-printable', size: octets(PART11), lineCount: 2 },
          {
            part: '1.2',
            type: 'text/html',
            id: '<h1@example.com>',
            description: 'HTML version',
            size: octets(PART12),
            lineCount: 1,
            md5: 'q2hly2sgsw50zwdyaxr5iq==',
            language: ['en', 'de'],
          },
        ],
      },
      {
        part: '2',
        type: 'message/rfc822',
        size: octets(PART2),
        lineCount: 18,
        disposition: 'attachment',
        dispositionParameters: { filename: 'fwd.eml' },
        envelope: { subject: 'inner', from: [{ name: 'Carl', address: 'carl@example.net' }], messageId: '<m2@example.net>' },
        childNodes: [
          {
            part: '2',
            type: 'multipart/mixed',
            childNodes: [
              { part: '2.1', type: 'text/plain', size: octets(INNER1), lineCount: 2 },
              { part: '2.2', type: 'text/plain', parameters: { name: 'note.txt' }, disposition: 'attachment' },
            ],
          },
        ],
      },
      { part: '3', type: 'application/octet-stream', encoding: 'base64', size: octets(PART3), disposition: 'inline' },
    ],
  });
  t.same(message.flags, new Set(), 'readOnly open: nothing marked \\Seen');
});

t.test("Python's imaplib reads the same bytes", async (t) => {
  const script = `
import base64, imaplib, json, sys
c = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
c.login(sys.argv[2], sys.argv[3])
c.select('INBOX', readonly=True)
def enc(data):
    out = []
    for item in data:
        if item is None:
            out.append(None)
        elif isinstance(item, tuple):
            out.append([base64.b64encode(item[0]).decode(), base64.b64encode(item[1]).decode()])
        else:
            out.append(base64.b64encode(item).decode())
    return out
result = {}
result['source'] = enc(c.fetch('1', '(BODY.PEEK[])')[1])
result['structure'] = enc(c.fetch('1', '(BODYSTRUCTURE)')[1])
result['parts'] = enc(c.fetch('1', '(BODY.PEEK[2.1] BODY.PEEK[1.1]<0.5>)')[1])
result['uid'] = enc(c.uid('FETCH', '1:*', '(RFC822.SIZE)')[1])
result['missing'] = enc(c.uid('FETCH', '999', '(FLAGS)')[1])
c.logout()
print(json.dumps(result))
`;
  const { stdout } = await promisify(execFile)('python3', ['-c', script, String(imap.port), shared.address, PASSWORD]);
  const result = JSON.parse(stdout) as Record<string, (string | [string, string] | null)[]>;
  const text = (value: string | [string, string] | null | undefined) => Buffer.from(value as string, 'base64').toString('latin1');
  const pair = (value: string | [string, string] | null | undefined) => (value as [string, string]).map((v) => Buffer.from(v, 'base64').toString('latin1'));
  t.same(pair(result.source![0]), [`1 (BODY[] {${octets(MESSAGE)}}`, MESSAGE]);
  t.equal(text(result.source![1]), ')');
  t.equal(text(result.structure![0]), `1 (BODYSTRUCTURE ${structure(true)})`);
  t.same(pair(result.parts![0]), [`1 (BODY[2.1] {${octets(INNER1)}}`, INNER1]);
  t.same(pair(result.parts![1]), [` BODY[1.1]<0> {5}`, PART11.slice(0, 5)]);
  t.same(result.uid!.map(text), [`1 (UID 1 RFC822.SIZE ${octets(MESSAGE)})`, `2 (UID 2 RFC822.SIZE ${octets(SIMPLE)})`]);
  t.same(result.missing, [null], 'no data for a missing UID');
});

t.test('FETCH 1:* (FLAGS UID) over 10,000 messages', async (t) => {
  const address = 'bulk@fetch.test';
  const accountId = await imap.mailbox(address);
  const folderId = (await mail.folders.get(accountId, 'INBOX')).id;
  await mail.append(accountId, 'INBOX', Buffer.from('Subject: one\r\n\r\nbody\r\n'));
  // Copies within the folder double it in a few transactions; appending one by one takes minutes.
  for (let count = 1; count < 10_000; ) {
    const uids = (await mail.list(accountId, folderId)).map((m) => m.uid).slice(0, 10_000 - count);
    await mail.copy(accountId, folderId, uids, 'INBOX');
    count += uids.length;
  }
  await imap.claimRecent(accountId);
  const client = await connect(address);
  const started = Date.now();
  const answer = (await run(client, 'z1 FETCH 1:* (FLAGS UID)')).split('\r\n').slice(0, -1);
  const elapsed = Date.now() - started;
  t.equal(answer.length, 10_001);
  t.equal(answer[0], '* 1 FETCH (FLAGS () UID 1)');
  t.equal(answer[9_999], '* 10000 FETCH (FLAGS () UID 10000)');
  t.equal(answer[10_000], 'z1 OK FETCH completed');
  t.ok(answer.slice(0, -1).every((line, i) => line === `* ${i + 1} FETCH (FLAGS () UID ${i + 1})`), 'every message, in order');
  t.ok(elapsed < 10_000, `took ${elapsed} ms`);
  const sizes = (await run(client, 'z2 FETCH 9999:* (RFC822.SIZE INTERNALDATE)')).split('\r\n');
  t.match(sizes[0], /^\* 9999 FETCH \(RFC822\.SIZE 22 INTERNALDATE "\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d \+0000"\)$/);
  t.equal(sizes[2], 'z2 OK FETCH completed');
});

t.test('BODY[] of a few hundred messages: imapflow reads every byte; a reader that stalls still gets all of it', async (t) => {
  const address = 'many@fetch.test';
  await imap.mailbox(address);
  const COUNT = 300;
  const bodies = new Map<number, string>();
  for (let i = 1; i <= COUNT; i++) {
    const raw = `Subject: message ${i}\r\nMessage-ID: <${i}@many.test>\r\n\r\n${`line ${i} of a long body, padded to make the message larger\r\n`.repeat(600 + i)}`;
    bodies.set(await imap.deliver(address, raw), raw);
  }
  const client = imap.imapflow(address);
  await client.connect();
  t.teardown(() => client.close());
  await client.mailboxOpen('INBOX', { readOnly: true });
  let seen = 0;
  let identical = 0;
  for await (const message of client.fetch('1:*', { uid: true, source: true })) {
    seen++;
    if (message.source?.toString('latin1') === bodies.get(message.uid)) identical++;
  }
  t.equal(seen, COUNT);
  t.equal(identical, COUNT, 'every source byte for byte');

  // A client that stops reading: the server waits for it (writeAll), and nothing is lost.
  const total = [...bodies.values()].reduce((sum, raw) => sum + octets(raw), 0);
  const socket = connectTcp({ host: '127.0.0.1', port: imap.port });
  t.teardown(() => socket.destroy());
  const chunks: Buffer[] = [];
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    received += chunk.length;
  });
  const waitFor = async (text: string) => {
    for (let i = 0; i < 600 && !Buffer.concat(chunks).includes(text); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  };
  await waitFor('* OK');
  socket.write(`s1 LOGIN ${address} "${PASSWORD}"\r\ns2 EXAMINE INBOX\r\n`);
  await waitFor('s2 OK');
  // Counts the server's message reads: they must stop while the client does not read.
  const read = mail.read;
  let reads = 0;
  mail.read = (...args) => {
    reads++;
    return read(...args);
  };
  t.teardown(() => {
    mail.read = read;
  });
  socket.pause();
  socket.write('s3 FETCH 1:* (BODY.PEEK[])\r\n');
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const readWhilePaused = reads;
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.equal(reads, readWhilePaused, `the server waits for the reader (${readWhilePaused} of ${COUNT} messages read)`);
  t.ok(readWhilePaused < COUNT, 'not every message was read ahead of the reader');
  socket.resume();
  await waitFor('s3 OK FETCH completed');
  const reply = Buffer.concat(chunks).subarray(Buffer.concat(chunks).indexOf('* 1 FETCH')).toString('latin1');
  t.match(reply, /s3 OK FETCH completed\r\n$/);
  let offset = 0;
  let messages = 0;
  let bytes = 0;
  for (;;) {
    const head = /^\* (\d+) FETCH \(BODY\[\] \{(\d+)\}\r\n/.exec(reply.slice(offset, offset + 100));
    if (!head) break;
    const size = Number(head[2]);
    const body = reply.slice(offset + head[0].length, offset + head[0].length + size);
    if (body === bodies.get(Number(head[1]))) messages++;
    bytes += size;
    offset += head[0].length + size + ')\r\n'.length;
  }
  t.equal(messages, COUNT, 'every message whole, in order');
  t.equal(bytes, total);
});
