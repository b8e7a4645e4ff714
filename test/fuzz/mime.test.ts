import fc from 'fast-check';
import t from 'tap';
import { indexMessage } from '../../src/core/mime/index.js';
import type { BodyPart } from '../../src/core/mime/types.js';
import { readEnvelope } from '../../src/core/mime/envelope.js';
import { parseStructure } from '../../src/core/mime/structure.js';

// Messages from a MIME-shaped grammar, then cut and flipped at random: the indexer must never
// throw (it is called straight, not through indexMessage's safety net), and every offset it
// keeps must point inside the message, children inside their parent.
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

const headerValue = fc.oneof(
  fc.constantFrom('=?utf-8?q?caf=C3=A9?=', '=?iso-8859-1?b?Y2Fm6Q==?=', '=?bogus?x?zz?=', '"Ann" <ann@x.test>, bob@y.test', 'group: a@b.test;', '<id@x>'),
  fc.string({ maxLength: 40, unit: 'binary' }).map((s) => s.replace(/[\r\n]/g, ' ')),
);
const header = fc.tuple(
  fc.constantFrom('From', 'To', 'Cc', 'Subject', 'Date', 'Message-ID', 'In-Reply-To', 'Content-Transfer-Encoding', 'Content-Disposition', 'X-Any'),
  headerValue,
  fc.boolean(),
).map(([name, value, folded]) => `${name}: ${folded ? value.replace(' ', '\r\n ') : value}\r\n`);
const contentType = fc.oneof(
  fc.constantFrom('text/plain; charset=utf-8', 'text/html', 'message/rfc822', 'application/octet-stream; name*0="a"; name*1="b"', 'image/png'),
  fc.constantFrom('multipart/mixed', 'multipart/alternative', 'multipart/digest').map((type) => `${type}; boundary="BOUND"`),
  fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, '')),
);

const part: fc.Arbitrary<string> = fc.letrec<{ part: string }>((tie) => ({
  part: fc
    .tuple(
      fc.array(header, { maxLength: 4 }),
      contentType,
      fc.oneof(fc.string({ maxLength: 60 }), fc.array(tie('part'), { maxLength: 3 }).map((parts) => parts.join('\r\n--BOUND\r\n'))),
      fc.constantFrom('\r\n', '\n', ''),
    )
    .map(
      ([headers, type, body, eol]) =>
        `${headers.join('')}Content-Type: ${type}\r\n${eol}${type.startsWith('multipart') ? `--BOUND\r\n${body}\r\n--BOUND--` : body}`,
    ),
})).part;

/** The message cut short and a few bytes overwritten: what a broken sender produces. */
const damaged = fc
  .tuple(part, fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }))
  .map(([text, cut, flips]) => {
    const bytes = Buffer.from(text, 'utf8');
    const kept = Buffer.from(bytes.subarray(0, bytes.length === 0 ? 0 : cut % (bytes.length + 1)));
    for (const [at, value] of flips) if (kept.length > 0) kept[at % kept.length] = value;
    return kept;
  });

function checkPart(p: BodyPart, within: { start: number; end: number }, path: string): void {
  if (!(within.start <= p.headerStart && p.headerStart <= p.bodyStart && p.bodyStart <= p.end && p.end <= within.end)) {
    throw new Error(`${path}: offsets ${p.headerStart}/${p.bodyStart}/${p.end} outside ${within.start}..${within.end}`);
  }
  if (p.size !== p.end - p.bodyStart) throw new Error(`${path}: size ${p.size} is not end - bodyStart`);
  if (!(p.lines >= 0)) throw new Error(`${path}: lines ${p.lines}`);
  p.parts?.forEach((child, i) => checkPart(child, { start: p.bodyStart, end: p.end }, `${path}.${i + 1}`));
  if (p.message) checkPart(p.message.body, { start: p.bodyStart, end: p.end }, `${path}.message`);
}

t.test('the structure parser is total and keeps its offsets inside the message', async (t) => {
  for (const [label, messages] of [
    ['well-formed', part.map((text) => Buffer.from(text, 'utf8'))],
    ['damaged', damaged],
    ['any bytes', fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes))],
  ] as const) {
    await fc.assert(
      fc.property(messages, (raw) => {
        const { root, fields } = parseStructure(raw);
        checkPart(root, { start: 0, end: raw.length }, 'root');
        readEnvelope(raw, fields);
      }),
      { numRuns: RUNS },
    );
    t.pass(label);
  }
});

t.test('the index survives a JSON round trip, as jsonb stores it', async (t) => {
  let checked = 0;
  await fc.assert(
    fc.property(fc.oneof(part.map((text) => Buffer.from(text, 'utf8')), damaged), (raw) => {
      const index = indexMessage(raw);
      // Postgres refuses NUL in text and jsonb, and lone surrogates in jsonb.
      const json = JSON.stringify({ ...index, sentDate: null }, (_key, value) => {
        if (typeof value === 'string' && /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(value)) {
          throw new Error(`not storable: ${JSON.stringify(value)}`);
        }
        return value;
      });
      if (JSON.stringify(JSON.parse(json).structure) !== JSON.stringify(index.structure)) throw new Error('structure changed in JSON');
      checked += 1;
    }),
    { numRuns: RUNS },
  );
  t.equal(checked, RUNS);
});
