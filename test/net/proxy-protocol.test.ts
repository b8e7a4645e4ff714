import { once } from 'node:events';
import { connect } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import t from 'tap';
import { parseProxyHeader, trustList } from '../../src/net/proxy-protocol.js';
import { buildTestApi } from '../helpers/api.js';
import { ACTOR, gatewayFixture } from '../helpers/gateway.js';
import { startTestImap } from '../helpers/imap.js';
import { LineClient, lastWords, run } from '../helpers/line-client.js';
import { PASSWORD, startTestPop3 } from '../helpers/pop3.js';
import { RawLmtp } from '../lmtp/clients.js';
import { lmtpFixture, message } from '../lmtp/setup.js';

const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const LOOPBACK = trustList(['127.0.0.1', '::1']);
const ELSEWHERE = trustList(['10.0.0.0/8']);

function v1(source: string, family = source.includes(':') ? 'TCP6' : 'TCP4'): Buffer {
  const destination = family === 'TCP6' ? '::1' : '127.0.0.1';
  return Buffer.from(`PROXY ${family} ${source} ${destination} 51234 993\r\n`);
}

/** A version 2 PROXY command for TCP over IPv4, with one TLV (which the server skips) after the addresses. */
function v2(source: string, { command = 0x21, tlv = Buffer.from([0x04, 0x00, 0x02, 0xab, 0xcd]) } = {}): Buffer {
  const addresses = Buffer.alloc(12);
  source.split('.').forEach((byte, i) => addresses.writeUInt8(Number(byte), i));
  addresses.set([127, 0, 0, 1], 4);
  addresses.writeUInt16BE(51234, 8);
  addresses.writeUInt16BE(993, 10);
  const body = Buffer.concat([addresses, tlv]);
  const head = Buffer.alloc(4);
  head.writeUInt8(command, 0);
  head.writeUInt8(0x11, 1);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([SIGNATURE, head, body]);
}

/** A version 2 PROXY command for TCP over IPv6. */
function v2Ipv6(): Buffer {
  const body = Buffer.alloc(36);
  body.set([0x20, 0x01, 0x0d, 0xb8], 0); // 2001:db8::7
  body.writeUInt8(7, 15);
  body.writeUInt8(1, 31); // ::1
  return Buffer.concat([SIGNATURE, Buffer.from([0x21, 0x21, 0x00, 36]), body]);
}

