import t, { type Test } from 'tap';
import type { Actor } from '../../src/core/actor.js';
import type { SearchKey } from '../../src/core/mailstore/search.js';
import { createServices } from '../../src/core/services.js';
import { freshDatabase } from '../helpers/database.js';

const ACTOR: Actor = { id: 'test', name: 'test', domains: null };

const database = await freshDatabase(t);
const services = createServices(database.db, {
  passwordPolicy: { minLength: 10 },
  bootstrapToken: null,
  maxMessageSize: 1024 * 1024,
});
const mail = services.mail;
await services.domains.create({ name: 'search.test' }, ACTOR);

async function newMailbox(address: string) {
  await services.mailboxes.create({ address, password: 'correct horse battery staple' }, ACTOR);
  const { id } = await services.mailboxes.find(address, ACTOR);
  const folders = new Map((await mail.folders.list(id)).map((f) => [f.name, f.id]));
  return { id, inbox: folders.get('INBOX')!, archive: folders.get('Archive')! };
}

const lines = (...parts: string[]) => Buffer.from(parts.join('\r\n'));

// UID 1: the subject says "Quarterly"; the body does not.
const report = lines(
  'From: Alice Example <alice@example.com>',
  'To: bob@search.test',
  'Subject: Quarterly report',
  'Date: Sat, 10 Jan 2026 09:00:00 +0000',
  'Message-ID: <report@example.com>',
  '',
  'The numbers are up.',
  '',
);
// UID 2: "quarterly" only in the body; a header field the others lack; the largest.
const lunch = lines(
  'From: Carol <carol@example.org>',
  'To: bob@search.test, dan@search.test',
  'Subject: Lunch plans',
  'Date: Sun, 1 Feb 2026 08:00:00 +0000',
  'X-Priority: 1',
  '',
  'Before the quarterly meeting, shall we eat?',
  'z'.repeat(2000),
  '',
);
// UID 3: an encoded-word subject, no Date header at all.
const cafe = lines(
  'From: Dave <dave@example.net>',
  'To: bob@search.test',
  'Subject: =?UTF-8?Q?Caf=C3=A9_meeting?=',
  '',
  'See you there.',
  '',
);
// UID 4: 8-bit UTF-8 body, a multipart with the word only in the second part's body.
const multipart = lines(
  'From: erin@example.com',
  'Subject: Attachments',
  'Date: Thu, 5 Mar 2026 10:00:00 +0000',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="sep"',
  '',
  '--sep',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: 8bit',
  '',
  'A naïve café.',
  '--sep',
  'Content-Type: text/plain',
  '',
  'Zebra crossing.',
  '--sep--',
  '',
);

const box = await newMailbox('searcher@search.test');
const r1 = await mail.append(box.id, 'INBOX', report, { flags: ['\\Seen'], internalDate: new Date('2026-01-10T12:00:00Z') });
const r2 = await mail.append(box.id, 'INBOX', lunch, { flags: ['\\Flagged', 'Work'], internalDate: new Date('2026-02-01T23:30:00Z') });
const r3 = await mail.append(box.id, 'INBOX', cafe, { internalDate: new Date('2026-03-05T00:00:00Z') });
await mail.append(box.id, 'INBOX', multipart, { flags: ['\\Seen', '\\Answered'], internalDate: new Date('2026-03-05T23:59:59Z') });
// The same words elsewhere must never show up: another folder, another mailbox.
await mail.append(box.id, 'Archive', report, { flags: ['\\Seen'] });
const other = await newMailbox('other@search.test');
await mail.append(other.id, 'INBOX', lunch, { flags: ['\\Flagged'] });

const search = (key: SearchKey) => mail.search(box.id, box.inbox, key);

async function cases(t: Test, list: [string, SearchKey, number[]][]) {
  for (const [label, key, expected] of list) t.strictSame(await search(key), expected, label);
}

t.test('uids: single, ranges either way round, up to the highest (*), several', async (t) => {
  await cases(t, [
    ['all', { all: true }, [1, 2, 3, 4]],
    ['2', { uids: [{ from: 2, to: 2 }] }, [2]],
    ['1:3', { uids: [{ from: 1, to: 3 }] }, [1, 2, 3]],
    ['3:1 is 1:3', { uids: [{ from: 3, to: 1 }] }, [1, 2, 3]],
    ['2:*', { uids: [{ from: 2, to: null }] }, [2, 3, 4]],
    ['1,4', { uids: [{ from: 1, to: 1 }, { from: 4, to: 4 }] }, [1, 4]],
    ['5:7 matches nothing', { uids: [{ from: 5, to: 7 }] }, []],
    ['no ranges', { uids: [] }, []],
    // RFC 3501 §9 (seq-range): n:* with n above the highest UID is highest:n, so it holds the highest.
    ['100:* is the highest message', { uids: [{ from: 100, to: null }] }, [4]],
  ]);
});

