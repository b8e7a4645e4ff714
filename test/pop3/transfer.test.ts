import t from 'tap';
import { encodeMessage } from '../../src/pop3/transfer.js';

const encode = (raw: string, lines?: number) => Buffer.concat([...encodeMessage(Buffer.from(raw, 'latin1'), lines)]).toString('latin1');

t.test('line endings become CRLF, leading dots are stuffed, the answer ends with a dot line', async (t) => {
  t.equal(encode('a\nb\r\n.c\n'), 'a\r\nb\r\n..c\r\n.\r\n');
  t.equal(encode('no final newline'), 'no final newline\r\n.\r\n');
  t.equal(encode(''), '.\r\n');
  t.equal(encode('.\r\n'), '..\r\n.\r\n');
  t.equal(encode('bare\rcarriage return\n'), 'bare\rcarriage return\r\n.\r\n', 'a lone CR is data, not a line end');
});

t.test('TOP: the header, the blank line and n body lines', async (t) => {
  const raw = 'A: 1\r\nB: 2\r\n\r\nline 1\r\n.line 2\r\nline 3\r\n';
  t.equal(encode(raw, 0), 'A: 1\r\nB: 2\r\n\r\n.\r\n');
  t.equal(encode(raw, 2), 'A: 1\r\nB: 2\r\n\r\nline 1\r\n..line 2\r\n.\r\n');
  t.equal(encode(raw, 99), encode(raw));
  t.equal(encode('A: header only\r\n', 3), 'A: header only\r\n.\r\n');
});

t.test('a 25 MB message is sent in pieces of about 64 KiB, never copied whole', async (t) => {
  const line = `${'x'.repeat(998)}\r\n`;
  const raw = Buffer.from(`Subject: big\r\n\r\n${line.repeat(25 * 1024)}`);
  let total = 0;
  let pieces = 0;
  let largest = 0;
  for (const piece of encodeMessage(raw)) {
    pieces += 1;
    total += piece.length;
    largest = Math.max(largest, piece.length);
  }
  t.equal(total, raw.length + 3, 'every byte, plus the terminating line');
  t.ok(pieces > 300, `${pieces} pieces`);
  t.ok(largest < 70 * 1024, `the largest piece is ${largest} bytes`);
});
