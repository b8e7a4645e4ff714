import { execFile } from 'node:child_process';
import { BlockList, connect as connectTcp, createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { constants as zlib, createDeflateRaw, inflateRawSync } from 'node:zlib';
import t from 'tap';
import { startImap } from '../../src/imap/server.js';
import { DEFLATE_QUIET_MS } from '../../src/net/connection.js';
import { lastWords, LineClient, run } from '../helpers/line-client.js';
import { ACTOR, PASSWORD, startTestImap } from '../helpers/imap.js';

const imap = await startTestImap(t);
const MESSAGE = 'From: a@example.org\r\nSubject: hello\r\n\r\nHello\r\n';
/** The empty stored block a Z_SYNC_FLUSH ends with. */
const SYNC_FLUSH = Buffer.from([0x00, 0x00, 0xff, 0xff]);

let mailboxes = 0;
async function freshMailbox(): Promise<string> {
  const address = `user${++mailboxes}@compress.test`;
  await imap.mailbox(address);
  return address;
}

/** Logged in on the plain port (loopback may) and compressed, with the exact answer to COMPRESS. */
async function compressed(address: string): Promise<LineClient> {
  const client = await imap.login(address);
  if ((await client.command('z COMPRESS DEFLATE')) !== 'z OK DEFLATE active') throw new Error('COMPRESS refused');
  client.compress();
  return client;
}

/** The mailbox's live sessions, once the count is `expected` (a closed session unregisters a moment later). */
async function sessionsOnceThere(services: typeof imap.services, address: string, expected: number) {
  for (let i = 0; ; i++) {
    const sessions = await services.sessions.list(address, ACTOR);
    if (sessions.length === expected || i === 50) return sessions;
    await sleep(50);
  }
}

function occurrences(haystack: Buffer, needle: Buffer): number {
  let count = 0;
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + 1)) count++;
  return count;
}

