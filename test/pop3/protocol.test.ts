import { setTimeout as sleep } from 'node:timers/promises';
import { eq, sql } from 'drizzle-orm';
import t from 'tap';
import { accounts } from '../../src/db/schema/index.js';
import { LineClient } from '../helpers/line-client.js';
import { ACTOR, PASSWORD, startTestPop3 } from '../helpers/pop3.js';

const pop3 = await startTestPop3(t);
const { services } = pop3;

function message(subject: string, body = 'Hello.\r\n'): Buffer {
  return Buffer.from(`From: sender@example.net\r\nTo: someone@pop.test\r\nSubject: ${subject}\r\n\r\n${body}`);
}

async function deliver(address: string, raw: Buffer): Promise<void> {
  const [result] = await services.mail.deliver(raw, [address]);
  if (!result!.delivered) throw new Error(`setup: delivery failed: ${result!.error.code}`);
}

/** A logged-in session: greeting read, USER and PASS accepted. */
async function session(address: string, options: { tls?: boolean } = {}): Promise<LineClient> {
  const client = await LineClient.connect(options.tls ? pop3.securePort : pop3.port, options);
  await client.readLine();
  await client.command(`USER ${address}`);
  const pass = await client.command(`PASS ${PASSWORD}`);
  if (!pass?.startsWith('+OK')) throw new Error(`login failed: ${pass}`);
  return client;
}

async function inboxMessages(accountId: number) {
  const inbox = (await services.mail.folders.list(accountId)).find((f) => f.name === 'INBOX')!;
  return { inbox, messages: await services.mail.list(accountId, inbox.id) };
}

t.test('greeting and CAPA before and after login', async (t) => {
  await pop3.mailbox('capa@pop.test');
  const client = await LineClient.connect(pop3.port);
  t.teardown(() => client.close());
  t.match(await client.readLine(), /^\+OK /);
  t.match(await client.command('CAPA'), /^\+OK/);
  const before = await client.readMultiline();
  for (const capability of ['TOP', 'UIDL', 'USER', 'SASL PLAIN', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'STLS']) {
    t.ok(before.includes(capability), `${capability} offered before login`);
  }
  t.ok(before.some((c) => c.startsWith('IMPLEMENTATION ')));
  await client.command('USER capa@pop.test');
  t.match(await client.command(`PASS ${PASSWORD}`), /^\+OK/);
  t.match(await client.command('CAPA'), /^\+OK/);
  const after = await client.readMultiline();
  t.notOk(after.includes('USER'), 'no USER once logged in');
  t.notOk(after.includes('STLS'), 'no STLS once logged in');
  t.ok(after.includes('UIDL'));
});

t.test('STAT, LIST, UIDL, RETR with exact octets, byte stuffing and CRLF line endings', async (t) => {
  const id = await pop3.mailbox('retr@pop.test');
  const stuffed = Buffer.from('Subject: dots\n\n.starts with a dot\n..two dots\nplain\n.\nlast line without end');
  await deliver('retr@pop.test', message('first'));
  await deliver('retr@pop.test', stuffed);
  const client = await session('retr@pop.test');
  t.teardown(() => client.close());
  const crlf = Buffer.from(stuffed.toString('latin1').replace(/\n/g, '\r\n'), 'latin1');
  t.equal(await client.command('STAT'), `+OK 2 ${message('first').length + crlf.length}`, 'STAT counts CRLF-normalised octets');
  t.equal(await client.command('LIST'), '+OK 2 messages');
  t.same(await client.readMultiline(), [`1 ${message('first').length}`, `2 ${crlf.length}`]);
  t.equal(await client.command('LIST 2'), `+OK 2 ${crlf.length}`);
  t.match(await client.command('LIST 3'), /^-ERR/);
  t.match(await client.command('LIST x'), /^-ERR/);

  const { messages } = await inboxMessages(id);
  t.equal(await client.command('UIDL'), '+OK Unique-id listing follows');
  t.same(await client.readMultiline(), messages.map((m, i) => `${i + 1} ${m.key}`));
  t.equal(await client.command('UIDL 1'), `+OK 1 ${messages[0]!.key}`);

  t.match(await client.command('RETR 2'), /^\+OK/);
  t.same(
    await client.readMultiline(),
    ['Subject: dots', '', '..starts with a dot', '...two dots', 'plain', '..', 'last line without end'],
    'lines starting with a dot are stuffed, and every line ends CRLF',
  );
  t.match(await client.command('TOP 1 0'), /^\+OK/);
  t.same(await client.readMultiline(), ['From: sender@example.net', 'To: someone@pop.test', 'Subject: first', '']);
  t.match(await client.command('TOP 2 2'), /^\+OK/);
  t.same(await client.readMultiline(), ['Subject: dots', '', '..starts with a dot', '...two dots']);
  t.match(await client.command('TOP 2'), /^-ERR/, 'TOP needs a line count');
});

