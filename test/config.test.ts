import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { ConfigError, loadConfig } from '../src/config.js';
import { BIN, NO_CHILD_COVERAGE } from './helpers/server.js';

t.test('defaults: loopback, the unprivileged ports, embedded database in ./data', async (t) => {
  const config = loadConfig({});
  t.same(config, {
    host: '127.0.0.1',
    httpPort: 8080,
    imapPort: 1143,
    imapsPort: 1993,
    pop3Port: 1110,
    pop3sPort: 1995,
    lmtpPort: 2424,
    publicServers: { host: '127.0.0.1', imapPort: 1143, imapsPort: 1993, pop3Port: 1110, pop3sPort: 1995, submission: null },
    dataDir: resolve('./data'),
    databaseUrl: null,
    databasePoolSize: 10,
    tlsCertPath: null,
    tlsKeyPath: null,
    adminToken: null,
    logLevel: 'info',
    passwordMinLength: 10,
    apiBodyLimit: 1024 * 1024,
    apiRateLimitPerIp: 6000,
    apiRateLimitPerKey: 3000,
    apiMaxEventLoopDelayMs: 1000,
    maxMessageSize: 50 * 1024 * 1024,
    maxConnectionsPerIp: 50,
    maxConnectionsPerMailbox: 10,
    maxAuthFailures: 3,
    loginFailuresPerIp: 20,
    loginFailuresPerMailbox: 50,
    loginLockSeconds: 900,
    loginMaxDelayMs: 5000,
    protocolSwitchSweepMs: 30_000,
    pop3IdleTimeoutMs: 600_000,
    imapIdleTimeoutMs: 1_800_000,
    loginTimeoutMs: 60_000,
    lmtpTimeoutMs: 300_000,
    allowPlaintextAuth: false,
    proxyProtocol: [],
    proxyTrusted: ['127.0.0.1', '::1'],
    apiTrustProxy: [],
    shutdownTimeoutMs: 25_000,
    webhookMaxAgeMs: 259_200_000,
    webhookTimeoutMs: 10_000,
    threadPoolSize: 4,
  });
});

t.test('empty and blank values count as unset', async (t) => {
  const config = loadConfig({ MAILROOM_HTTP_PORT: '', MAILROOM_HOST: '  ', DATABASE_URL: '', MAILROOM_ADMIN_TOKEN: ' ' });
  t.equal(config.httpPort, 8080);
  t.equal(config.host, '127.0.0.1');
  t.equal(config.databaseUrl, null);
  t.equal(config.adminToken, null);
});

