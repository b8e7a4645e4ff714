import t, { type Test } from 'tap';
import { normalizeAddress, normalizeDomain, unicodeDomain } from '../../src/core/addresses.js';
import { InvalidError } from '../../src/core/errors.js';
import { decodeCursor, encodeCursor, toPage } from '../../src/core/pagination.js';

function refusal(t: Test, fn: () => unknown, code: string, label: string): void {
  try {
    const value = fn();
    t.fail(`${label}: accepted as ${JSON.stringify(value)}`);
  } catch (error) {
    t.type(error, InvalidError, label);
    t.equal((error as InvalidError).code, code, `${label}: ${code}`);
  }
}

const label = (char: string, length: number) => char.repeat(length);

t.test('normalizeDomain: one lowercase ASCII spelling', async (t) => {
  const cases: [string, string][] = [
    ['example.com', 'example.com'],
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'],
    ['  example.com  ', 'example.com'],
    ['mail.sub.example.co.uk', 'mail.sub.example.co.uk'],
    ['a-b.example', 'a-b.example'],
    ['123.example', '123.example'],
    ['bücher.example', 'xn--bcher-kva.example'],
    ['Bücher.Example', 'xn--bcher-kva.example'],
    ['XN--BCHER-KVA.EXAMPLE', 'xn--bcher-kva.example'],
    ['münchen.de', 'xn--mnchen-3ya.de'],
    ['例え.テスト', 'xn--r8jz45g.xn--zckzah'],
    ['ＥＸＡＭＰＬＥ．ｃｏｍ', 'example.com'],
    [`${label('a', 63)}.com`, `${label('a', 63)}.com`],
  ];
  for (const [input, expected] of cases) t.equal(normalizeDomain(input), expected, JSON.stringify(input));
  t.equal(unicodeDomain('xn--bcher-kva.example'), 'bücher.example');
});

t.test('normalizeDomain: 253 characters at most', async (t) => {
  const longest = [label('a', 63), label('b', 63), label('c', 63), label('d', 61)].join('.');
  t.equal(longest.length, 253);
  t.equal(normalizeDomain(longest), longest);
  t.equal(normalizeDomain(`${longest}.`), longest, 'the root dot does not count');
  const tooLong = [label('a', 63), label('b', 63), label('c', 63), label('d', 62)].join('.');
  refusal(t, () => normalizeDomain(tooLong), 'invalid_domain', '254 characters');
  refusal(t, () => normalizeDomain(Array(100).fill('ab').join('.')), 'invalid_domain', '299 characters');
});

t.test('normalizeDomain: refuses what is not a domain name', async (t) => {
  const refused: [string, string][] = [
    ['empty', ''],
    ['blank', '   '],
    ['a dot', '.'],
    ['one label', 'localhost'],
    ['one label with the root dot', 'localhost.'],
    ['a numeric TLD', 'example.123'],
    ['an IPv4 address', '192.0.2.1'],
    ['an IPv4 shorthand', '0x7f.1'],
    ['an IPv6 literal', '[::1]'],
    ['a 64-character label', `${label('a', 64)}.com`],
    ['a leading hyphen', '-example.com'],
    ['a trailing hyphen', 'example-.com'],
    ['a hyphen-only label', 'mail.-.com'],
    ['a leading dot', '.example.com'],
    ['two dots', 'example..com'],
    ['two trailing dots', 'example.com..'],
    ['an underscore', '_dmarc.example.com'],
    ['a space', 'exa mple.com'],
    ['an @', 'ann@example.com'],
    // domainToASCII parses a URL host and would cut or clean these into example.com.
    ['a path', 'example.com/path'],
    ['a query', 'example.com?x'],
    ['a fragment', 'example.com#x'],
    ['a backslash', 'example.com\\x'],
    ['a tab inside', 'ex\tample.com'],
    ['a line break inside', 'ex\nample.com'],
    ['a port', 'example.com:25'],
    ['invalid punycode', 'xn--a.com'],
    ['percent-encoding', 'ex%61mple.com'],
    ['a percent-encoded dot', 'example%2ecom'],
  ];
  for (const [what, input] of refused) refusal(t, () => normalizeDomain(input), 'invalid_domain', what);
  try {
    normalizeDomain('localhost');
  } catch (error) {
    t.same((error as InvalidError).details, { field: 'domain' });
  }
});

t.test('normalizeAddress: case-insensitive, with an ASCII domain', async (t) => {
  t.same(normalizeAddress('Ann@Example.COM'), { address: 'ann@example.com', localPart: 'ann', domain: 'example.com' });
  t.same(normalizeAddress('ann@bücher.example'), {
    address: 'ann@xn--bcher-kva.example',
    localPart: 'ann',
    domain: 'xn--bcher-kva.example',
  });
  t.equal(normalizeAddress('ANN.SMITH@example.com').address, 'ann.smith@example.com');
  t.equal(normalizeAddress('ann@example.com.').address, 'ann@example.com', 'the root dot is dropped');
  for (const local of ['ann+tag', "o'brien", 'first.last', 'a', 'x_y', 'x-y', 'a=b', '#!$%&*/?^`{|}~', '1234']) {
    t.equal(normalizeAddress(`${local}@example.com`).localPart, local, `'${local}' is a valid local part`);
  }
});

