import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import selfsigned from 'selfsigned';
import t from 'tap';
import { loadTlsCertificate } from '../../src/net/tls.js';
import { LineClient } from '../helpers/line-client.js';
import { freePort, startServer } from '../helpers/server.js';

interface Logged {
  level: string;
  details: Record<string, unknown>;
  message: string;
}

function recordingLog() {
  const lines: Logged[] = [];
  const at = (level: string) => (details: object, message: string) => void lines.push({ level, details: { ...details }, message });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

function pair(name: string) {
  const pems = selfsigned.generate([{ name: 'commonName', value: name }], { keySize: 2048, days: 30, algorithm: 'sha256' });
  return { cert: pems.cert, key: pems.private };
}

const first = pair('first.test');
const second = pair('second.test');
// What a secret looks like in a log: any line of a key's base64 body.
const keyLines = [first.key, second.key].flatMap((key) => key.split(/\r?\n/).filter((line) => line.length > 0 && !line.startsWith('-----')));
const hasKey = (text: string) => keyLines.some((line) => text.includes(line));

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mailroom-tls-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('without configured files a self-signed pair is made once, and the log says so', async (t) => {
  const dataDir = await tempDir(t);
  const log = recordingLog();
  const made = await loadTlsCertificate({ certPath: null, keyPath: null, dataDir }, log);
  t.ok(made.context);
  t.equal(log.lines.length, 1);
  t.match(log.lines[0], { level: 'warn', message: /self-signed/, details: { cert: join(dataDir, 'tls', 'self-signed-cert.pem') } });
  t.same((await readdir(join(dataDir, 'tls'))).sort(), ['self-signed-cert.pem', 'self-signed-key.pem']);

  const again = recordingLog();
  await loadTlsCertificate({ certPath: null, keyPath: null, dataDir }, again);
  t.same(again.lines, [], 'the next start uses the pair already there, quietly');
});

t.test('a reload that cannot be used keeps the pair in use and logs why, without key material', async (t) => {
  const dir = await tempDir(t);
  const files = { certPath: join(dir, 'cert.pem'), keyPath: join(dir, 'key.pem'), dataDir: dir };
  await writeFile(files.certPath, first.cert);
  await writeFile(files.keyPath, first.key);
  const log = recordingLog();
  const certificate = await loadTlsCertificate(files, log);
  const inUse = certificate.context;

  const broken: [string, () => Promise<unknown>][] = [
    ['the key file is missing', () => rm(files.keyPath)],
    ['the certificate is garbled', () => Promise.all([writeFile(files.certPath, 'not a certificate'), writeFile(files.keyPath, first.key)])],
    ['the key belongs to another certificate', () => Promise.all([writeFile(files.certPath, first.cert), writeFile(files.keyPath, second.key)])],
    ['the key is garbled', () => writeFile(files.keyPath, second.key.slice(0, 200))],
    ['both files are empty', () => Promise.all([writeFile(files.certPath, ''), writeFile(files.keyPath, '')])],
  ];
  for (const [problem, breakIt] of broken) {
    await breakIt();
    log.lines.length = 0;
    await certificate.reload();
    t.equal(certificate.context, inUse, `${problem}: the previous pair stays`);
    t.match(log.lines, [{ level: 'error', message: /reload failed/, details: { cert: files.certPath, key: files.keyPath } }], problem);
    const text = JSON.stringify(log.lines, (_key, value) => (value instanceof Error ? `${value.message} ${value.stack}` : value));
    t.notOk(hasKey(text), `${problem}: no key in the log`);
  }

  await writeFile(files.certPath, second.cert);
  await writeFile(files.keyPath, second.key);
  log.lines.length = 0;
  await certificate.reload();
  t.not(certificate.context, inUse, 'a good pair is taken');
  t.match(log.lines, [{ level: 'info', message: 'TLS certificate reloaded', details: { subject: /second\.test/, fingerprint: String } }]);
});

t.test('a start with files that cannot be used fails', async (t) => {
  const dir = await tempDir(t);
  const files = { certPath: join(dir, 'cert.pem'), keyPath: join(dir, 'key.pem'), dataDir: dir };
  await writeFile(files.certPath, first.cert);
  await writeFile(files.keyPath, second.key);
  await t.rejects(loadTlsCertificate(files, recordingLog()), /does not belong/);
});

t.test('SIGHUP: new IMAPS, POP3S, STARTTLS and STLS connections get the new pair; open sessions go on', async (t) => {
  const dir = await tempDir(t);
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  await writeFile(certPath, first.cert);
  await writeFile(keyPath, first.key);
  const ports = { imap: await freePort(), imaps: await freePort(), pop3: await freePort(), pop3s: await freePort() };
  const server = await startServer(t, {
    MAILROOM_TLS_CERT: certPath,
    MAILROOM_TLS_KEY: keyPath,
    MAILROOM_LOG_LEVEL: 'info',
    MAILROOM_IMAP_PORT: String(ports.imap),
    MAILROOM_IMAPS_PORT: String(ports.imaps),
    MAILROOM_POP3_PORT: String(ports.pop3),
    MAILROOM_POP3S_PORT: String(ports.pop3s),
  });
  // /readyz answers once the API is up; the mail listeners start after it.
  for (let i = 0; i < 200 && !/mailroom started/.test(server.output()); i++) await sleep(50);

  const open: LineClient[] = [];
  t.teardown(() => open.forEach((client) => client.close()));
  const connect = async (port: number, upgrade?: string) => {
    const client = await LineClient.connect(port, { tls: upgrade === undefined });
    open.push(client);
    await client.readLine();
    if (upgrade !== undefined) {
      t.match(await client.command(upgrade), /^(\+OK|a OK)/);
      await client.startTls();
    }
    return client;
  };
  const subjects = async () => {
    const clients = await Promise.all([connect(ports.imaps), connect(ports.pop3s), connect(ports.imap, 'a STARTTLS'), connect(ports.pop3, 'STLS')]);
    return clients.map((client) => client.certificate?.subject);
  };
  const signalled = async (logged: RegExp) => {
    const before = server.output().length;
    server.child.kill('SIGHUP');
    for (let i = 0; i < 100 && !logged.test(server.output().slice(before)); i++) await sleep(50);
    t.match(server.output().slice(before), logged);
  };

  t.same(await subjects(), Array(4).fill('CN=first.test'));
  const kept = await connect(ports.imaps);

  await writeFile(certPath, second.cert);
  await writeFile(keyPath, second.key);
  await signalled(/TLS certificate reloaded/);
  t.same(await subjects(), Array(4).fill('CN=second.test'), 'every TLS door hands out the new certificate');
  t.match(await kept.command('k NOOP'), /^k OK/, 'a session opened before the reload goes on');
  t.equal(kept.certificate?.subject, 'CN=first.test', 'on the certificate it started with');

  await writeFile(keyPath, first.key);
  await signalled(/TLS certificate reload failed/);
  t.same(await subjects(), Array(4).fill('CN=second.test'), 'a pair that does not match is not taken');
  t.notOk(hasKey(server.output()), 'no key in the log');
  t.equal(server.child.exitCode, null, 'still running');
});