t.test('the parser reads v1 and v2 headers, waits for more, and refuses what is not one', async (t) => {
  t.same(parseProxyHeader(v1('203.0.113.7')), { address: '203.0.113.7', length: v1('203.0.113.7').length });
  t.same(parseProxyHeader(v1('2001:db8::9')), { address: '2001:db8::9', length: v1('2001:db8::9').length });
  t.same(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\nA1 NOOP')), { address: null, length: 15 });
  t.same(parseProxyHeader(v2('198.51.100.4')), { address: '198.51.100.4', length: 33 });
  t.same(parseProxyHeader(v2Ipv6()), { address: '2001:db8::7', length: 52 });
  t.same(parseProxyHeader(v2('198.51.100.4', { command: 0x20 })), { address: null, length: 33 }, 'LOCAL keeps the peer');
  for (const partial of [v1('203.0.113.7').subarray(0, 20), v2('198.51.100.4').subarray(0, 5), v2('198.51.100.4').subarray(0, 20), Buffer.from('PRO')]) {
    t.equal(parseProxyHeader(partial), null, 'incomplete: more is needed');
  }
  const bad = [
    Buffer.from('A1 LOGIN a b\r\n'),
    Buffer.from('PROXY TCP4 203.0.113.7 127.0.0.1 51234\r\n'),
    Buffer.from('PROXY TCP4 2001:db8::1 127.0.0.1 1 2\r\n'),
    Buffer.from('PROXY TCP4 203.0.113.7 127.0.0.1 51234 99999\r\n'),
    Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`),
    Buffer.concat([SIGNATURE, Buffer.from([0x31, 0x11, 0, 12])]),
    Buffer.concat([SIGNATURE, Buffer.from([0x21, 0x11, 0x02, 0x10])]),
    Buffer.concat([SIGNATURE.subarray(0, 6), Buffer.from('xxxxxx')]),
  ];
  for (const buffer of bad) t.throws(() => parseProxyHeader(buffer), JSON.stringify(buffer.toString('latin1')));
});

t.test("IMAP behind a balancer: lastLogin, the sessions list and the per-address cap see the client's address", async (t) => {
  const imap = await startTestImap(t, {
    limits: { allowPlaintextAuth: true },
    proxyFrom: { plain: LOOPBACK, secure: LOOPBACK },
    maxConnectionsPerIp: 1,
  });
  await imap.mailbox('ann@proxy.test');
  const viaV1 = await LineClient.connect(imap.port, { preface: v1('203.0.113.7') });
  t.teardown(() => viaV1.close());
  t.match(await viaV1.readLine(), /^\* OK/);
  t.match((await run(viaV1, `a1 LOGIN ann@proxy.test "${PASSWORD}"`)).at(-1), /^a1 OK/);
  t.match((await imap.services.mailboxes.get('ann@proxy.test', ACTOR)).value.lastLogin, { protocol: 'imap', ip: '203.0.113.7' });
  t.match(await imap.services.sessions.list('ann@proxy.test', ACTOR), [{ protocol: 'imap', remoteIp: '203.0.113.7' }]);

  // The per-address cap (1 here) counts clients, not the balancer: a second client gets in.
  const viaV2 = await LineClient.connect(imap.securePort, { tls: true, preface: v2('198.51.100.4') });
  t.teardown(() => viaV2.close());
  t.match(await viaV2.readLine(), /^\* OK/, 'v2 header, then the TLS handshake on the implicit-TLS port');
  t.match((await run(viaV2, `b1 LOGIN ann@proxy.test "${PASSWORD}"`)).at(-1), /^b1 OK/);
  t.match((await imap.services.mailboxes.get('ann@proxy.test', ACTOR)).value.lastLogin, { ip: '198.51.100.4' });
  t.match(
    (await imap.services.sessions.list('ann@proxy.test', ACTOR)).map((session) => [session.remoteIp, session.tls]).sort(),
    [
      ['198.51.100.4', true],
      ['203.0.113.7', false],
    ],
  );
  const again = await LineClient.connect(imap.port, { preface: v1('203.0.113.7') });
  t.teardown(() => again.close());
  t.match(await lastWords(again), [/^\* BYE \[UNAVAILABLE\] Too many connections/], 'the same client over its cap is refused');
});

t.test("failed logins through a balancer lock out the client's address, not the balancer's", async (t) => {
  const throttle = { failuresPerIp: 2, failuresPerMailbox: 0, lockSeconds: 900, maxDelayMs: 0 };
  const fixture = await gatewayFixture(t, undefined, throttle);
  const imap = await startTestImap(t, { fixture, limits: { allowPlaintextAuth: true }, proxyFrom: { plain: LOOPBACK } });
  await imap.mailbox('bob@proxy.test');
  for (const tag of ['f1', 'f2']) {
    const client = await LineClient.connect(imap.port, { preface: v1('192.0.2.66') });
    t.teardown(() => client.close());
    await client.readLine();
    t.match((await run(client, `${tag} LOGIN bob@proxy.test wrong-password`)).at(-1), new RegExp(`^${tag} NO`));
    client.close();
  }
  t.match(await imap.services.loginThrottle.getClient('192.0.2.66', ACTOR), { locked: true });
  t.match(await imap.services.loginThrottle.getClient('127.0.0.1', ACTOR), { locked: false, recentFailures: 0 });
  const other = await LineClient.connect(imap.port, { preface: v1('192.0.2.67') });
  t.teardown(() => other.close());
  await other.readLine();
  t.match((await run(other, `o1 LOGIN bob@proxy.test "${PASSWORD}"`)).at(-1), /^o1 OK/, 'another client of the same balancer still logs in');
});
/**
 * A TLS client whose header and ClientHello leave in one write, as a balancer relaying a client's
 * first packet does: the server must hand the bytes after the header to the handshake.
 */
async function tlsWithHeaderInFront(port: number, header: Buffer): Promise<TLSSocket> {
  const raw = connect(port, '127.0.0.1');
  await once(raw, 'connect');
  let first = true;
  const carrier = new Duplex({
    write(chunk: Buffer, _encoding, done) {
      raw.write(first ? Buffer.concat([header, chunk]) : chunk, done);
      first = false;
    },
    read() {},
  });
  raw.on('data', (chunk) => carrier.push(chunk));
  raw.on('end', () => carrier.push(null));
  const secure = connectTls({ socket: carrier, rejectUnauthorized: false });
  await once(secure, 'secureConnect');
  return secure;
}

t.test('bytes sent along with the header reach the session: a pipelined command, a TLS ClientHello', async (t) => {
  const imap = await startTestImap(t, { proxyFrom: { plain: LOOPBACK, secure: LOOPBACK } });
  const client = await LineClient.connect(imap.port, { preface: Buffer.concat([v2('198.51.100.4'), Buffer.from('a1 NOOP\r\n')]) });
  t.teardown(() => client.close());
  t.match(await client.readLine(), /^\* OK/);
  t.match(await client.readLine(), /^a1 OK/);
  const secure = await tlsWithHeaderInFront(imap.securePort, v1('203.0.113.7'));
  t.teardown(() => secure.destroy());
  const [greeting] = (await once(secure, 'data')) as [Buffer];
  t.match(greeting.toString(), /^\* OK/, 'the handshake completed over the bytes that followed the header');
});

t.test('the plaintext rule judges the proxied client: one from afar gets no LOGIN without TLS', async (t) => {
  const imap = await startTestImap(t, { proxyFrom: { plain: LOOPBACK } });
  await imap.mailbox('cat@proxy.test');
  const client = await LineClient.connect(imap.port, { preface: v1('203.0.113.9') });
  t.teardown(() => client.close());
  t.match(await client.readLine(), /LOGINDISABLED/);
  t.match((await run(client, `a1 LOGIN cat@proxy.test "${PASSWORD}"`)).at(-1), /^a1 NO/);
  // LOCAL (a balancer's health check) keeps the peer's own address: loopback, so LOGIN is allowed.
  const local = await LineClient.connect(imap.port, { preface: v2('0.0.0.0', { command: 0x20 }) });
  t.teardown(() => local.close());
  t.notMatch(await local.readLine(), /LOGINDISABLED/);
});

t.test('POP3S behind a balancer: v1 before the handshake, and the login records the client', async (t) => {
  const pop3 = await startTestPop3(t, { proxyFrom: { secure: LOOPBACK } });
  await pop3.mailbox('dan@proxy.test');
  const client = await LineClient.connect(pop3.securePort, { tls: true, preface: v1('2001:db8::5') });
  t.teardown(() => client.close());
  t.match(await client.readLine(), /^\+OK/);
  t.match(await client.command('USER dan@proxy.test'), /^\+OK/);
  t.match(await client.command(`PASS ${PASSWORD}`), /^\+OK/);
  t.match((await pop3.services.mailboxes.get('dan@proxy.test', ACTOR)).value.lastLogin, { protocol: 'pop3', ip: '2001:db8::5' });
  t.match(await pop3.services.sessions.list('dan@proxy.test', ACTOR), [{ protocol: 'pop3', remoteIp: '2001:db8::5', tls: true }]);
  // The plain port did not opt in: a header there is just a bad command, from the peer's own address.
  const plain = await LineClient.connect(pop3.port, { preface: v1('203.0.113.7') });
  t.teardown(() => plain.close());
  t.match(await plain.readLine(), /^\+OK/);
  t.match(await plain.readLine(), /^-ERR/);
});

t.test('a trusted peer must send a good header: garbage, truncated, oversized or none closes the connection', async (t) => {
  const imap = await startTestImap(t, { proxyFrom: { plain: LOOPBACK, secure: LOOPBACK }, limits: { loginTimeoutMs: 300 } });
  const attempts: [string, Buffer][] = [
    ['a command instead of a header', Buffer.from('A1 CAPABILITY\r\n')],
    ['a malformed v1 line', Buffer.from('PROXY TCP4 not-an-address 127.0.0.1 1 2\r\n')],
    ['an overlong v1 line', Buffer.from(`PROXY TCP4 ${'9'.repeat(200)}\r\n`)],
    ['a v2 header announcing too much', Buffer.concat([SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff]), Buffer.alloc(600)])],
    ['binary noise', Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
    ['a header cut short, then silence', v2('198.51.100.4').subarray(0, 20)],
    ['nothing at all', Buffer.alloc(0)],
  ];
  for (const [what, bytes] of attempts) {
    for (const port of [imap.port, imap.securePort]) {
      const client = await LineClient.connect(port, { preface: bytes });
      t.teardown(() => client.close());
      t.same(await lastWords(client), [], `${what} (port ${port === imap.port ? 'plain' : 'TLS'}): closed without a word`);
    }
  }
  const good = await LineClient.connect(imap.port, { preface: v1('203.0.113.7') });
  t.teardown(() => good.close());
  t.match(await good.readLine(), /^\* OK/, 'the listener still serves');
});

t.test('a header from a peer not trusted is not honoured', async (t) => {
  const imap = await startTestImap(t, { limits: { allowPlaintextAuth: true }, proxyFrom: { plain: ELSEWHERE } });
  await imap.mailbox('eve@proxy.test');
  const client = await LineClient.connect(imap.port, { preface: v1('203.0.113.7') });
  t.teardown(() => client.close());
  t.match(await client.readLine(), /^\* OK/);
  t.match(await client.readLine(), /BAD/, 'the header is just a bad command');
  t.match((await run(client, `a1 LOGIN eve@proxy.test "${PASSWORD}"`)).at(-1), /^a1 OK/);
  t.match((await imap.services.mailboxes.get('eve@proxy.test', ACTOR)).value.lastLogin, { ip: '127.0.0.1' }, 'the real peer is recorded');
});

t.test('LMTP takes a PROXY v1 header from a trusted peer, and requires it', async (t) => {
  const f = await lmtpFixture(t, { useProxy: ['127.0.0.1'] });
  await f.mailbox('fay@proxy.test');
  const client = await RawLmtp.open(f.port, 'PROXY TCP4 203.0.113.7 127.0.0.1 51234 24\r\n');
  t.teardown(() => client.close());
  t.match(client.greeting, /^220 /);
  t.match(await client.command('LHLO mta.test'), /^250/);
  t.match(await client.command('MAIL FROM:<sender@example.com>'), /^250/);
  t.match(await client.command('RCPT TO:<fay@proxy.test>'), /^250/);
  t.match(await client.command('DATA'), /^354/);
  client.write(`${message('proxied').toString('latin1')}\r\n.\r\n`);
  t.match((await client.replies(1))[0], /^250/);
  t.equal((await f.inbox('fay@proxy.test')).length, 1);

  const bare = connect(f.port, '127.0.0.1');
  const said: Buffer[] = [];
  bare.on('data', (chunk) => said.push(chunk));
  bare.on('error', () => {});
  bare.write('LHLO mta.test\r\n');
  await new Promise((resolve) => bare.once('close', resolve));
  t.notMatch(Buffer.concat(said).toString(), /^220/, 'no greeting without the header');
});

t.test('the API believes X-Forwarded-For from trusted proxies only', async (t) => {
  const api = await buildTestApi(t, { trustProxy: ['127.0.0.1', '10.0.0.0/8'], limits: { perIp: 1, perKey: 0, maxEventLoopDelayMs: 0 } });
  const get = (remoteAddress: string, forwarded: string) =>
    api.app.inject({ method: 'GET', url: '/v1/domains', headers: { ...api.admin, 'x-forwarded-for': forwarded }, remoteAddress });
  t.equal((await get('127.0.0.1', '198.51.100.1')).statusCode, 200);
  t.equal((await get('10.1.2.3', '198.51.100.2')).statusCode, 200, 'another client behind a trusted proxy has its own count');
  t.equal((await get('127.0.0.1', '198.51.100.1')).statusCode, 429, 'the first client is over its count');
  t.equal((await get('192.0.2.9', '198.51.100.3')).statusCode, 200);
  t.equal((await get('192.0.2.9', '198.51.100.4')).statusCode, 429, 'from an untrusted peer the header is ignored: one address');
});
