import t from 'tap';
import { createMetrics } from '../../src/core/metrics.js';
import type { Services } from '../../src/core/services.js';
import { startLmtpServer } from '../../src/lmtp/server.js';
import { pythonLmtp } from '../lmtp/clients.js';
import { lmtpFixture, message } from '../lmtp/setup.js';
import { sample } from '../helpers/metrics.js';

const MAX = 64 * 1024;
const f = await lmtpFixture(t, { maxMessageSize: MAX });

async function served(): Promise<string> {
  const response = await f.app.inject({ method: 'GET', url: '/metrics' });
  t.equal(response.statusCode, 200);
  return response.body;
}

t.test('LMTP deliveries are counted per recipient by result, on the API /metrics', async (t) => {
  await f.mailbox('ann@lmtp.test');
  await f.mailbox('full@lmtp.test', { quota: { messages: 0 } });
  await f.mailbox('away@reject.test', { status: 'suspended' }, { suspendedDelivery: 'reject' });
  const result = await pythonLmtp(f.port, [
    {
      from: 's@example.net',
      to: ['ann@lmtp.test', 'ghost@lmtp.test', 'full@lmtp.test', 'away@reject.test', 'bad..dots@lmtp.test'],
      message: message('counted'),
    },
    { from: 's@example.net', to: ['ann@lmtp.test'], message: message('too big', MAX + 100) },
  ]);
  t.same(result.transactions[0]!.rcpt.at(-1), [550, '5.1.1 <bad..dots@lmtp.test> is not a valid mailbox address']);
  t.same(result.transactions[0]!.data.map(([code]) => code), [250, 550, 552, 550], 'the other four reached DATA');
  t.same(result.transactions[1]!.data.map(([code]) => code), [552]);

  const text = await served();
  const deliveries = (label: string) => sample(text, 'mailroom_deliveries_total', { result: label });
  t.equal(deliveries('delivered'), 1);
  t.equal(deliveries('unknown_mailbox'), 2, 'the unknown mailbox and the address refused at RCPT');
  t.equal(deliveries('over_quota'), 1);
  t.equal(deliveries('suspended'), 1);
  t.equal(deliveries('too_large'), 1);
  t.equal(deliveries('deferred'), undefined, 'nothing was deferred');
});

t.test('a delivery the core cannot decide is counted as deferred', async (t) => {
  const metrics = createMetrics();
  const failing = { mail: { deliver: async () => Promise.reject(new Error('the store broke')) }, metrics };
  const lmtp = await startLmtpServer({ services: failing as unknown as Pick<Services, 'mail' | 'metrics'>, maxMessageSize: MAX }, '127.0.0.1', 0);
  t.teardown(() => lmtp.close());
  const result = await pythonLmtp(lmtp.port, [{ from: 's@example.net', to: ['a@lmtp.test', 'b@lmtp.test'], message: message('later') }]);
  t.same(result.transactions[0]!.data.map(([code]) => code), [451, 451]);
  t.equal(sample(await metrics.registry.metrics(), 'mailroom_deliveries_total', { result: 'deferred' }), 2);
});

t.test('the pg pool is reported on Postgres, not for the embedded database', async (t) => {
  const text = await served();
  if (f.database.mode === 'embedded') {
    t.equal(sample(text, 'mailroom_db_pool_connections'), undefined);
    return;
  }
  const total = sample(text, 'mailroom_db_pool_connections')!;
  const idle = sample(text, 'mailroom_db_pool_idle_connections')!;
  t.ok(total >= 1, `connections are open (${total})`);
  t.ok(idle >= 0 && idle <= total, `idle connections are some of them (${idle})`);
  t.equal(sample(text, 'mailroom_db_pool_waiting_queries'), 0, 'nothing waits while the database is idle');
});
