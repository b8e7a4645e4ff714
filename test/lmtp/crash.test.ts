import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asc, eq } from 'drizzle-orm';
import t from 'tap';
import { accounts, blobs, messages } from '../../src/db/schema/index.js';
import { freshDatabaseUrl, openStoppedServerDatabase } from '../helpers/database.js';
import { dotStuff, RawLmtp } from './clients.js';
import { adminRequest, type MailroomProcess, spawnMailroom } from './process.js';
import { message, storeInvariants } from './setup.js';

const MAILBOXES = ['a@crash.example', 'b@crash.example', 'c@crash.example', 'small@crash.example'];
const CLIENTS = 6;
/** Acknowledged deliveries to wait for before the kill: enough that many are in flight around it. */
const ACKS_BEFORE_KILL = 60;

interface Sent {
  id: string;
  raw: Buffer;
  from: string;
  /** Recipient -> the reply code after DATA; missing when the connection died first. */
  replies: Map<string, number>;
}

/** One client sending transactions back to back until the connection dies. */
async function sender(port: number, client: number, sent: Sent[], onAck: () => void): Promise<void> {
  let lmtp: RawLmtp;
  try {
    lmtp = await RawLmtp.open(port);
    await lmtp.command('LHLO storm.test');
  } catch {
    return;
  }
  try {
    for (let n = 0; ; n++) {
      const id = `storm-${client}-${n}`;
      // One, two or three recipients, as an MTA groups them.
      const to = MAILBOXES.filter((_, i) => (n + client + i) % 4 < 1 + (n % 3));
      const entry: Sent = { id, raw: message(id, 2000 + 97 * n), from: `${id}@sender.example`, replies: new Map() };
      sent.push(entry);
      lmtp.write(`MAIL FROM:<${entry.from}>\r\n${to.map((r) => `RCPT TO:<${r}>\r\n`).join('')}DATA\r\n`);
      await lmtp.replies(to.length + 2);
      lmtp.write(`${dotStuff(entry.raw)}.\r\n`);
      const replies = await lmtp.replies(to.length);
      to.forEach((recipient, i) => entry.replies.set(recipient, Number(replies[i]!.slice(0, 3))));
      if (replies.some((reply) => reply.startsWith('250'))) onAck();
    }
  } catch {
    // The server was killed: this transaction's fate is unknown, which is allowed.
  } finally {
    lmtp.close();
  }
}