t.test('DELE, RSET, QUIT: removal applies only at QUIT, and a dropped connection deletes nothing', async (t) => {
  const id = await pop3.mailbox('dele@pop.test');
  for (const subject of ['one', 'two', 'three']) await deliver('dele@pop.test', message(subject));

  const dropped = await session('dele@pop.test');
  t.match(await dropped.command('DELE 1'), /^\+OK/);
  dropped.close();
  await sleep(200);
  t.equal((await inboxMessages(id)).messages.length, 3, 'a dropped connection deletes nothing');

  const client = await session('dele@pop.test');
  t.match(await client.command('DELE 1'), /^\+OK/);
  t.match(await client.command('DELE 1'), /^-ERR/, 'a deleted message is gone for the session');
  t.match(await client.command('RETR 1'), /^-ERR/);
  t.equal(await client.command('STAT'), `+OK 2 ${message('two').length + message('three').length}`);
  t.match(await client.command('RSET'), /^\+OK/);
  t.equal(await client.command('STAT'), `+OK 3 ${[message('one'), message('two'), message('three')].reduce((n, m) => n + m.length, 0)}`, 'RSET brings it back');
  t.match(await client.command('DELE 2'), /^\+OK/);
  t.match(await client.command('QUIT'), /^\+OK/);
  t.equal(await client.readLine(), null, 'QUIT closes the connection');
  const { messages } = await inboxMessages(id);
  t.equal(messages.length, 2, 'the message is removed');
  const [usage] = await pop3.database.db.select().from(accounts).where(eq(accounts.id, id));
  t.equal(usage!.usedMessages, 2, 'and no longer counts against the quota');
});

t.test('pop3DeleteMode hide and trash', async (t) => {
  const hideId = await pop3.mailbox('hide@pop.test', { pop3DeleteMode: 'hide' });
  const trashId = await pop3.mailbox('trash@pop.test', { pop3DeleteMode: 'trash' });
  for (const address of ['hide@pop.test', 'trash@pop.test']) {
    await deliver(address, message('keep'));
    await deliver(address, message('gone'));
    const client = await session(address);
    t.match(await client.command('DELE 2'), /^\+OK/);
    t.match(await client.command('QUIT'), /^\+OK/);
    const again = await session(address);
    t.equal(await again.command('STAT'), `+OK 1 ${message('keep').length}`, `${address}: POP3 no longer offers it`);
    t.match(await again.command('QUIT'), /^\+OK/);
  }
  t.equal((await inboxMessages(hideId)).messages.length, 2, 'hide: IMAP still sees both in INBOX');
  t.equal((await inboxMessages(trashId)).messages.length, 1, 'trash: one left in INBOX');
  const trash = (await services.mail.folders.usage(trashId)).find((f) => f.name === 'Trash')!;
  t.equal(trash.messages, 1, 'trash: the other moved to Trash');
});

t.test('failed logins read the same, and too many close the connection', async (t) => {
  await pop3.mailbox('known@pop.test');
  const client = await LineClient.connect(pop3.port);
  await client.readLine();
  await client.command('USER nobody@pop.test');
  const unknown = await client.command(`PASS ${PASSWORD}`);
  await client.command('USER known@pop.test');
  const wrong = await client.command('PASS not the password');
  t.match(unknown, /^-ERR \[AUTH\] /);
  t.equal(unknown, wrong, 'unknown address and wrong password give the same answer');
  t.match(await client.command('PASS x'), /^-ERR/, 'PASS without USER');
  await client.command('USER known@pop.test');
  t.match(await client.command('PASS still wrong'), /too many failures/);
  t.equal(await client.readLine(), null, 'closed after the third failure');
});

