import t from 'tap';
import type { Change } from '../../src/core/events/changes.js';
import { READ_AHEAD_BYTES, ReadAhead } from '../../src/pop3/read-ahead.js';
import { LineClient } from '../helpers/line-client.js';
import { PASSWORD, startTestPop3 } from '../helpers/pop3.js';

const pop3 = await startTestPop3(t);
const { services } = pop3;
const mail = services.mail;

/** Messages of every shape: small, dotted, bare LF, ~100 KB, and one larger than a read-ahead batch. */
function messages(count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => {
    const head = `From: sender@example.net\r\nTo: someone@ahead.test\r\nSubject: message ${i + 1}\r\n\r\n`;
    if (i % 7 === 3) return Buffer.from(`${head}.a dotted line\r\n..two\r\nend`);
    if (i % 7 === 5) return Buffer.from(head.replaceAll('\r\n', '\n') + 'bare LF body\n');
    if (i % 11 === 8) return Buffer.from(head + `${'y'.repeat(98)}\r\n`.repeat(1000));
    if (i === 20) return Buffer.from(head + `${'z'.repeat(998)}\r\n`.repeat(1.5 * 1024));
    return Buffer.from(`${head}Body of message ${i + 1}.\r\n`);
  });
}

/** The message as RETR must send it: CRLF line ends, dots stuffed (as LineClient reads it: lines). */
function wireLines(raw: Buffer): string[] {
  const lines = raw.toString('latin1').split('\n');
  if (raw.at(-1) === 0x0a) lines.pop();
  return lines.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line)).map((line) => (line.startsWith('.') ? `.${line}` : line));
}

/** LIST's octet count: the message with CRLF line ends (the final line end is not counted when missing). */
const wireSize = (raw: Buffer) => raw.length + (raw.toString('latin1').match(/(?<!\r)\n/g)?.length ?? 0);

const same = (a: string[], b: string[]) => a.length === b.length && a.every((line, i) => line === b[i]);

/** A multi-line command's status line and the lines after it. */
async function retrieve(client: LineClient, command: string) {
  const status = await client.command(command);
  return { status, lines: status?.startsWith('+OK') ? await client.readMultiline() : [] };
}

/** A mailbox holding `raws` in order: its account id and INBOX id. */
async function mailbox(address: string, raws: Buffer[]) {
  const accountId = await pop3.mailbox(address);
  for (const raw of raws) {
    const [result] = await mail.deliver(raw, [address]);
    if (!result!.delivered) throw new Error('setup: delivery failed');
  }
  const inbox = await mail.folders.get(accountId, 'INBOX');
  return { accountId, inboxId: inbox.id };
}

async function session(address: string): Promise<LineClient> {
  const client = await LineClient.connect(pop3.port);
  await client.readLine();
  await client.command(`USER ${address}`);
  const pass = await client.command(`PASS ${PASSWORD}`);
  if (!pass?.startsWith('+OK')) throw new Error(`login failed: ${pass}`);
  return client;
}

/** Resolves with the next change the gateway's feed hands out for `accountId` (after every session has seen it). */
async function nextChange(accountId: number): Promise<{ seen: Promise<Change>; stop: () => Promise<void> }> {
  let resolve!: (change: Change) => void;
  const seen = new Promise<Change>((r) => (resolve = r));
  const stop = await pop3.gateway.feed.subscribe((change) => {
    if (change.accountId === accountId) resolve(change);
  });
  return { seen, stop };
}

t.test('RETR of every message is byte-exact: in order, pipelined, backwards and skipping about', async (t) => {
  const raws = messages(40);
  await mailbox('order@ahead.test', raws);
  const orders = {
    'in order': raws.map((_, i) => i),
    backwards: raws.map((_, i) => raws.length - 1 - i),
    'odd ones, then even ones': [...raws.keys()].filter((i) => i % 2 === 1).concat([...raws.keys()].filter((i) => i % 2 === 0)),
    'each twice': raws.flatMap((_, i) => [i, i]),
  };
  for (const [label, order] of Object.entries(orders)) {
    const client = await session('order@ahead.test');
    let exact = 0;
    for (const i of order) {
      const { status, lines } = await retrieve(client, `RETR ${i + 1}`);
      if (status === `+OK ${wireSize(raws[i]!)} octets` && same(lines, wireLines(raws[i]!))) exact += 1;
      else t.fail(`${label}: message ${i + 1} differs (${status})`);
    }
    t.equal(exact, order.length, `${label}: every message byte-exact`);
    await client.command('QUIT');
  }

  const piped = await session('order@ahead.test');
  piped.send(raws.map((_, i) => `RETR ${i + 1}\r\n`).join(''));
  for (const [i, raw] of raws.entries()) {
    t.match(await piped.readLine(), /^\+OK \d+ octets$/);
    if (!same(await piped.readMultiline(), wireLines(raw))) t.fail(`pipelined: message ${i + 1} differs`);
  }
  t.pass('pipelined: every message byte-exact');
  await piped.command('QUIT');
});

t.test('TOP and RETR of the same messages, before and after one another', async (t) => {
  const raws = messages(6);
  await mailbox('top@ahead.test', raws);
  const client = await session('top@ahead.test');
  t.teardown(() => client.close());
  const header = (raw: Buffer, bodyLines: number) => {
    const lines = wireLines(raw);
    return lines.slice(0, lines.indexOf('') + 1 + bodyLines);
  };
  t.same((await retrieve(client, 'RETR 1')).lines, wireLines(raws[0]!), 'RETR 1 fetches the next ones along');
  t.same((await retrieve(client, 'TOP 2 0')).lines, header(raws[1]!, 0), 'TOP of a message fetched ahead');
  t.same((await retrieve(client, 'RETR 2')).lines, wireLines(raws[1]!), 'RETR after TOP');
  t.same((await retrieve(client, 'TOP 2 1')).lines, header(raws[1]!, 1), 'TOP after RETR');
  t.same((await retrieve(client, 'TOP 4 2')).lines, header(raws[3]!, 2), 'TOP of a dotted message fetched ahead');
  t.same((await retrieve(client, 'RETR 4')).lines, wireLines(raws[3]!));
  t.match(await client.command('DELE 5'), /^\+OK/);
  t.match(await client.command('RETR 5'), /^-ERR/, 'a message deleted in the session is not sent');
  t.same((await retrieve(client, 'RETR 6')).lines, wireLines(raws[5]!));
});