t.test('every variable is read', async (t) => {
  const config = loadConfig({
    MAILROOM_HOST: '0.0.0.0',
    MAILROOM_HTTP_PORT: '9080',
    MAILROOM_IMAP_PORT: '143',
    MAILROOM_IMAPS_PORT: '993',
    MAILROOM_POP3_PORT: '110',
    MAILROOM_POP3S_PORT: '995',
    MAILROOM_LMTP_PORT: ' 24 ',
    MAILROOM_PUBLIC_HOST: 'Mail.Example.NET',
    MAILROOM_PUBLIC_IMAP_PORT: 'off',
    MAILROOM_PUBLIC_IMAPS_PORT: '10993',
    MAILROOM_PUBLIC_POP3_PORT: '110',
    MAILROOM_PUBLIC_POP3S_PORT: '10995',
    MAILROOM_SUBMISSION_URL: 'smtps://SMTP.example.net:10465',
    MAILROOM_DATA_DIR: '/var/lib/mailroom',
    DATABASE_URL: 'postgres://mail:secret@db.internal:5432/mailroom',
    MAILROOM_DB_POOL_SIZE: '25',
    MAILROOM_TLS_CERT: 'tls/cert.pem',
    MAILROOM_TLS_KEY: '/etc/tls/key.pem',
    MAILROOM_ADMIN_TOKEN: 'an-admin-token-of-32-characters!',
    MAILROOM_LOG_LEVEL: 'DEBUG',
    MAILROOM_PASSWORD_MIN_LENGTH: '12',
    MAILROOM_API_BODY_LIMIT: '2048',
    MAILROOM_API_RATE_LIMIT_PER_IP: '0',
    MAILROOM_API_RATE_LIMIT_PER_KEY: '100',
    MAILROOM_API_MAX_EVENT_LOOP_DELAY: '250',
    MAILROOM_MAX_MESSAGE_SIZE: '1048576',
    MAILROOM_MAX_CONNECTIONS_PER_IP: '10',
    MAILROOM_MAX_CONNECTIONS_PER_MAILBOX: '4',
    MAILROOM_MAX_AUTH_FAILURES: '5',
    MAILROOM_LOGIN_FAILURES_PER_IP: '0',
    MAILROOM_LOGIN_FAILURES_PER_MAILBOX: '30',
    MAILROOM_LOGIN_LOCK_SECONDS: '60',
    MAILROOM_LOGIN_MAX_DELAY: '2000',
    MAILROOM_PROTOCOL_SWITCH_SWEEP: '5',
    MAILROOM_POP3_IDLE_TIMEOUT: '900',
    MAILROOM_IMAP_IDLE_TIMEOUT: '3600',
    MAILROOM_LOGIN_TIMEOUT: '30',
    MAILROOM_LMTP_TIMEOUT: '600',
    MAILROOM_ALLOW_PLAINTEXT_AUTH: 'true',
    MAILROOM_PROXY_PROTOCOL: 'IMAPS, pop3s,imaps',
    MAILROOM_PROXY_TRUSTED: '10.0.0.0/8, fd00::/8,192.0.2.10',
    MAILROOM_API_TRUST_PROXY: '10.1.0.0/16',
    MAILROOM_SHUTDOWN_TIMEOUT: '90',
    MAILROOM_WEBHOOK_MAX_AGE: '3600',
    MAILROOM_WEBHOOK_TIMEOUT: '30',
    UV_THREADPOOL_SIZE: '16',
  });
  t.same(config, {
    host: '0.0.0.0',
    httpPort: 9080,
    imapPort: 143,
    imapsPort: 993,
    pop3Port: 110,
    pop3sPort: 995,
    lmtpPort: 24,
    publicServers: {
      host: 'mail.example.net',
      imapPort: null,
      imapsPort: 10993,
      pop3Port: 110,
      pop3sPort: 10995,
      submission: { host: 'smtp.example.net', port: 10465, socketType: 'SSL' },
    },
    dataDir: '/var/lib/mailroom',
    databaseUrl: 'postgres://mail:secret@db.internal:5432/mailroom',
    databasePoolSize: 25,
    tlsCertPath: resolve('tls/cert.pem'),
    tlsKeyPath: '/etc/tls/key.pem',
    adminToken: 'an-admin-token-of-32-characters!',
    logLevel: 'debug',
    passwordMinLength: 12,
    apiBodyLimit: 2048,
    apiRateLimitPerIp: 0,
    apiRateLimitPerKey: 100,
    apiMaxEventLoopDelayMs: 250,
    maxMessageSize: 1048576,
    maxConnectionsPerIp: 10,
    maxConnectionsPerMailbox: 4,
    maxAuthFailures: 5,
    loginFailuresPerIp: 0,
    loginFailuresPerMailbox: 30,
    loginLockSeconds: 60,
    loginMaxDelayMs: 2000,
    protocolSwitchSweepMs: 5000,
    pop3IdleTimeoutMs: 900_000,
    imapIdleTimeoutMs: 3_600_000,
    loginTimeoutMs: 30_000,
    lmtpTimeoutMs: 600_000,
    allowPlaintextAuth: true,
    proxyProtocol: ['imaps', 'pop3s'],
    proxyTrusted: ['10.0.0.0/8', 'fd00::/8', '192.0.2.10'],
    apiTrustProxy: ['10.1.0.0/16'],
    shutdownTimeoutMs: 90_000,
    webhookMaxAgeMs: 3_600_000,
    webhookTimeoutMs: 30_000,
    threadPoolSize: 16,
  });
});

