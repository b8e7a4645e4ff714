import t from 'tap';
import { LineClient } from '../helpers/line-client.js';
import { ACTOR, PASSWORD, startTestPop3 } from '../helpers/pop3.js';

// A suspended domain suspends every mailbox in it: logins, live sessions and delivery.
const pop3 = await startTestPop3(t);
const { services } = pop3;
const suspend = (domain: string, status: 'active' | 'suspended') => services.domains.update(domain, { status }, ACTOR);
const login = (address: string) => services.login.login({ address, password: PASSWORD, protocol: 'pop3', ip: '127.0.0.1' });
const message = Buffer.from('From: a@example.net\r\nSubject: hi\r\n\r\nHello\r\n');

t.test('logins are refused while the domain is suspended, and work again when it is not', async (t) => {
  await pop3.mailbox('ann@paused.test');
  await login('ann@paused.test');
  await suspend('paused.test', 'suspended');
  await t.rejects(login('ann@paused.test'), { refusal: 'mailbox_suspended', message: "The mailbox's domain is suspended" });
  await t.rejects(login('ann@paused.test'.replace('ann', 'nobody')), { refusal: 'invalid_credentials', message: 'Authentication failed' }, 'unknown stays unknown');
  await suspend('paused.test', 'active');
  t.match(await login('ann@paused.test'), { address: 'ann@paused.test' });
});

t.test("suspending the domain ends its mailboxes' live sessions, not others'", async (t) => {
  await pop3.mailbox('bob@closing.test');
  await pop3.mailbox('cy@open.test');
  const open = async (address: string) => {
    const client = await LineClient.connect(pop3.port);
    t.teardown(() => client.close());
    await client.readLine();
    await client.command(`USER ${address}`);
    t.match(await client.command(`PASS ${PASSWORD}`), /^\+OK/);
    return client;
  };
  const bob = await open('bob@closing.test');
  const cy = await open('cy@open.test');
  await suspend('closing.test', 'suspended');
  t.equal(await bob.readLine(), null, 'the connection is closed');
  t.match(await cy.command('STAT'), /^\+OK/, 'another domain is untouched');
});

t.test("delivery to a suspended domain follows its suspendedDelivery, as for a suspended mailbox", async (t) => {
  await pop3.mailbox('dee@strict.test');
  await pop3.mailbox('eve@lenient.test');
  await services.domains.update('strict.test', { status: 'suspended', suspendedDelivery: 'reject' }, ACTOR);
  await suspend('lenient.test', 'suspended');
  const [refused] = await services.mail.deliver(message, ['dee@strict.test']);
  t.match(refused, { delivered: false, error: { code: 'mailbox_suspended' } });
  const [received] = await services.mail.deliver(message, ['eve@lenient.test']);
  t.match(received, { delivered: true, uid: 1 }, 'receive (the default) still receives');
});