t.test('a message expunged (by IMAP) during the session answers as without read-ahead', async (t) => {
  const raws = messages(5);
  const { accountId, inboxId } = await mailbox('expunged@ahead.test', raws);
  const uids = (await mail.list(accountId, inboxId)).map((m) => m.uid);
  const expunge = async (uid: number) => {
    const change = await nextChange(accountId);
    await mail.changeFlags(accountId, inboxId, [uid], 'add', ['\\Deleted']);
    await mail.expunge(accountId, inboxId, [uid]);
    await change.seen;
    await change.stop();
  };

  const before = await session('expunged@ahead.test');
  await expunge(uids[0]!);
  const unread = await before.command('RETR 1');
  t.match(unread, /^-ERR/, 'expunged before any RETR: refused');
  await before.command('QUIT');

  const client = await session('expunged@ahead.test');
  t.teardown(() => client.close());
  t.same((await retrieve(client, 'RETR 1')).lines, wireLines(raws[1]!), 'RETR 1 fetched the following messages too');
  await expunge(uids[2]!);
  t.equal(await client.command('RETR 2'), unread, 'the expunged message fetched ahead is refused just the same');
  t.same((await retrieve(client, 'RETR 3')).lines, wireLines(raws[3]!), 'the others still arrive');
  t.same((await retrieve(client, 'TOP 4 0')).lines.at(-1), '', 'TOP still works');
  t.equal(await client.command('TOP 2 0'), unread, 'and TOP of the expunged one is refused');
  t.same((await retrieve(client, 'RETR 4')).lines, wireLines(raws[4]!));
});

t.test('read-ahead stays within its byte bound and reads a large message alone', async (t) => {
  // 300 KB each, and message 7 larger than a batch.
  const raws = Array.from({ length: 14 }, (_, i) =>
    Buffer.from(`Subject: ${i + 1}\r\n\r\n${`${'w'.repeat(98)}\r\n`.repeat(i === 6 ? 11_000 : 3_000)}`),
  );
  const { accountId, inboxId } = await mailbox('bounds@ahead.test', raws);
  const listed = (await mail.list(accountId, inboxId)).map((m) => ({ uid: m.uid, key: m.key, size: m.crlfSize, deleted: false }));
  const calls: { single?: number; batch?: number[] }[] = [];
  const counting = {
    read: (a: number, f: number, uid: number) => (calls.push({ single: uid }), mail.read(a, f, uid)),
    readMany: (a: number, f: number, uids: readonly number[]) => (calls.push({ batch: [...uids] }), mail.readMany(a, f, uids)),
  };
  const reader = new ReadAhead(counting, accountId, inboxId, listed);
  for (const [i, raw] of raws.entries()) {
    if (!(await reader.retrieve(i)).equals(raw)) t.fail(`message ${i + 1} differs`);
  }
  const size = new Map(listed.map((m) => [m.uid, m.size]));
  const batches = calls.flatMap((c) => (c.batch ? [c.batch] : []));
  t.ok(batches.length >= 2, `${batches.length} batches`);
  for (const batch of batches) {
    const bytes = batch.reduce((sum, uid) => sum + size.get(uid)!, 0);
    t.ok(bytes <= READ_AHEAD_BYTES, `a batch of ${batch.length} messages, ${bytes} bytes`);
  }
  const large = listed[6]!;
  t.ok(large.size > READ_AHEAD_BYTES, 'message 7 is larger than a batch');
  t.same(calls.filter((c) => c.single === large.uid || c.batch?.includes(large.uid)), [{ single: large.uid }], 'and is read alone');
  t.equal(calls.length, batches.length + 1, 'nothing read twice');

  calls.length = 0;
  t.ok((await reader.retrieve(3)).equals(raws[3]!), 'out of order: read alone');
  t.same(calls, [{ single: listed[3]!.uid }], 'without reading ahead');
});

t.test('what was fetched before a folder change is not kept', async (t) => {
  const raws = messages(4);
  const { accountId, inboxId } = await mailbox('forget@ahead.test', raws);
  const listed = (await mail.list(accountId, inboxId)).map((m) => ({ uid: m.uid, key: m.key, size: m.crlfSize, deleted: false }));
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let reads = 0;
  const reader = new ReadAhead(
    {
      read: (a, f, uid) => (reads++, mail.read(a, f, uid)),
      readMany: async (a, f, uids) => (reads++, await gate, mail.readMany(a, f, uids)),
    },
    accountId,
    inboxId,
    listed,
  );
  const first = reader.retrieve(0);
  reader.forget();
  release();
  t.ok((await first).equals(raws[0]!), 'the message asked for still arrives');
  t.ok((await reader.retrieve(1)).equals(raws[1]!));
  t.equal(reads, 2, 'the next one was read again, not taken from the batch fetched across the change');
  t.ok((await reader.retrieve(2)).equals(raws[2]!));
  t.equal(reads, 2, 'that read fetched ahead again');
  reader.forget();
  t.ok((await reader.peek(3)).equals(raws[3]!));
  t.equal(reads, 3, 'forget drops what was fetched ahead');
});