t.test('other accepted spellings', async (t) => {
  t.equal(loadConfig({ DATABASE_URL: 'postgresql://localhost/mail' }).databaseUrl, 'postgresql://localhost/mail');
  t.equal(loadConfig({ MAILROOM_HOST: '::' }).host, '::');
  t.equal(loadConfig({ MAILROOM_HOST: '::1' }).host, '::1');
  t.equal(loadConfig({ MAILROOM_HOST: 'localhost' }).host, 'localhost');
  t.equal(loadConfig({ MAILROOM_HOST: 'mail-1.internal.example' }).host, 'mail-1.internal.example');
  t.equal(loadConfig({ MAILROOM_HTTP_PORT: '0' }).httpPort, 0, '0 lets the system pick a port');
  t.same(loadConfig({ MAILROOM_PROXY_PROTOCOL: 'lmtp', MAILROOM_PROXY_TRUSTED: '10.0.0.5,::1' }).proxyTrusted, ['10.0.0.5', '::1'], 'LMTP with single addresses');
  t.same(loadConfig({ MAILROOM_PROXY_PROTOCOL: ' , ' }).proxyProtocol, [], 'an empty list: none');
  t.equal(loadConfig({ MAILROOM_HTTP_PORT: '65535' }).httpPort, 65535);
  t.equal(loadConfig({ MAILROOM_DATA_DIR: 'relative/dir' }).dataDir, resolve('relative/dir'));
  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
    t.equal(loadConfig({ MAILROOM_LOG_LEVEL: level }).logLevel, level);
  }
  t.equal(loadConfig({ MAILROOM_ADMIN_TOKEN: 'x'.repeat(16) }).adminToken, 'x'.repeat(16), '16 characters is enough');
});

t.test('`off` disables a listener, in any case', async (t) => {
  const config = loadConfig({
    MAILROOM_HTTP_PORT: 'off',
    MAILROOM_IMAP_PORT: 'OFF',
    MAILROOM_IMAPS_PORT: 'Off',
    MAILROOM_POP3_PORT: ' off ',
    MAILROOM_POP3S_PORT: 'off',
    MAILROOM_LMTP_PORT: 'off',
  });
  t.same(
    [config.httpPort, config.imapPort, config.imapsPort, config.pop3Port, config.pop3sPort, config.lmtpPort],
    [null, null, null, null, null, null],
  );
});

t.test('the public servers follow the bound ones unless set', async (t) => {
  t.equal(loadConfig({ MAILROOM_HOST: 'mail-1.internal.example' }).publicServers.host, 'mail-1.internal.example');
  t.equal(loadConfig({ MAILROOM_HOST: '0.0.0.0' }).publicServers.host, hostname().toLowerCase(), 'a wildcard is not dialable');
  t.equal(loadConfig({ MAILROOM_HOST: '::' }).publicServers.host, hostname().toLowerCase());
  t.equal(loadConfig({ MAILROOM_PUBLIC_HOST: '203.0.113.7' }).publicServers.host, '203.0.113.7');
  const bound = loadConfig({ MAILROOM_IMAP_PORT: 'off', MAILROOM_IMAPS_PORT: '0', MAILROOM_POP3_PORT: '110' }).publicServers;
  t.same([bound.imapPort, bound.imapsPort, bound.pop3Port], [null, null, 110], 'off and system-picked ports are not advertised');
  // Behind a proxy or NAT, a port the process does not bind can still be the one clients dial.
  const proxied = loadConfig({ MAILROOM_IMAPS_PORT: 'off', MAILROOM_PUBLIC_IMAPS_PORT: '993' }).publicServers;
  t.equal(proxied.imapsPort, 993);
});

t.test('MAILROOM_SUBMISSION_URL: smtps:// is TLS from the start, smtp:// is STARTTLS, each with its usual port', async (t) => {
  const submission = (value: string) => loadConfig({ MAILROOM_SUBMISSION_URL: value }).publicServers.submission;
  t.same(submission('smtps://smtp.example.net'), { host: 'smtp.example.net', port: 465, socketType: 'SSL' });
  t.same(submission('smtp://smtp.example.net'), { host: 'smtp.example.net', port: 587, socketType: 'STARTTLS' });
  t.same(submission('smtp://smtp.example.net:2525/'), { host: 'smtp.example.net', port: 2525, socketType: 'STARTTLS' });
  t.same(submission('smtps://[2001:db8::25]'), { host: '2001:db8::25', port: 465, socketType: 'SSL' });
});

