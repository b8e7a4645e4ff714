import nodemailer from 'nodemailer';
import t, { type Test } from 'tap';
import { storeInvariants, lmtpFixture, message } from './setup.js';

const SENDERS = 50;
const f = await lmtpFixture(t);

/** SENDERS deliveries at once, each on its own connection; the reply code each one got. */
async function storm(to: string, size: number): Promise<{ codes: number[]; sent: Buffer[] }> {
  // Same-length subjects: every message has the same size.
  const sent = Array.from({ length: SENDERS }, (_, i) => message(`race ${String(i).padStart(2, '0')}`, size));
  const codes = await Promise.all(
    sent.map(async (raw) => {
      const transport = nodemailer.createTransport({ lmtp: true, host: '127.0.0.1', port: f.port, ignoreTLS: true });
      try {
        const info = await transport.sendMail({ envelope: { from: 'racer@example.net', to: [to] }, raw });
        return Number(info.response.slice(0, 3));
      } catch (error) {
        return (error as { responseCode: number }).responseCode;
      } finally {
        transport.close();
      }
    }),
  );
  return { codes, sent };
}

async function checkExactlyOne(t: Test, address: string, result: { codes: number[]; sent: Buffer[] }, before: number) {
  const counts = result.codes.reduce<Record<number, number>>((all, code) => ({ ...all, [code]: (all[code] ?? 0) + 1 }), {});
  t.same(counts, { 250: 1, 552: SENDERS - 1 }, 'one delivered, every other one refused as over quota');
  const stored = await f.inbox(address);
  t.equal(stored.length, before + 1, 'exactly one more message is stored');
  const winner = result.codes.indexOf(250);
  t.equal(stored.at(-1)!.raw.toString(), `Return-Path: <racer@example.net>\r\n${result.sent[winner]}`, 'and it is the one answered 250');
  const { usage, folderCounts, blobRefs } = await storeInvariants(f.database.db);
  for (const row of usage) {
    t.equal(row.usedMessages, row.count, `${row.address}: used_messages = its messages`);
    t.equal(row.usedBytes, row.bytes, `${row.address}: used_bytes = the sum of their sizes`);
  }
  for (const row of folderCounts) {
    if (row.messageCount !== row.count || row.storageBytes !== row.bytes) t.fail(`folder ${row.name} counters drifted`, row);
  }
  for (const row of blobRefs) if (row.refCount !== row.used) t.fail('a blob’s ref_count is off', row);
  t.equal(blobRefs.filter((b) => b.used === 0).length, 0, 'refused deliveries leave no blob behind');
}

t.test(`${SENDERS} concurrent deliveries to a mailbox with room for one more message (message quota)`, async (t) => {
  await f.mailbox('count@race.example', { quota: { messages: 3 } });
  const prefill = message('already there');
  await f.services.mail.deliver(prefill, ['count@race.example']);
  await f.services.mail.deliver(prefill, ['count@race.example']);
  await checkExactlyOne(t, 'count@race.example', await storm('count@race.example', 1000), 2);
});

t.test(`${SENDERS} concurrent deliveries to a mailbox with room for one more message (storage quota)`, async (t) => {
  const size = message('race 00', 5000).length + 'Return-Path: <racer@example.net>\r\n'.length;
  const prefill = message('already there', 1000);
  // Room for one more message of `size` bytes, one byte short of two.
  await f.mailbox('bytes@race.example', { quota: { storageBytes: prefill.length + 2 * size - 1 } });
  await f.services.mail.deliver(prefill, ['bytes@race.example']);
  await checkExactlyOne(t, 'bytes@race.example', await storm('bytes@race.example', 5000), 1);
});