t.test('normalizeAddress: dot-atom rules and lengths', async (t) => {
  const refused: [string, string][] = [
    ['empty', ''],
    ['no @', 'ann.example.com'],
    ['no local part', '@example.com'],
    ['no domain', 'ann@'],
    ['a leading dot', '.ann@example.com'],
    ['a trailing dot', 'ann.@example.com'],
    ['two dots', 'ann..smith@example.com'],
    ['only a dot', '.@example.com'],
    ['a space', 'ann smith@example.com'],
    ['two @', 'ann@smith@example.com'],
    ['a quoted local part', '"ann smith"@example.com'],
    ['parentheses', 'ann(comment)@example.com'],
    ['a comma', 'ann,bob@example.com'],
    ['angle brackets', '<ann@example.com>'],
    ['a non-ASCII local part', 'jörg@example.com'],
    ['a control character', 'ann\n@example.com'],
    ['a single-label domain', 'ann@localhost'],
    ['an IP literal', 'ann@[192.0.2.1]'],
    ['a bad domain', 'ann@-example.com'],
    ['a percent-encoded domain', 'ann@ex%61mple.com'],
    ['a path after the domain', 'ann@example.com/x'],
    ['a tab in the domain', 'ann@exam\tple.com'],
  ];
  for (const [what, input] of refused) refusal(t, () => normalizeAddress(input), 'invalid_address', what);
  t.equal(normalizeAddress(' Ann@Example.com\t').address, 'ann@example.com', 'white space around a pasted address is ignored');

  t.equal(normalizeAddress(`${label('a', 64)}@example.com`).localPart, label('a', 64), '64-character local part');
  refusal(t, () => normalizeAddress(`${label('a', 65)}@example.com`), 'invalid_address', '65-character local part');

  const domain189 = [label('b', 63), label('c', 63), label('d', 61)].join('.');
  const longest = `${label('a', 64)}@${domain189}`;
  t.equal(longest.length, 254);
  t.equal(normalizeAddress(longest).address, longest, '254 characters');
  const domain190 = [label('b', 63), label('c', 63), label('d', 62)].join('.');
  refusal(t, () => normalizeAddress(`${label('a', 64)}@${domain190}`), 'invalid_address', '255 characters');
  try {
    normalizeAddress('ann');
  } catch (error) {
    t.same((error as InvalidError).details, { field: 'address' });
  }
});

t.test('cursors: encode/decode round trip', async (t) => {
  for (const position of ['ann@example.com', '', 'ü "quoted" \n', 0, 1, 42, Number.MAX_SAFE_INTEGER]) {
    const cursor = encodeCursor(position);
    t.match(cursor, /^[A-Za-z0-9_-]+$/, `${JSON.stringify(position)}: URL-safe`);
    t.equal(decodeCursor(cursor, typeof position as 'string' | 'number'), position, JSON.stringify(position));
  }
});

t.test('cursors: garbage and the wrong type are invalid_cursor', async (t) => {
  const raw = (json: string) => Buffer.from(json).toString('base64url');
  const cases: [string, string, 'string' | 'number'][] = [
    ['empty', '', 'string'],
    ['not base64', '!!!!', 'string'],
    ['base64 of garbage', raw('garbage'), 'string'],
    ['JSON null', raw('null'), 'string'],
    ['a JSON array', raw('[1]'), 'number'],
    ['no `after`', raw('{"before":"x"}'), 'string'],
    ['a number where a string is expected', encodeCursor(42), 'string'],
    ['a string where a number is expected', encodeCursor('ann@example.com'), 'number'],
    ['a numeric string where a number is expected', encodeCursor('42'), 'number'],
    ['null after', raw('{"after":null}'), 'number'],
    ['an object after', raw('{"after":{"id":1}}'), 'string'],
    // Row ids are whole numbers; anything else would fail in SQL instead of here.
    ['a fraction', raw('{"after":1.5}'), 'number'],
    ['a number beyond double range', raw('{"after":1e400}'), 'number'],
    ['a number beyond the safe integers', raw('{"after":9007199254740993}'), 'number'],
  ];
  for (const [what, cursor, type] of cases) refusal(t, () => decodeCursor(cursor, type), 'invalid_cursor', what);
});

t.test('toPage: the extra row only says there is a next page', async (t) => {
  const rows = [{ id: 3 }, { id: 2 }, { id: 1 }];
  const full = toPage(rows, 2, (row) => row.id, (row) => `#${row.id}`);
  t.same(full.items, ['#3', '#2']);
  t.equal(decodeCursor(full.nextCursor!, 'number'), 2, 'the cursor points after the last item shown');
  t.same(toPage(rows, 3, (row) => row.id, (row) => row.id), { items: [3, 2, 1], nextCursor: null });
  t.same(toPage([], 10, (row: { id: number }) => row.id, (row) => row), { items: [], nextCursor: null });
});