/** A TCP relay in front of `port` that counts the bytes the server sends. */
async function countingRelay(port: number): Promise<{ port: number; received: () => number }> {
  let received = 0;
  const server = createServer((client) => {
    const upstream = connectTcp(port, '127.0.0.1');
    upstream.on('data', (chunk: Buffer) => (received += chunk.length));
    for (const socket of [client, upstream]) {
      socket.on('error', () => {});
      socket.once('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return { port: (server.address() as { port: number }).port, received: () => received };
}

t.test('imapflow negotiates COMPRESS=DEFLATE on IMAPS and works through it: login, select, append, fetch, idle', async (t) => {
  const address = await freshMailbox();
  // Compresses well: a megabyte of repeated text is a few KiB deflated.
  const big = `From: a@example.org\r\nSubject: big\r\n\r\n${'All work and no play makes Jack a dull boy.\r\n'.repeat(24_000)}`;
  await imap.deliver(address, big);
  const relay = await countingRelay(imap.securePort);
  const client = imap.imapflow(address, { port: relay.port });
  await client.connect();
  t.teardown(() => client.close());
  t.ok(client.capabilities.has('COMPRESS=DEFLATE'), 'offered after login');
  t.ok((client as unknown as { _deflate?: unknown })._deflate, 'imapflow turned compression on');

  await client.mailboxOpen('INBOX');
  const before = relay.received();
  const fetched = await client.fetchOne('1', { source: true });
  t.equal(fetched && fetched.source?.toString(), big, 'the message arrives whole');
  const onTheWire = relay.received() - before;
  t.ok(onTheWire < big.length / 20, `a ${big.length}-byte message took ${onTheWire} bytes on the wire`);

  const appended = await client.append('INBOX', MESSAGE, ['\\Seen']);
  t.equal(appended && appended.uid, 2);
  const back = await client.fetchOne('2', { source: true, flags: true }, { uid: true });
  t.equal(back && back.source?.toString(), MESSAGE);
  t.ok(back && back.flags?.has('\\Seen'));

  const exists = new Promise<{ count: number; at: number }>((resolve) =>
    client.on('exists', (data: { count: number }) => resolve({ count: data.count, at: performance.now() })),
  );
  const idling = client.idle();
  await sleep(100);
  await imap.deliver(address, MESSAGE);
  const delivered = performance.now();
  const pushed = await exists;
  t.equal(pushed.count, 3, 'the IDLE push arrived through the compressed stream');
  t.ok(pushed.at - delivered < 1000, `pushed ${(pushed.at - delivered).toFixed(1)} ms after the delivery`);
  await client.noop();
  await idling;

  const plainRelay = await countingRelay(imap.securePort);
  const plain = imap.imapflow(address, { port: plainRelay.port, disableCompression: true });
  await plain.connect();
  t.teardown(() => plain.close());
  await plain.mailboxOpen('INBOX');
  const plainBefore = plainRelay.received();
  await plain.fetchOne('1', { source: true });
  t.ok(plainRelay.received() - plainBefore > big.length, 'without compression the same fetch takes the whole size');
});

t.test('raw DEFLATE on the wire: the OK in plain text, then every answer flushed at once (Z_SYNC_FLUSH)', async (t) => {
  const address = await freshMailbox();
  const client = await imap.login(address);
  t.match((await run(client, 'b CAPABILITY'))[0], / COMPRESS=DEFLATE( |$)/, 'offered after login');

  client.send('c COMPRESS DEFLATE\r\n');
  t.equal(await client.readLine(), 'c OK DEFLATE active', 'the tagged OK is the last plain text');
  await sleep(200);
  client.compress();
  t.equal(client.compressedBytes.length, 0, 'nothing follows the OK until the client speaks');

  // One command, and no more input: its whole answer arrives without the client sending anything.
  client.send('d NOOP\r\n');
  t.equal(await client.readLine(2000), 'd OK NOOP completed');
  const bytes = Buffer.concat(client.compressedBytes);
  t.same(bytes.subarray(-4), SYNC_FLUSH, 'the answer ends with a sync flush');
  t.equal(inflateRawSync(bytes, { finishFlush: zlib.Z_SYNC_FLUSH }).toString(), 'd OK NOOP completed\r\n', 'and is exactly the answer');

  const after = await run(client, 'e CAPABILITY');
  t.notMatch(after[0], /COMPRESS/, 'no longer offered once active');
  t.match(after[0], /^\* CAPABILITY IMAP4rev1 /);
  t.same(await run(client, 'f COMPRESS DEFLATE'), ['f NO [COMPRESSIONACTIVE] DEFLATE is already active'], 'COMPRESS twice');
  t.match((await run(client, 'g NOOP')).at(-1), /^g OK/, 'still compressed, still working');
});

t.test('a burst of lines written in one turn is flushed once, not once per line', async (t) => {
  const address = await freshMailbox();
  for (let n = 0; n < 100; n++) await imap.deliver(address, MESSAGE);
  const client = await compressed(address);
  await run(client, 's SELECT INBOX');
  client.compressedBytes.length = 0;
  const answer = await run(client, 'f STORE 1:100 +FLAGS (\\Flagged)');
  t.equal(answer.length, 101);
  t.equal(answer[99], '* 100 FETCH (FLAGS (\\Flagged \\Recent))');
  const flushes = occurrences(Buffer.concat(client.compressedBytes), SYNC_FLUSH);
  t.ok(flushes >= 1 && flushes <= 3, `101 lines in ${flushes} flush(es)`);
});

t.test('literals, LITERAL+ and large FETCH answers pass through compression', async (t) => {
  const address = await freshMailbox();
  const client = await compressed(address);
  client.send(`a APPEND INBOX {${MESSAGE.length}}\r\n`);
  t.equal(await client.readLine(), '+ Ready for literal data', 'asked for the literal, compressed');
  client.send(`${MESSAGE}\r\n`);
  t.match(await client.readLine(), /^a OK \[APPENDUID \d+ 1\]/);
  const body = 'x'.repeat(300 * 1024);
  const message = `Subject: big\r\n\r\n${body}`;
  t.match((await run(client, `b APPEND INBOX {${message.length}+}\r\n${message}`)).at(-1), /^b OK \[APPENDUID \d+ 2\]/);
  await run(client, 's SELECT INBOX');
  const fetched = await run(client, 'f FETCH 2 BODY.PEEK[TEXT]');
  t.equal(fetched[0], `* 2 FETCH (BODY[TEXT] {${body.length}}`);
  t.equal(fetched[1], `${body})`);
  t.match(fetched[2], /^f OK/);
});

t.test('COMPRESS before login, with an unknown mechanism or none is refused, and nothing is compressed', async (t) => {
  const client = await LineClient.connect(imap.port);
  t.teardown(() => client.close());
  t.notMatch(await client.readLine(), /COMPRESS/, 'not offered before login');
  t.same(await run(client, 'a COMPRESS DEFLATE'), ['a BAD COMPRESS is not allowed before login'], 'RFC 4978: command-auth only');
  t.match((await run(client, 'b NOOP')).at(-1), /^b OK/, 'still plain text');
  const address = await freshMailbox();
  t.match((await run(client, `c LOGIN ${address} "${PASSWORD}"`)).at(-1), /^c OK \[CAPABILITY .*COMPRESS=DEFLATE/);
  t.same(await run(client, 'd COMPRESS LZW'), ['d BAD Unknown compression mechanism LZW']);
  t.same(await run(client, 'e COMPRESS'), ['e BAD Expected 1 arguments']);
  t.same(await run(client, 'f COMPRESS "DEFLATE"'), ['f BAD Expected a compression mechanism']);
  t.match((await run(client, 'g NOOP')).at(-1), /^g OK/, 'still plain text');
  t.same(await run(client, 'h COMPRESS deflate'), ['h OK DEFLATE active'], 'the mechanism in any case');
  client.compress();
  t.match((await run(client, 'i NOOP')).at(-1), /^i OK/);
});

t.test('after STARTTLS and on IMAPS, compression is layered above TLS', async (t) => {
  const address = await freshMailbox();
  const upgraded = await LineClient.connect(imap.port);
  t.teardown(() => upgraded.close());
  await upgraded.readLine();
  t.same(await run(upgraded, 'a STARTTLS'), ['a OK Begin TLS negotiation now']);
  await upgraded.startTls();
  t.match((await run(upgraded, `b LOGIN ${address} "${PASSWORD}"`)).at(-1), /^b OK/);
  t.same(await run(upgraded, 'c COMPRESS DEFLATE'), ['c OK DEFLATE active']);
  upgraded.compress();
  t.match((await run(upgraded, 'd SELECT INBOX')).at(-1), /^d OK \[READ-WRITE\]/);
  t.ok(upgraded.compressedBytes.length > 0, 'the answers came compressed');

  const implicit = await LineClient.connect(imap.securePort, { tls: true });
  t.teardown(() => implicit.close());
  await implicit.readLine();
  t.match((await run(implicit, `a LOGIN ${address} "${PASSWORD}"`)).at(-1), /^a OK/);
  t.same(await run(implicit, 'b COMPRESS DEFLATE'), ['b OK DEFLATE active']);
  implicit.compress();
  t.equal((await run(implicit, 'c STATUS INBOX (MESSAGES)')).at(-2), '* STATUS "INBOX" (MESSAGES 0)');
  t.equal(await implicit.command('d LOGOUT'), '* BYE Logging out');
  t.same(await lastWords(implicit), ['d OK LOGOUT completed'], 'LOGOUT ends the compressed stream and the connection');
});

t.test('IDLE pushes arrive compressed, without the client sending anything, also once the compressor was given back', async (t) => {
  const address = await freshMailbox();
  const client = await compressed(address);
  await run(client, 's SELECT INBOX');
  client.send('i IDLE\r\n');
  t.equal(await client.readLine(), '+ idling');
  for (let n = 1; n <= 3; n++) {
    // Before the last push the connection is quiet long enough for its compressor to be released.
    if (n === 3) await sleep(DEFLATE_QUIET_MS + 500);
    const arrival = client.readLine(5000).then((line) => ({ line, at: performance.now() }));
    await imap.deliver(address, MESSAGE);
    const delivered = performance.now();
    const { line, at } = await arrival;
    t.equal(line, `* ${n} EXISTS`);
    t.ok(at - delivered < 1000, `push ${n} ${(at - delivered).toFixed(1)} ms after the delivery`);
    t.equal(await client.readLine(), `* ${n} RECENT`);
  }
  client.send('DONE\r\n');
  t.equal(await client.readLine(), 'i OK IDLE terminated');
});

t.test('a decompression bomb: a 100 MB line inflates piece by piece, is answered BAD, and memory stays bounded', async (t) => {
  const address = await freshMailbox();
  const client = await compressed(address);
  // Our own stream: the client's flushing writer would take much longer over 100 MB.
  const bomb = createDeflateRaw({ level: 9 });
  const pieces: Buffer[] = [];
  bomb.on('data', (chunk: Buffer) => pieces.push(chunk));
  const megabyte = Buffer.alloc(1024 * 1024, 'a');
  bomb.write('b ');
  for (let n = 0; n < 100; n++) bomb.write(megabyte);
  bomb.write('\r\nc NOOP\r\n');
  await new Promise((resolve) => bomb.end(resolve));
  const compressedBomb = Buffer.concat(pieces);
  t.ok(compressedBomb.length < 200 * 1024, `100 MB compressed to ${compressedBomb.length} bytes`);

  global.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  client.sendRaw(compressedBomb);
  const answer = await client.readLine(60_000);
  clearInterval(sampler);
  t.equal(answer, '* BAD Command line too long');
  t.match(await client.readLine(), /^c OK/, 'the session goes on');
  const grown = (peak - baseline) / 1024 / 1024;
  t.ok(grown < 50, `memory grew by ${grown.toFixed(1)} MiB while 100 MB were inflated`);
});

t.test('an oversized literal inside the compressed stream is refused before it is read', async (t) => {
  const address = await freshMailbox();
  const client = await compressed(address);
  t.same(await run(client, 'a APPEND INBOX {200000000}'), ['a BAD Literal of 200000000 bytes is larger than the 10485760 allowed']);
  t.match((await run(client, 'b NOOP')).at(-1), /^b OK/);
});

t.test('input that does not inflate ends the session with a compressed BYE', async (t) => {
  const address = await freshMailbox();
  const client = await compressed(address);
  // A block type of 3 is reserved: no inflater takes it.
  client.sendRaw(Buffer.from([0xff, 0xff, 0xff, 0xff]));
  t.same(await lastWords(client), ['* BYE Compressed input could not be inflated']);
  t.same(await sessionsOnceThere(imap.services, address, 0), [], 'the session is gone from the list');
});

t.test('timeouts through the compressed stream: a dripped line and autologout', async (t) => {
  const impatient = await startTestImap(t, { url: imap.url, limits: { lineTimeoutMs: 400, idleTimeoutMs: 1500 } });
  await impatient.mailbox('ann@timeouts.compress.test');
  const dripping = await impatient.login('ann@timeouts.compress.test');
  t.same(await run(dripping, 'z COMPRESS DEFLATE'), ['z OK DEFLATE active']);
  dripping.compress();
  dripping.send('a NOO');
  const timer = setInterval(() => dripping.send('O'), 50);
  const words = await lastWords(dripping);
  clearInterval(timer);
  t.same(words, ['* BYE Command line took too long to arrive']);

  const idle = await impatient.login('ann@timeouts.compress.test');
  t.same(await run(idle, 'z COMPRESS DEFLATE'), ['z OK DEFLATE active']);
  idle.compress();
  t.same(await lastWords(idle), ['* BYE Autologout; idle for too long']);
});

t.test('the PROXY protocol, session accounting and an administrator ending the session, compressed', async (t) => {
  const loopback = new BlockList();
  loopback.addSubnet('127.0.0.0', 8);
  const proxied = await startTestImap(t, { url: imap.url, proxyFrom: { plain: loopback } });
  const address = 'bob@proxy.compress.test';
  await proxied.mailbox(address);
  const client = await LineClient.connect(proxied.port, { preface: Buffer.from('PROXY TCP4 127.0.0.9 127.0.0.1 40000 143\r\n') });
  t.teardown(() => client.close());
  await client.readLine();
  t.match((await run(client, `a LOGIN ${address} "${PASSWORD}"`)).at(-1), /^a OK/);
  t.same(await run(client, 'b COMPRESS DEFLATE'), ['b OK DEFLATE active']);
  client.compress();
  t.match((await run(client, 'c NOOP')).at(-1), /^c OK/);
  t.match(await sessionsOnceThere(proxied.services, address, 1), [{ protocol: 'imap', remoteIp: '127.0.0.9' }]);
  await proxied.services.sessions.endAll(address, ACTOR);
  t.same(await lastWords(client), ['* BYE Session ended by the administrator'], 'the BYE arrives compressed, then the end');
  t.same(await sessionsOnceThere(proxied.services, address, 0), [], 'and its session is released');
});

t.test('shutdown: every compressed session is told BYE, compressed, before its connection is cut', async (t) => {
  const server = await startImap({ host: '127.0.0.1', port: 0, securePort: null, maxConnectionsPerIp: 10, context: imap.context });
  const address = await freshMailbox();
  const clients = await Promise.all(
    [1, 2, 3].map(async () => {
      const client = await LineClient.connect(server.ports.imap!);
      t.teardown(() => client.close());
      await client.readLine();
      await run(client, `a LOGIN ${address} "${PASSWORD}"`);
      t.same(await run(client, 'b COMPRESS DEFLATE'), ['b OK DEFLATE active']);
      client.compress();
      t.match((await run(client, 'c SELECT INBOX')).at(-1), /^c OK/);
      return client;
    }),
  );
  await server.close();
  for (const client of clients) t.same(await lastWords(client), ['* BYE Server shutting down']);
});

t.test("Python's imaplib with raw zlib: COMPRESS, then SELECT and FETCH compressed", async (t) => {
  const address = await freshMailbox();
  await imap.deliver(address, MESSAGE);
  const script = `
import imaplib, json, sys, zlib
imaplib.Commands['COMPRESS'] = ('AUTH', 'SELECTED')
class Compressed(imaplib.IMAP4):
    def start_compress(self):
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self._inflate = zlib.decompressobj(-15)
        self._pending = b''
    def send(self, data):
        if hasattr(self, '_deflate'):
            data = self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        super().send(data)
    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk: raise imaplib.IMAP4.abort('closed')
        self._pending += self._inflate.decompress(chunk)
    def read(self, size):
        if not hasattr(self, '_deflate'): return super().read(size)
        while len(self._pending) < size: self._fill()
        data, self._pending = self._pending[:size], self._pending[size:]
        return data
    def readline(self):
        if not hasattr(self, '_deflate'): return super().readline()
        while b'\\n' not in self._pending: self._fill()
        end = self._pending.index(b'\\n') + 1
        line, self._pending = self._pending[:end], self._pending[end:]
        return line
c = Compressed('127.0.0.1', int(sys.argv[1]))
c.login(sys.argv[2], sys.argv[3])
out = {'caps': c.capability()[1][0].decode().split()}
out['compress'] = c._simple_command('COMPRESS', 'DEFLATE')[0]
c.start_compress()
out['select'] = c.select('INBOX')[1][0].decode()
typ, data = c.fetch('1', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
out['fetch'] = data[0][1].decode()
out['logout'] = c.logout()[0]
print(json.dumps(out))
`;
  const { stdout } = await promisify(execFile)('python3', ['-c', script, String(imap.port), address, PASSWORD]);
  const out = JSON.parse(stdout);
  t.ok(out.caps.includes('COMPRESS=DEFLATE'));
  t.equal(out.compress, 'OK');
  t.equal(out.select, '1');
  t.equal(out.fetch, 'Subject: hello\r\n\r\n');
  t.equal(out.logout, 'BYE');
});