const WRONG: [variable: string, env: Record<string, string>][] = [
  ['MAILROOM_HTTP_PORT', { MAILROOM_HTTP_PORT: 'abc' }],
  ['MAILROOM_HTTP_PORT', { MAILROOM_HTTP_PORT: '70000' }],
  ['MAILROOM_HTTP_PORT', { MAILROOM_HTTP_PORT: '-1' }],
  ['MAILROOM_HTTP_PORT', { MAILROOM_HTTP_PORT: '80.5' }],
  ['MAILROOM_IMAP_PORT', { MAILROOM_IMAP_PORT: 'imap' }],
  ['MAILROOM_IMAPS_PORT', { MAILROOM_IMAPS_PORT: '99999' }],
  ['MAILROOM_POP3_PORT', { MAILROOM_POP3_PORT: 'no' }],
  ['MAILROOM_POP3S_PORT', { MAILROOM_POP3S_PORT: '1e3' }],
  ['MAILROOM_LMTP_PORT', { MAILROOM_LMTP_PORT: '65536' }],
  ['DATABASE_URL', { DATABASE_URL: 'mysql://x' }],
  ['DATABASE_URL', { DATABASE_URL: 'not a url' }],
  ['DATABASE_URL', { DATABASE_URL: 'localhost:5432/mail' }],
  ['MAILROOM_LOG_LEVEL', { MAILROOM_LOG_LEVEL: 'loud' }],
  ['MAILROOM_ADMIN_TOKEN', { MAILROOM_ADMIN_TOKEN: 'short-token' }],
  ['MAILROOM_ADMIN_TOKEN', { MAILROOM_ADMIN_TOKEN: 'x'.repeat(15) }],
  ['MAILROOM_TLS_KEY', { MAILROOM_TLS_CERT: '/etc/tls/cert.pem' }],
  ['MAILROOM_TLS_CERT', { MAILROOM_TLS_KEY: '/etc/tls/key.pem' }],
  ['MAILROOM_HOST', { MAILROOM_HOST: 'bad host' }],
  ['MAILROOM_HOST', { MAILROOM_HOST: '-leading-hyphen.example' }],
  ['MAILROOM_HOST', { MAILROOM_HOST: 'http://0.0.0.0' }],
  ['MAILROOM_HOST', { MAILROOM_HOST: '127.0.0.1:8080' }],
  ['MAILROOM_PUBLIC_HOST', { MAILROOM_PUBLIC_HOST: '0.0.0.0' }],
  ['MAILROOM_PUBLIC_HOST', { MAILROOM_PUBLIC_HOST: '::' }],
  ['MAILROOM_PUBLIC_HOST', { MAILROOM_PUBLIC_HOST: 'mail.example.com:993' }],
  ['MAILROOM_PUBLIC_HOST', { MAILROOM_PUBLIC_HOST: 'mail<x>.example' }],
  ['MAILROOM_PUBLIC_IMAP_PORT', { MAILROOM_PUBLIC_IMAP_PORT: '0' }],
  ['MAILROOM_PUBLIC_IMAPS_PORT', { MAILROOM_PUBLIC_IMAPS_PORT: '65536' }],
  ['MAILROOM_PUBLIC_POP3_PORT', { MAILROOM_PUBLIC_POP3_PORT: 'pop' }],
  ['MAILROOM_PUBLIC_POP3S_PORT', { MAILROOM_PUBLIC_POP3S_PORT: '-995' }],
  ['MAILROOM_SUBMISSION_URL', { MAILROOM_SUBMISSION_URL: 'smtp.example.net' }],
  ['MAILROOM_SUBMISSION_URL', { MAILROOM_SUBMISSION_URL: 'https://smtp.example.net' }],
  ['MAILROOM_SUBMISSION_URL', { MAILROOM_SUBMISSION_URL: 'smtps://user:secret@smtp.example.net' }],
  ['MAILROOM_SUBMISSION_URL', { MAILROOM_SUBMISSION_URL: 'smtps://smtp.example.net/path' }],
  ['MAILROOM_SUBMISSION_URL', { MAILROOM_SUBMISSION_URL: 'smtps://smtp.example.net:0' }],
  ['MAILROOM_SUBMISSION_URL', { MAILROOM_SUBMISSION_URL: 'smtps://smtp.example.net:70000' }],
  ['MAILROOM_SUBMISSION_URL', { MAILROOM_SUBMISSION_URL: 'smtps://smtp_1.example.net' }],
  ['MAILROOM_DB_POOL_SIZE', { MAILROOM_DB_POOL_SIZE: '0' }],
  ['MAILROOM_DB_POOL_SIZE', { MAILROOM_DB_POOL_SIZE: 'many' }],
  ['MAILROOM_PASSWORD_MIN_LENGTH', { MAILROOM_PASSWORD_MIN_LENGTH: '0' }],
  ['MAILROOM_PASSWORD_MIN_LENGTH', { MAILROOM_PASSWORD_MIN_LENGTH: '1025' }],
  ['MAILROOM_API_BODY_LIMIT', { MAILROOM_API_BODY_LIMIT: '1mb' }],
  ['MAILROOM_API_BODY_LIMIT', { MAILROOM_API_BODY_LIMIT: '1023' }],
  ['MAILROOM_MAX_MESSAGE_SIZE', { MAILROOM_MAX_MESSAGE_SIZE: '10M' }],
  ['MAILROOM_API_RATE_LIMIT_PER_KEY', { MAILROOM_API_RATE_LIMIT_PER_KEY: '-1' }],
  ['MAILROOM_API_MAX_EVENT_LOOP_DELAY', { MAILROOM_API_MAX_EVENT_LOOP_DELAY: '1s' }],
  ['MAILROOM_POP3_IDLE_TIMEOUT', { MAILROOM_POP3_IDLE_TIMEOUT: '60' }],
  ['MAILROOM_MAX_AUTH_FAILURES', { MAILROOM_MAX_AUTH_FAILURES: '0' }],
  ['MAILROOM_LOGIN_FAILURES_PER_IP', { MAILROOM_LOGIN_FAILURES_PER_IP: 'ten' }],
  ['MAILROOM_LOGIN_FAILURES_PER_MAILBOX', { MAILROOM_LOGIN_FAILURES_PER_MAILBOX: '-1' }],
  ['MAILROOM_LOGIN_LOCK_SECONDS', { MAILROOM_LOGIN_LOCK_SECONDS: '0' }],
  ['MAILROOM_LOGIN_MAX_DELAY', { MAILROOM_LOGIN_MAX_DELAY: '60001' }],
  ['MAILROOM_PROTOCOL_SWITCH_SWEEP', { MAILROOM_PROTOCOL_SWITCH_SWEEP: '0' }],
  ['MAILROOM_MAX_CONNECTIONS_PER_MAILBOX', { MAILROOM_MAX_CONNECTIONS_PER_MAILBOX: '0' }],
  ['MAILROOM_IMAP_IDLE_TIMEOUT', { MAILROOM_IMAP_IDLE_TIMEOUT: '600' }],
  ['MAILROOM_LOGIN_TIMEOUT', { MAILROOM_LOGIN_TIMEOUT: '0' }],
  ['MAILROOM_LOGIN_TIMEOUT', { MAILROOM_LOGIN_TIMEOUT: '3601' }],
  ['MAILROOM_LMTP_TIMEOUT', { MAILROOM_LMTP_TIMEOUT: '5' }],
  ['MAILROOM_ALLOW_PLAINTEXT_AUTH', { MAILROOM_ALLOW_PLAINTEXT_AUTH: 'maybe' }],
  ['MAILROOM_PROXY_PROTOCOL', { MAILROOM_PROXY_PROTOCOL: 'imap,smtp' }],
  ['MAILROOM_PROXY_PROTOCOL', { MAILROOM_PROXY_PROTOCOL: 'true' }],
  ['MAILROOM_PROXY_TRUSTED', { MAILROOM_PROXY_TRUSTED: 'balancer.internal' }],
  ['MAILROOM_PROXY_TRUSTED', { MAILROOM_PROXY_TRUSTED: '10.0.0.0/33' }],
  ['MAILROOM_PROXY_TRUSTED', { MAILROOM_PROXY_TRUSTED: 'fd00::/129' }],
  ['MAILROOM_PROXY_TRUSTED', { MAILROOM_PROXY_TRUSTED: '10.0.0.0/8/8' }],
  ['MAILROOM_PROXY_TRUSTED', { MAILROOM_PROXY_TRUSTED: '10.0.0.0/' }],
  // smtp-server matches single addresses only.
  ['MAILROOM_PROXY_TRUSTED', { MAILROOM_PROXY_PROTOCOL: 'lmtp', MAILROOM_PROXY_TRUSTED: '10.0.0.0/8' }],
  ['MAILROOM_API_TRUST_PROXY', { MAILROOM_API_TRUST_PROXY: 'true' }],
  ['MAILROOM_SHUTDOWN_TIMEOUT', { MAILROOM_SHUTDOWN_TIMEOUT: '0' }],
  ['MAILROOM_SHUTDOWN_TIMEOUT', { MAILROOM_SHUTDOWN_TIMEOUT: '10s' }],
  ['MAILROOM_WEBHOOK_MAX_AGE', { MAILROOM_WEBHOOK_MAX_AGE: '59' }],
  ['MAILROOM_WEBHOOK_MAX_AGE', { MAILROOM_WEBHOOK_MAX_AGE: '2592001' }],
  ['MAILROOM_WEBHOOK_TIMEOUT', { MAILROOM_WEBHOOK_TIMEOUT: '0' }],
  ['MAILROOM_WEBHOOK_TIMEOUT', { MAILROOM_WEBHOOK_TIMEOUT: '5m' }],
  ['UV_THREADPOOL_SIZE', { UV_THREADPOOL_SIZE: '0' }],
  ['UV_THREADPOOL_SIZE', { UV_THREADPOOL_SIZE: '1025' }],
  // A value pasted with a line break must still give one line to print.
  ['MAILROOM_HTTP_PORT', { MAILROOM_HTTP_PORT: '80\n80' }],
  ['MAILROOM_LOG_LEVEL', { MAILROOM_LOG_LEVEL: 'info\r\nwarn' }],
];