t.test('flags set and unset, system flags in any case, keywords', async (t) => {
  await cases(t, [
    ['SEEN', { flag: '\\Seen', set: true }, [1, 4]],
    ['seen in lower case', { flag: '\\seen', set: true }, [1, 4]],
    ['UNSEEN', { flag: '\\Seen', set: false }, [2, 3]],
    ['FLAGGED', { flag: '\\FLAGGED', set: true }, [2]],
    ['ANSWERED', { flag: '\\Answered', set: true }, [4]],
    ['UNDRAFT', { flag: '\\Draft', set: false }, [1, 2, 3, 4]],
    ['KEYWORD Work', { flag: 'Work', set: true }, [2]],
    ['KEYWORD work (keywords are case-sensitive)', { flag: 'work', set: true }, []],
    ['UNKEYWORD Work', { flag: 'Work', set: false }, [1, 3, 4]],
  ]);
  await t.rejects(search({ flag: '\\Recent', set: true }), { code: 'invalid_flag' });
  await t.rejects(search({ flag: 'a b', set: true }), { code: 'invalid_flag' });
});

t.test('header fields: any field, case-insensitive names and values, decoded, empty string', async (t) => {
  await cases(t, [
    ['SUBJECT report', { header: 'subject', contains: 'report' }, [1]],
    ['SUBJECT QUARTERLY (case-insensitive)', { header: 'Subject', contains: 'QUARTERLY' }, [1]],
    ['SUBJECT from an encoded word, decoded', { header: 'SUBJECT', contains: 'Café meeting' }, [3]],
    ['FROM alice', { header: 'from', contains: 'ALICE' }, [1]],
    ['FROM by domain', { header: 'From', contains: 'example.org' }, [2]],
    ['FROM by display name', { header: 'from', contains: 'carol' }, [2]],
    ['TO second address', { header: 'to', contains: 'dan@' }, [2]],
    ['HEADER X-Priority 1', { header: 'X-Priority', contains: '1' }, [2]],
    ['HEADER X-Priority "" (has the field)', { header: 'x-priority', contains: '' }, [2]],
    ['HEADER To "" (has the field)', { header: 'To', contains: '' }, [1, 2, 3]],
    ['HEADER Date ""', { header: 'date', contains: '' }, [1, 2, 4]],
    ['HEADER X-Missing ""', { header: 'X-Missing', contains: '' }, []],
    ['no match', { header: 'subject', contains: 'zebra' }, []],
    ['a field name is not its value', { header: 'subject', contains: 'Subject' }, []],
  ]);
});

t.test('body looks past the header; text looks at both', async (t) => {
  await cases(t, [
    ['BODY quarterly: not the header-only match', { body: 'quarterly' }, [2]],
    ['BODY QUARTERLY case-insensitive', { body: 'QUARTERLY' }, [2]],
    ['TEXT quarterly: header and body', { text: 'quarterly' }, [1, 2]],
    ['BODY Alice: only in a header', { body: 'alice' }, []],
    ['TEXT alice', { text: 'alice' }, [1]],
    ['BODY in a second MIME part', { body: 'zebra crossing' }, [4]],
    ['BODY 8-bit UTF-8', { body: 'naïve café' }, [4]],
    ['BODY 8-bit, ASCII letters folded', { body: 'NAïVE' }, [4]],
    ['TEXT multipart header', { text: 'boundary="sep"' }, [4]],
    ['BODY boundary line', { body: '--sep--' }, [4]],
    ['BODY nowhere', { body: 'elephant' }, []],
    ['BODY with LIKE wildcards is literal', { body: '%' }, []],
    ['BODY with a backslash', { body: '\\' }, []],
  ]);
});

