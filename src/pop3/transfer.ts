const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const STUFFING = Buffer.from('.');
const CHUNK = 64 * 1024;
const TERMINATOR = Buffer.from('.\r\n');
const FINAL_LINE_END = Buffer.from('\r\n.\r\n');

/**
 * A message as RETR or TOP sends it (RFC 1939 §3): every line ending CRLF, lines starting with
 * '.' stuffed, then the terminating '.' line. With `bodyLines`, only the header, the blank line
 * and that many body lines. Yields pieces of about 64 KiB so a large message is never copied
 * whole; works on bytes, so a message need not be valid UTF-8.
 */
export function* encodeMessage(raw: Buffer, bodyLines = Number.POSITIVE_INFINITY): Generator<Buffer> {
  if (bodyLines === Number.POSITIVE_INFINITY && sendsAsStored(raw)) {
    for (let start = 0; start < raw.length; start += CHUNK) yield raw.subarray(start, start + CHUNK);
    yield raw.length === 0 || raw[raw.length - 1] === LF ? TERMINATOR : FINAL_LINE_END;
    return;
  }
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
  pieces.push(TERMINATOR);
  yield Buffer.concat(pieces);
}

/**
 * Whether the message goes out byte for byte (most do): every line ends CRLF, none starts with
 * '.', and a last line without a line end does not end with CR (which the line path drops).
 */
function sendsAsStored(raw: Buffer): boolean {
  if (raw[0] === DOT) return false;
  for (let newline = raw.indexOf(LF); newline !== -1; newline = raw.indexOf(LF, newline + 1)) {
    if (raw[newline - 1] !== CR || raw[newline + 1] === DOT) return false;
  }
  return raw[raw.length - 1] !== CR;
}
