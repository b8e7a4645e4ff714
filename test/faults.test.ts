import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import t from 'tap';
import { cuttableProxy } from './helpers/cuttable-proxy.js';
import { freshDatabaseUrl } from './helpers/database.js';
import { LineClient, run } from './helpers/line-client.js';
import { mailPorts, startServer } from './helpers/server.js';
import { dotStuff, RawLmtp } from './lmtp/clients.js';

const ADMIN = 'faults-test-admin-token';
const PASSWORD = 'correct horse battery staple';
const ADDRESS = 'ann@faults.test';
/** A bound for any one answer, far above what a healthy server needs: a hang fails, slowness does not. */
const ANSWER_BOUND_MS = 45_000;
/** The outage lasts as long as its checks take, or this long (FAULTS_OUTAGE_SECONDS=30 for the long case). */
const OUTAGE_MS = Number(process.env.FAULTS_OUTAGE_SECONDS ?? 0) * 1000;

const serverUrl = await freshDatabaseUrl(t);
const skip = serverUrl === null && 'the outage is a Postgres server going away; embedded has none';

async function waitFor(done: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer to ${what} within ${ANSWER_BOUND_MS} ms`)), ANSWER_BOUND_MS);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

interface Attempt {
  id: string;
  /** The reply to DATA (or the command refused before it); null when the connection died first. */
  code: number | null;
  text: string;
}

/** An MTA stand-in: one message at a time over LMTP, a new connection whenever one dies. */
function deliveryLoop(port: number) {
  const attempts: Attempt[] = [];
  let stopped = false;
  const loop = (async () => {
    let lmtp: RawLmtp | null = null;
    for (let n = 0; !stopped; n++) {
      const attempt: Attempt = { id: `faults-${n}`, code: null, text: '' };
      attempts.push(attempt);
      try {
        if (lmtp === null) {
          lmtp = await RawLmtp.open(port);
          await lmtp.command('LHLO mta.test');
        }
        for (const line of ['MAIL FROM:<mta@example.net>', `RCPT TO:<${ADDRESS}>`, 'DATA']) {
          const reply = await within(lmtp.command(line), line);
          if (!/^(250|354)/.test(reply)) throw Object.assign(new Error(reply), { reply });
        }
        const body = Buffer.from(`Message-ID: <${attempt.id}@faults.test>\r\nSubject: ${attempt.id}\r\n\r\nHello.\r\n`);
        lmtp.write(`${dotStuff(body)}.\r\n`);
        const [reply] = await within(lmtp.replies(1), `the DATA of ${attempt.id}`);
        attempt.code = Number(reply!.slice(0, 3));
        attempt.text = reply!;
      } catch (error) {
        const reply = (error as { reply?: string }).reply;
        if (reply !== undefined) {
          attempt.code = Number(reply.slice(0, 3));
          attempt.text = reply;
        } else {
          attempt.text = String(error);
          lmtp?.close();
          lmtp = null;
          await sleep(100);
        }
      }
      // An MTA with a queue does not hammer a server that defers: a short pause after a 451.
      if (attempt.code !== 250) await sleep(100);
    }
    lmtp?.close();
  })();
  return {
    attempts,
    acked: (from = 0) => attempts.slice(from).filter((a) => a.code === 250).length,
    deferred: (from = 0) => attempts.slice(from).filter((a) => a.code === 451).length,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

async function api(url: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: text ? JSON.parse(text) : null };
}

async function readUntil(client: LineClient, pattern: RegExp, timeoutMs = ANSWER_BOUND_MS): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const line = await client.readLine(timeoutMs);
    if (line === null) return lines;
    lines.push(line);
    if (pattern.test(line)) return lines;
  }
}

async function pop3Login(port: number): Promise<{ client: LineClient; reply: string | null }> {
  const client = await LineClient.connect(port);
  await client.readLine();
  await client.command(`USER ${ADDRESS}`);
  client.send(`PASS ${PASSWORD}\r\n`);
  return { client, reply: await client.readLine(ANSWER_BOUND_MS) };
}

/** Message-ID -> copies stored in the mailbox, read from the database itself (not through the proxy). */
async function storedCopies(url: string): Promise<Map<string, number>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ data: Buffer }>(
      `select b.data from messages m join blobs b on b.hash = m.blob_hash join accounts a on a.id = m.account_id
        where a.address = $1`,
      [ADDRESS],
    );
    const copies = new Map<string, number>();
    for (const { data } of rows) {
      const id = /^Message-ID: <([^@]+)@faults\.test>/m.exec(data.toString('latin1'))?.[1];
      if (id) copies.set(id, (copies.get(id) ?? 0) + 1);
    }
    return copies;
  } finally {
    await client.end();
  }
}

for (const mode of ['refuse', 'blackhole'] as const) {
  const title =
    mode === 'refuse'
      ? 'Postgres restarting (every connection dropped, new ones refused)'
      : 'Postgres unreachable (every connection dropped, new ones unanswered)';
  t.test(`${title}: every door says "later", then all recovers with nothing lost`, { skip }, async (t) => {
    const databaseUrl = (await freshDatabaseUrl(t))!;
    const proxy = await cuttableProxy(t, databaseUrl);
    const ports = await mailPorts();
    const server = await startServer(t, { MAILROOM_ADMIN_TOKEN: ADMIN, DATABASE_URL: proxy.url, ...ports });
    t.equal((await api(server.url, 'POST', '/v1/domains', { name: 'faults.test' })).status, 201);
    t.equal((await api(server.url, 'POST', '/v1/mailboxes', { address: ADDRESS, password: PASSWORD })).status, 201);

    const deliveries = deliveryLoop(Number(ports.MAILROOM_LMTP_PORT));
    t.teardown(() => deliveries.stop());
    await waitFor(() => deliveries.acked() >= 3, 'deliveries before the outage');

    const imap = await LineClient.connect(Number(ports.MAILROOM_IMAP_PORT));
    t.teardown(() => imap.close());
    await imap.readLine();
    t.match((await run(imap, `a LOGIN ${ADDRESS} "${PASSWORD}"`)).at(-1), /^a OK/);
    t.match((await run(imap, 'b SELECT INBOX')).at(-1), /^b OK/);
    t.equal(await imap.command('c IDLE'), '+ idling');
    const pop3 = await pop3Login(Number(ports.MAILROOM_POP3_PORT));
    t.teardown(() => pop3.client.close());
    t.match(pop3.reply, /^\+OK/, 'a POP3 session is open before the outage');

    proxy.cut(mode);
    const outageEnds = Date.now() + OUTAGE_MS;
    const cutAt = deliveries.attempts.length;
    await waitFor(() => deliveries.deferred(cutAt) >= 1, 'a delivery deferred during the outage');

    const [ready, mailbox, imapAnswers, pop3Answer, pop3Login2] = await Promise.all([
      api(server.url, 'GET', '/readyz'),
      api(server.url, 'GET', `/v1/mailboxes/${ADDRESS}`),
      (async () => {
        imap.send('DONE\r\n');
        const idleEnd = await readUntil(imap, /^c |^\* BYE/);
        if (idleEnd.at(-1)?.startsWith('* BYE')) return idleEnd;
        // A command that needs the database.
        imap.send('d STATUS INBOX (MESSAGES)\r\n');
        return [...idleEnd, ...(await readUntil(imap, /^d |^\* BYE/))];
      })(),
      (async () => {
        pop3.client.send('RETR 1\r\n');
        return [await pop3.client.readLine(ANSWER_BOUND_MS), await pop3.client.readLine(ANSWER_BOUND_MS)];
      })(),
      pop3Login(Number(ports.MAILROOM_POP3_PORT)),
    ]);
    t.equal(ready.status, 503, '/readyz says not ready');
    t.match(ready.type, 'application/problem+json');
    t.match(ready.body, { status: 503, code: 'database_unavailable' });
    t.equal(mailbox.status, 503, 'an API call answers 503');
    t.match(mailbox.type, 'application/problem+json');
    t.match(mailbox.body, { status: 503, code: 'database_unavailable' });
    t.ok(imapAnswers.some((line) => /^d NO \[UNAVAILABLE\] |^\* BYE /.test(line)), `IMAP says unavailable (${imapAnswers.join(' | ')})`);
    // Its maildrop lock died with the database session: another session could take the maildrop now.
    t.same(pop3Answer, ['-ERR [SYS/TEMP] The mailbox lock was lost; log in again', null], 'the open POP3 session is ended');
    t.match(pop3Login2.reply, /^-ERR \[SYS\/TEMP\] /, 'a POP3 login during the outage is refused for now');
    pop3Login2.client.close();

    await sleep(outageEnds - Date.now());
    const outage = { attempts: deliveries.attempts.length - cutAt, deferred: deliveries.deferred(cutAt) };
    proxy.restore();
    await waitFor(async () => (await api(server.url, 'GET', '/readyz')).status === 200, '/readyz after the outage');
    const restoredAt = deliveries.attempts.length;
    await waitFor(() => deliveries.acked(restoredAt) >= 3, 'deliveries after the outage');
    t.equal((await api(server.url, 'GET', `/v1/mailboxes/${ADDRESS}`)).status, 200, 'the API answers again');

    // The same IMAP session, or a new one if the outage ended it, is told of mail that arrived after.
    let session = imap;
    if (imapAnswers.some((line) => line.startsWith('* BYE'))) {
      session = await LineClient.connect(Number(ports.MAILROOM_IMAP_PORT));
      t.teardown(() => session.close());
      await session.readLine();
      await run(session, `a LOGIN ${ADDRESS} "${PASSWORD}"`);
      await run(session, 'b SELECT INBOX');
    }
    t.equal(await session.command('e IDLE'), '+ idling');
    const before = deliveries.acked();
    await waitFor(() => deliveries.acked() > before, 'a delivery during IDLE');
    const pushed = await readUntil(session, /^\* \d+ EXISTS$/);
    t.match(pushed.at(-1), /^\* \d+ EXISTS$/, 'IDLE pushes new mail after the outage');
    session.send('DONE\r\n');

    const after = await pop3Login(Number(ports.MAILROOM_POP3_PORT));
    t.match(after.reply, /^\+OK/, 'POP3 logs in again');
    after.client.close();

    await deliveries.stop();
    const { attempts } = deliveries;
    const copies = await storedCopies(databaseUrl);
    const deferred = attempts.filter((a) => a.code === 451);
    t.ok(deferred.every((a) => a.text.startsWith('451 4.3.0 ')), 'every deferral is 451 4.3.0');
    t.same(attempts.filter((a) => a.code !== null && a.code >= 500), [], 'nothing was refused for good');
    const acked = attempts.filter((a) => a.code === 250);
    t.same(acked.filter((a) => copies.get(a.id) !== 1).map((a) => a.id), [], 'every message answered 250 is stored exactly once');
    t.same([...copies].filter(([, n]) => n > 1), [], 'no message is stored twice');
    // Only the transaction in flight when the connections dropped can have committed unanswered.
    const inDoubt = attempts.filter((a) => a.code !== 250 && copies.has(a.id)).map((a) => a.id);
    t.ok(inDoubt.length <= 1, `at most one deferred message is stored anyway (${inDoubt.join(', ') || 'none'})`);
    t.comment(
      `${mode}: ${attempts.length} attempts (${outage.attempts} during the outage, ${outage.deferred} of them 451), ` +
        `${acked.length} answered 250, ${deferred.length} answered 451, ${attempts.filter((a) => a.code === null).length} cut off, ` +
        `${copies.size} stored, ${[...copies.values()].filter((n) => n > 1).length} duplicated, in doubt: ${inDoubt.length}`,
    );
  });
}
