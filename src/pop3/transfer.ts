const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const STUFFING = Buffer.from('.');
const CHUNK = 64 * 1024;

/**
 * A message as RETR or TOP sends it (RFC 1939 §3): every line ending CRLF, lines starting with
 * '.' stuffed, then the terminating '.' line. With `bodyLines`, only the header, the blank line
 * and that many body lines. Yields pieces of about 64 KiB so a large message is never copied
 * whole; works on bytes, so a message need not be valid UTF-8.
 */
export function* encodeMessage(raw: Buffer, bodyLines = Number.POSITIVE_INFINITY): Generator<Buffer> {
  let pieces: Buffer[] = [];
  let pending = 0;
  let inBody = false;
  let bodyLinesSent = 0;
  for (let start = 0; start < raw.length && !(inBody && bodyLinesSent >= bodyLines); ) {
    const newline = raw.indexOf(LF, start);
    const end = newline === -1 ? raw.length : newline;
    const line = raw.subarray(start, end > start && raw[end - 1] === CR ? end - 1 : end);
    if (line[0] === DOT) pieces.push(STUFFING);
    pieces.push(line, CRLF);
    pending += line.length + 3;
    if (inBody) bodyLinesSent += 1;
    else if (line.length === 0) inBody = true;
    start = end + 1;
    if (pending >= CHUNK) {
      yield Buffer.concat(pieces);
      pieces = [];
      pending = 0;
    }
  }
  pieces.push(Buffer.from('.\r\n'));
  yield Buffer.concat(pieces);
}