t.test('suspended mailboxes and POP3 switched off are refused with [AUTH]', async (t) => {
  await pop3.mailbox('off@pop.test', { protocols: { imap: true, pop3: false } });
  await pop3.mailbox('suspended@pop.test', { status: 'suspended' });
  for (const [address, reason] of [
    ['off@pop.test', /POP3 is disabled/],
    ['suspended@pop.test', /suspended/],
  ] as const) {
    const client = await LineClient.connect(pop3.port);
    t.teardown(() => client.close());
    await client.readLine();
    await client.command(`USER ${address}`);
    const answer = await client.command(`PASS ${PASSWORD}`);
    t.match(answer, /^-ERR \[AUTH\] /);
    t.match(answer, reason);
  }
});

t.test('AUTH PLAIN with an initial response, with a continuation, and cancelled', async (t) => {
  await pop3.mailbox('plain@pop.test');
  const credentials = Buffer.from(`\0plain@pop.test\0${PASSWORD}`).toString('base64');
  const initial = await LineClient.connect(pop3.port);
  t.teardown(() => initial.close());
  await initial.readLine();
  t.match(await initial.command(`AUTH PLAIN ${credentials}`), /^\+OK/);
  await initial.command('QUIT');

  const continued = await LineClient.connect(pop3.port);
  t.teardown(() => continued.close());
  await continued.readLine();
  t.equal(await continued.command('AUTH PLAIN'), '+ ');
  t.match(await continued.command(credentials), /^\+OK/);
  await continued.command('QUIT');

  const cancelled = await LineClient.connect(pop3.port);
  t.teardown(() => cancelled.close());
  await cancelled.readLine();
  t.equal(await cancelled.command('AUTH PLAIN'), '+ ');
  t.match(await cancelled.command('*'), /^-ERR/);
  t.match(await cancelled.command('AUTH PLAIN !!!'), /^-ERR \[AUTH\]/, 'not base64');
  t.match(await cancelled.command('AUTH LOGIN'), /^-ERR/, 'only PLAIN');
  t.match(await cancelled.command('AUTH'), /^\+OK/);
  t.same(await cancelled.readMultiline(), ['PLAIN']);
});

t.test('a maildrop is locked to one session; a dropped session frees it', async (t) => {
  await pop3.mailbox('locked@pop.test');
  const first = await session('locked@pop.test');
  const second = await LineClient.connect(pop3.port);
  t.teardown(() => second.close());
  await second.readLine();
  await second.command('USER locked@pop.test');
  t.match(await second.command(`PASS ${PASSWORD}`), /^-ERR \[IN-USE\]/);
  first.close();
  await sleep(200);
  await second.command('USER locked@pop.test');
  t.match(await second.command(`PASS ${PASSWORD}`), /^\+OK/, 'free again once the first session dropped');
});

t.test('the scan listing is fixed for the session; \\Deleted messages are not offered', async (t) => {
  const id = await pop3.mailbox('snapshot@pop.test');
  await deliver('snapshot@pop.test', message('old'));
  await deliver('snapshot@pop.test', message('flagged'));
  const { inbox, messages } = await inboxMessages(id);
  await services.mail.changeFlags(id, inbox.id, [messages[1]!.uid], 'add', ['\\Deleted']);
  const client = await session('snapshot@pop.test');
  t.equal(await client.command('STAT'), `+OK 1 ${message('old').length}`, 'the \\Deleted one is not offered');
  await deliver('snapshot@pop.test', message('new'));
  t.equal(await client.command('STAT'), `+OK 1 ${message('old').length}`, 'new mail waits for the next session');
  await client.command('QUIT');
  const next = await session('snapshot@pop.test');
  t.teardown(() => next.close());
  t.match(await next.command('STAT'), /^\+OK 2 /);
});