t.test('dates: internal and sent, before/on/since, by day in UTC', async (t) => {
  await cases(t, [
    ['BEFORE 2026-02-01', { internalDate: 'before', day: '2026-02-01' }, [1]],
    ['ON 2026-02-01 (23:30 is still that day)', { internalDate: 'on', day: '2026-02-01' }, [2]],
    ['SINCE 2026-02-01', { internalDate: 'since', day: '2026-02-01' }, [2, 3, 4]],
    ['ON 2026-03-05, both ends of the day', { internalDate: 'on', day: '2026-03-05' }, [3, 4]],
    ['BEFORE 2026-01-10 (not the day itself)', { internalDate: 'before', day: '2026-01-10' }, []],
    ['SINCE 2026-03-06', { internalDate: 'since', day: '2026-03-06' }, []],
    ['SENTON 2026-01-10', { sentDate: 'on', day: '2026-01-10' }, [1]],
    ['SENTBEFORE 2026-02-01', { sentDate: 'before', day: '2026-02-01' }, [1]],
    ['SENTSINCE 2026-02-01 (no Date header: the internal date)', { sentDate: 'since', day: '2026-02-01' }, [2, 3, 4]],
    ['SENTON 2026-03-05', { sentDate: 'on', day: '2026-03-05' }, [3, 4]],
  ]);
});

t.test('sizes: LARGER and SMALLER are strict', async (t) => {
  const sizes = (await mail.list(box.id, box.inbox)).map((m) => m.size);
  t.strictSame(sizes, [report.length, lunch.length, cafe.length, multipart.length]);
  const uidsWhere = (test: (size: number) => boolean) => sizes.flatMap((size, i) => (test(size) ? [i + 1] : []));
  await cases(t, [
    ['LARGER 1000', { larger: 1000 }, [2]],
    ['SMALLER 1000', { smaller: 1000 }, [1, 3, 4]],
    ['LARGER its own size excludes it', { larger: lunch.length }, []],
    ['LARGER one less includes it', { larger: lunch.length - 1 }, [2]],
    ['SMALLER its own size excludes it', { smaller: cafe.length }, uidsWhere((size) => size < cafe.length)],
    ['SMALLER one more includes it', { smaller: cafe.length + 1 }, uidsWhere((size) => size <= cafe.length)],
  ]);
  t.ok((await search({ smaller: cafe.length + 1 })).includes(3));
  t.notOk((await search({ smaller: cafe.length })).includes(3));
});

t.test('MODSEQ: at least the given value', async (t) => {
  await cases(t, [['MODSEQ r1', { modseqAtLeast: r1.modseq }, [1, 2, 3, 4]]]);
  t.strictSame(await search({ modseqAtLeast: r3.modseq }), [3, 4]);
  const { changed } = await mail.changeFlags(box.id, box.inbox, [r2.uid], 'add', ['Later']);
  const now = changed[0]!.modseq;
  t.strictSame(await search({ modseqAtLeast: now }), [2], 'only the message changed since');
  t.strictSame(await search({ modseqAtLeast: now + 1 }), []);
  await mail.changeFlags(box.id, box.inbox, [r2.uid], 'remove', ['Later']);
});

t.test('not, or, and combine', async (t) => {
  await cases(t, [
    ['NOT SEEN', { not: { flag: '\\Seen', set: true } }, [2, 3]],
    ['NOT NOT SEEN', { not: { not: { flag: '\\Seen', set: true } } }, [1, 4]],
    ['NOT HEADER X-Priority ""', { not: { header: 'x-priority', contains: '' } }, [1, 3, 4]],
    ['NOT BODY quarterly', { not: { body: 'quarterly' } }, [1, 3, 4]],
    ['NOT SENTON', { not: { sentDate: 'on', day: '2026-03-05' } }, [1, 2]],
    ['OR FLAGGED FROM dave', { or: [{ flag: '\\Flagged', set: true }, { header: 'from', contains: 'dave' }] }, [2, 3]],
    [
      'OR nested',
      { or: [{ uids: [{ from: 1, to: 1 }] }, { or: [{ larger: 1000 }, { body: 'zebra' }] }] },
      [1, 2, 4],
    ],
    ['AND TEXT quarterly UNSEEN', { and: [{ text: 'quarterly' }, { flag: '\\Seen', set: false }] }, [2]],
    ['AND nothing is ALL', { and: [] }, [1, 2, 3, 4]],
    [
      'AND with NOT OR',
      { and: [{ internalDate: 'since', day: '2026-02-01' }, { not: { or: [{ flag: '\\Flagged', set: true }, { flag: '\\Answered', set: true }] } }] },
      [3],
    ],
    ['NOT ALL', { not: { all: true } }, []],
  ]);
});

t.test('search stays in its folder and mailbox', async (t) => {
  t.strictSame(await mail.search(box.id, box.archive, { text: 'quarterly' }), [1]);
  t.strictSame(await mail.search(other.id, other.inbox, { flag: '\\Flagged', set: true }), [1]);
  t.strictSame(await mail.search(other.id, other.inbox, { header: 'subject', contains: 'report' }), []);
  t.strictSame(await mail.search(box.id, other.inbox, { all: true }), [], 'another mailbox’s folder id finds nothing');
});