t.test('SIGKILL in the middle of a delivery storm loses no acknowledged message and leaves the store consistent', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'mailroom-lmtp-crash-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const databaseUrl = await freshDatabaseUrl(t);
  let running: MailroomProcess | null = null;
  t.teardown(async () => {
    running?.child.kill('SIGKILL');
    await running?.exited;
  });

  running = await spawnMailroom({ dataDir, databaseUrl });
  await adminRequest(running.apiUrl, 'POST', '/v1/domains', { name: 'crash.example' });
  for (const address of MAILBOXES) {
    const quota = address.startsWith('small') ? { messages: 15 } : {};
    await adminRequest(running.apiUrl, 'POST', '/v1/mailboxes', { address, password: 'a long passphrase', quota });
  }

  const sent: Sent[] = [];
  let acks = 0;
  let killed = false;
  const server = running;
  const kill = () => {
    if (killed) return;
    killed = true;
    server.child.kill('SIGKILL');
  };
  const storm = Array.from({ length: CLIENTS }, (_, client) =>
    sender(server.lmtpPort, client, sent, () => {
      if (++acks >= ACKS_BEFORE_KILL) kill();
    }),
  );
  // However slow the machine, the kill comes.
  const deadline = setTimeout(kill, 60_000);
  await Promise.all(storm);
  clearTimeout(deadline);
  await server.exited;
  t.equal(server.child.signalCode, 'SIGKILL', 'the server was killed, not stopped');
  const acknowledged = sent.flatMap((s) => [...s.replies].filter(([, code]) => code === 250).map(([to]) => ({ ...s, to })));
  t.ok(acknowledged.length >= ACKS_BEFORE_KILL, `${acknowledged.length} recipients got 250 before the kill`);
  const unanswered = sent.filter((s) => s.replies.size === 0).length;
  t.ok(unanswered > 0, `${unanswered} transactions were cut off without replies`);

  // Restarted on the same database: it recovers and delivers again.
  running = await spawnMailroom({ dataDir, databaseUrl });
  const after = await RawLmtp.open(running.lmtpPort);
  await after.command('LHLO after.test');
  await after.command('MAIL FROM:<after@sender.example>');
  await after.command('RCPT TO:<a@crash.example>');
  await after.command('DATA');
  after.write(`${dotStuff(message('after the restart'))}.\r\n`);
  t.match((await after.replies(1))[0], /^250 /, 'the restarted server delivers');
  after.close();
  running.child.kill('SIGTERM');
  await running.exited;
  t.equal(running.child.exitCode, 0, 'and stops cleanly');
  running = null;

  const store = await openStoppedServerDatabase(t, { dataDir, databaseUrl });
  const rows = await store.db
    .select({ address: accounts.address, uid: messages.uid, data: blobs.data })
    .from(messages)
    .innerJoin(accounts, eq(accounts.id, messages.accountId))
    .innerJoin(blobs, eq(blobs.hash, messages.blobHash))
    .orderBy(asc(accounts.address), asc(messages.uid));
  const byId = new Map(sent.map((s) => [s.id, s]));
  const copies = new Map<string, number>();
  let whole = 0;
  for (const row of rows) {
    const raw = Buffer.from(row.data).toString('latin1');
    const id = /^Subject: (storm-\d+-\d+)\r\n/m.exec(raw)?.[1];
    if (id === undefined) continue; // the message sent after the restart
    const entry = byId.get(id);
    if (entry === undefined) t.fail(`an unknown message ${id} is stored`);
    else if (raw === `Return-Path: <${entry.from}>\r\n${entry.raw.toString('latin1')}`) whole++;
    else t.fail(`${id} in ${row.address} is not the message sent`);
    const key = `${id} ${row.address}`;
    copies.set(key, (copies.get(key) ?? 0) + 1);
  }
  t.equal(whole, rows.length - 1, 'every stored message is exactly the bytes sent, Return-Path first');
  t.same(
    [...copies].filter(([, n]) => n > 1),
    [],
    'no message is stored twice in a mailbox',
  );
  const lost = acknowledged.filter((a) => !copies.has(`${a.id} ${a.to}`)).map((a) => `${a.id} ${a.to}`);
  t.same(lost, [], 'every message answered 250 is stored');
  const refusedButStored = sent.flatMap((s) =>
    [...s.replies].filter(([to, code]) => code !== 250 && copies.has(`${s.id} ${to}`)).map(([to]) => `${s.id} ${to}`),
  );
  t.same(refusedButStored, [], 'no refused message is stored');

  const { usage, folderCounts, blobRefs } = await storeInvariants(store.db);
  for (const row of usage) {
    t.equal(row.usedMessages, row.count, `${row.address}: used_messages = its messages (${row.count})`);
    t.equal(row.usedBytes, row.bytes, `${row.address}: used_bytes = the sum of their sizes`);
  }
  t.same(
    folderCounts.filter((f) => f.messageCount !== f.count || f.storageBytes !== f.bytes),
    [],
    'folder counters match their messages',
  );
  t.same(
    blobRefs.filter((b) => b.refCount !== b.used || b.size !== b.dataSize),
    [],
    'every blob’s ref_count is the number of messages using it, its size its bytes',
  );
  t.same(blobRefs.filter((b) => b.used === 0), [], 'no blob is left without a message');
  const small = usage.find((row) => row.address === 'small@crash.example');
  t.ok(small!.count <= 15, 'the quota held through the crash');
});