t.test('UIDLs stay the same when other messages go', async (t) => {
  const id = await pop3.mailbox('uidl@pop.test');
  for (const subject of ['a', 'b', 'c']) await deliver('uidl@pop.test', message(subject));
  const client = await session('uidl@pop.test');
  await client.command('UIDL');
  const before = await client.readMultiline();
  await client.command('DELE 1');
  await client.command('QUIT');
  const again = await session('uidl@pop.test');
  t.teardown(() => again.close());
  await again.command('UIDL');
  const after = (await again.readMultiline()).map((line) => line.split(' ')[1]);
  t.same(after, before.slice(1).map((line) => line.split(' ')[1]));
  t.equal(new Set(after).size, after.length, 'unique');
  t.equal((await inboxMessages(id)).messages.length, 2);
});

t.test('switching POP3 off, suspending or a new password ends live sessions', async (t) => {
  const changes: [string, Record<string, unknown> | null][] = [
    ['pop3', { protocols: { pop3: false } }],
    ['status', { status: 'suspended' }],
    ['password', null],
  ];
  for (const [label, change] of changes) {
    const address = `live-${label}@pop.test`;
    await pop3.mailbox(address);
    const client = await session(address);
    if (change) await services.mailboxes.update(address, change, ACTOR);
    else await services.mailboxes.setPassword(address, { password: 'a brand new password' }, ACTOR);
    t.equal(await client.readLine(), null, `${label}: the connection is closed`);
  }
});

t.test('pipelined commands are answered in order', async (t) => {
  await pop3.mailbox('pipe@pop.test');
  await deliver('pipe@pop.test', message('piped'));
  const client = await LineClient.connect(pop3.port);
  t.teardown(() => client.close());
  await client.readLine();
  client.send(`USER pipe@pop.test\r\nPASS ${PASSWORD}\r\nSTAT\r\nNOOP\r\nLIST 1\r\nQUIT\r\n`);
  const answers = [];
  for (let i = 0; i < 6; i++) answers.push(await client.readLine());
  t.match(answers, [/^\+OK/, /^\+OK/, `+OK 1 ${message('piped').length}`, /^\+OK/, `+OK 1 ${message('piped').length}`, /^\+OK/]);
});

t.test('garbage gets -ERR and the session goes on', async (t) => {
  const client = await LineClient.connect(pop3.port);
  t.teardown(() => client.close());
  await client.readLine();
  t.match(await client.command('HELLO'), /^-ERR/);
  t.match(await client.command('STAT'), /^-ERR/, 'not before login');
  t.match(await client.command('x'.repeat(5000)), /^-ERR .*too long/i);
  t.match(await client.command('\u0000\u00ff\u0001'), /^-ERR/);
  t.match(await client.command('USER'), /^-ERR/);
  t.match(await client.command('NOOP'), /^-ERR/, 'NOOP belongs to the transaction state');
  t.match(await client.command('QUIT'), /^\+OK/);
});

t.test('STLS upgrades the connection; POP3S is TLS from the start', async (t) => {
  await pop3.mailbox('tls@pop.test');
  const client = await LineClient.connect(pop3.port);
  t.teardown(() => client.close());
  await client.readLine();
  t.match(await client.command('STLS'), /^\+OK/);
  await client.startTls();
  t.match(await client.command('CAPA'), /^\+OK/);
  t.notOk((await client.readMultiline()).includes('STLS'), 'STLS is not offered twice');
  await client.command('USER tls@pop.test');
  t.match(await client.command(`PASS ${PASSWORD}`), /^\+OK/);
  await client.command('QUIT');

  const secure = await session('tls@pop.test', { tls: true });
  t.teardown(() => secure.close());
  t.match(await secure.command('STAT'), /^\+OK 0 0/);
});

t.test('a legacy password hash is upgraded to argon2id at the first login', async (t) => {
  // SHA512-CRYPT of PASSWORD, as exported from Dovecot or cPanel.
  const { execFileSync } = await import('node:child_process');
  const hash = execFileSync('python3', ['-c', `import crypt; print(crypt.crypt(${JSON.stringify(PASSWORD)}, crypt.mksalt(crypt.METHOD_SHA512)))`], {
    stderr: 'ignore',
  } as never)
    .toString()
    .trim();
  await services.domains.create({ name: 'legacy.test' }, ACTOR);
  await services.mailboxes.create({ address: 'old@legacy.test', passwordHash: hash }, ACTOR);
  const client = await session('old@legacy.test');
  t.teardown(() => client.close());
  const [row] = await pop3.database.db.select().from(accounts).where(eq(accounts.address, 'old@legacy.test'));
  t.match(row!.passwordHash, /^\$argon2id\$/);
  t.equal(row!.lastLoginProtocol, 'pop3');
  t.equal(row!.lastLoginIp, '127.0.0.1');
});

