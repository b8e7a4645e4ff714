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

t.test('a message already in wire form goes out as stored, without a copy', async (t) => {
  const raw = Buffer.from('Subject: plain\r\n\r\nline 1\r\nline. 2\r\n');
  const pieces = [...encodeMessage(raw)];
  t.equal(pieces[0]!.buffer, raw.buffer, 'the stored bytes themselves');
  t.equal(Buffer.concat(pieces).toString('latin1'), `${raw.toString('latin1')}.\r\n`);
  t.equal(encode('A: 1\r\n\r\nno final line end'), 'A: 1\r\n\r\nno final line end\r\n.\r\n');
  t.equal(encode('A: 1\r\n\r\nends in CR\r'), 'A: 1\r\n\r\nends in CR\r\n.\r\n', 'a last CR without LF is dropped, as line by line');
  t.equal(encode('A: 1\r\n\r\n.dot\r\n'), 'A: 1\r\n\r\n..dot\r\n.\r\n');
  t.equal(encode('.A: 1\r\n'), '..A: 1\r\n.\r\n');
  t.equal(encode('A: 1\r\nbare\n'), 'A: 1\r\nbare\r\n.\r\n');
});

t.test('any bytes: the same as a plain line-by-line encoding', async (t) => {
  const reference = (raw: string) => {
    const lines = raw.split('\n');
    if (raw === '' || raw.endsWith('\n')) lines.pop();
    return lines.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line)).map((line) => `${line.startsWith('.') ? '.' : ''}${line}\r\n`).join('') + '.\r\n';
  };
  const parts = ['a', '.', '\r', '\n', '\r\n', '\r\n.', 'xyz'];
  let seed = 42;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  for (let i = 0; i < 3000; i++) {
    const raw = Array.from({ length: next() % 10 }, () => parts[next() % parts.length]).join('');
    if (encode(raw) !== reference(raw)) t.fail(`encoded wrongly: ${JSON.stringify(raw)}`);
  }
  t.pass('3000 random messages');
});