t.test('each wrong value is a ConfigError: one line, starting with the variable', async (t) => {
  for (const [variable, env] of WRONG) {
    const label = JSON.stringify(env);
    let error: unknown;
    try {
      loadConfig(env);
    } catch (caught) {
      error = caught;
    }
    if (!t.type(error, ConfigError, `${label} is refused`)) continue;
    const message = (error as ConfigError).message;
    t.ok(message.startsWith(`${variable}: `), `${label}: '${message}' starts with ${variable}`);
    t.notMatch(message, /[\r\n]/, `${label}: the message is one line`);
    t.ok(message.length > variable.length + 10, `${label}: the message says what is wrong`);
  }
});

t.test('a wrong DATABASE_URL or MAILROOM_SUBMISSION_URL is not echoed back, as it may hold a password', async (t) => {
  const cases = [
    { DATABASE_URL: 'mysql://mail:hunter2secret@db/mail' },
    { DATABASE_URL: 'mail:hunter2secret@db' },
    { MAILROOM_SUBMISSION_URL: 'smtps://mail:hunter2secret@smtp.example.net' },
  ];
  for (const env of cases) {
    t.throws(() => loadConfig(env), ConfigError);
    try {
      loadConfig(env);
    } catch (error) {
      t.notMatch((error as Error).message, /hunter2secret/);
    }
  }
});

t.test('a too short admin token is not echoed back', async (t) => {
  try {
    loadConfig({ MAILROOM_ADMIN_TOKEN: 'tinysecret' });
    t.fail('accepted');
  } catch (error) {
    t.notMatch((error as Error).message, /tinysecret/);
  }
});

t.test('`mailroom migrate` with a wrong value exits 2 with one clear line', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'mailroom-config-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const child = spawn(process.execPath, [BIN, 'migrate'], {
    env: { PATH: process.env.PATH, ...NO_CHILD_COVERAGE, MAILROOM_DATA_DIR: dataDir, MAILROOM_HTTP_PORT: 'abc' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  t.equal(code, 2);
  t.equal(stdout, '');
  const lines = stderr.split('\n').filter((line) => line !== '');
  t.equal(lines.length, 1, `one line on stderr, got:\n${stderr}`);
  t.match(lines[0], /MAILROOM_HTTP_PORT/);
  t.match(lines[0], /'abc'/);
  t.notMatch(stderr, /\bat \S+:\d+/, 'no stack trace');
});
