import { eq, sql } from 'drizzle-orm';
import t from 'tap';
import { gateways } from '../../src/db/schema/index.js';
import { ACTOR, gatewayFixture } from '../helpers/gateway.js';

t.test('a gateway forgotten by the others while cut off joins again at its next heartbeat', async (t) => {
  const { database, services, mailbox } = await gatewayFixture(t);
  await mailbox('ann@rejoin.test');
  const accountId = (await services.mailboxes.find('ann@rejoin.test', ACTOR)).id;
  const away = await services.sessions.startGateway();
  const other = await services.sessions.startGateway();
  // Silent for longer than the timeout (its database was unreachable): the other one forgets it.
  await database.db.update(gateways).set({ seenAt: sql`now() - interval '1 hour'` }).where(eq(gateways.id, away));
  await services.sessions.heartbeat(other);
  t.same(await database.db.select().from(gateways).where(eq(gateways.id, away)), [], 'forgotten');

  await services.sessions.heartbeat(away);
  const session = { accountId, protocol: 'imap' as const, remoteIp: '192.0.2.1', tls: true };
  await services.sessions.register(away, session, 5);
  t.same(
    (await services.sessions.list('ann@rejoin.test', ACTOR)).map((s) => s.remoteIp),
    ['192.0.2.1'],
    'back, and its new sessions are listed',
  );
});