t.test('support sees live sessions and can end them', async (t) => {
  await pop3.mailbox('seen@pop.test');
  const client = await session('seen@pop.test', { tls: true });
  const [live] = await services.sessions.list('seen@pop.test', ACTOR);
  t.match(live, { protocol: 'pop3', remoteIp: '127.0.0.1', tls: true, since: String });
  await services.sessions.endAll('seen@pop.test', ACTOR);
  t.equal(await client.readLine(), null, 'the session is closed');
  await sleep(200);
  t.same(await services.sessions.list('seen@pop.test', ACTOR), [], 'and no longer listed');
  const [event] = (await services.audit.list({ target: 'seen@pop.test' }, { limit: 1 }, ACTOR)).items;
  t.equal(event!.action, 'mailbox.sessions.end');
});

t.test('a second gateway on the same database answers IN-USE', { skip: pop3.url === null && 'one process owns an embedded database' }, async (t) => {
  await pop3.mailbox('shared@pop.test');
  const other = await startTestPop3(t, { url: pop3.url });
  const first = await session('shared@pop.test');
  const second = await LineClient.connect(other.port);
  t.teardown(() => second.close());
  await second.readLine();
  await second.command('USER shared@pop.test');
  t.match(await second.command(`PASS ${PASSWORD}`), /^-ERR \[IN-USE\]/);
  t.equal((await other.services.sessions.list('shared@pop.test', ACTOR)).length, 1, 'the other gateway lists the session');
  await first.command('QUIT');
  await second.command('USER shared@pop.test');
  t.match(await second.command(`PASS ${PASSWORD}`), /^\+OK/);
});

t.test('a remembered password stops working the moment the password changes', async (t) => {
  await pop3.mailbox('cache@pop.test');
  for (let i = 0; i < 2; i++) await (await session('cache@pop.test')).command('QUIT');
  await services.mailboxes.setPassword('cache@pop.test', { password: 'the next password' }, ACTOR);
  const client = await LineClient.connect(pop3.port);
  t.teardown(() => client.close());
  await client.readLine();
  await client.command('USER cache@pop.test');
  t.match(await client.command(`PASS ${PASSWORD}`), /^-ERR \[AUTH\]/, 'the old password is refused');
  await client.command('USER cache@pop.test');
  t.match(await client.command('PASS the next password'), /^\+OK/, 'the new one works');
});

t.test('idle sessions are closed, and one address may hold only so many connections', async (t) => {
  const limited = await startTestPop3(t, { maxConnectionsPerIp: 2, idleTimeoutMs: 300 });
  const idle = await LineClient.connect(limited.port);
  t.match(await idle.readLine(), /^\+OK/);
  t.match(await idle.readLine(), /^-ERR .*idle/i, 'told why');
  t.equal(await idle.readLine(), null, 'then closed');

  const first = await LineClient.connect(limited.port);
  const second = await LineClient.connect(limited.port);
  const third = await LineClient.connect(limited.port);
  t.teardown(() => [first, second, third].forEach((c) => c.close()));
  t.match(await first.readLine(), /^\+OK/);
  t.match(await second.readLine(), /^\+OK/);
  t.match(await third.readLine(), /^-ERR \[SYS\/TEMP\] Too many connections/);
  t.equal(await third.readLine(), null);
});

t.test('the gateway keeps one LISTEN session open across logins and logouts', { skip: pop3.url === null && 'needs a Postgres server' }, async (t) => {
  await pop3.mailbox('listen@pop.test');
  const listening = async () => {
    const result = (await pop3.database.db.execute(
      sql`select pid from pg_stat_activity where datname = current_database() and query ilike 'listen%'`,
    )) as unknown as { rows: { pid: number }[] };
    return result.rows.map((row) => row.pid);
  };
  const before = await listening();
  t.equal(before.length, 1, 'listening before any session');
  for (let i = 0; i < 2; i++) await (await session('listen@pop.test')).command('QUIT');
  await sleep(100);
  t.same(await listening(), before, 'the same session, still listening, after the last logout');
});
