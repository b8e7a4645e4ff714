import fc from 'fast-check';
import t from 'tap';
import { LineClient } from '../helpers/line-client.js';
import { PASSWORD, startTestPop3 } from '../helpers/pop3.js';

// Random POP3 command lines through a real session: each gets one +OK or -ERR (with its
// multi-line body where the command has one), the session goes on, the process does not crash.
const RUNS = Number(process.env.FUZZ_RUNS ?? 40);

const pop3 = await startTestPop3(t);
const ADDRESS = 'fuzz@fuzz.test';
await pop3.mailbox(ADDRESS);
for (let i = 0; i < 4; i++) {
  const [result] = await pop3.services.mail.deliver(Buffer.from(`Subject: m${i}\r\n\r\n.dot line\r\nbody ${i}\r\n`), [ADDRESS]);
  if (!result!.delivered) throw new Error('setup: delivery failed');
}

// QUIT and STLS end or change the session; they have tests of their own.
const COMMANDS = ['STAT', 'LIST', 'RETR', 'DELE', 'NOOP', 'RSET', 'TOP', 'UIDL', 'CAPA', 'USER', 'PASS', 'AUTH', 'APOP', 'XTND', ''];

const argument = fc.oneof(
  fc.constantFrom('1', '2', '4', '5', '0', '-1', '999999999999', '1 0', '1 5', '2 -3', 'PLAIN', 'x', ' ', '\t'),
  fc.string({ maxLength: 30, unit: 'binary' }).map((s) => s.replace(/[\r\n]/g, '')),
);
const line = fc
  .tuple(fc.constantFrom(...COMMANDS), fc.array(argument, { maxLength: 3 }), fc.boolean())
  .map(([name, args, lower]) => [lower ? name.toLowerCase() : name, ...args].join(' '));

const client = await LineClient.connect(pop3.port);
await client.readLine();
client.send(`USER ${ADDRESS}\r\nPASS ${PASSWORD}\r\n`);
await client.readLine();
t.match(await client.readLine(), /^\+OK/, 'logged in');

/**
 * Sends one line and reads its whole answer; answers its status line. A NOOP follows each line,
 * so the end of the answer is found without knowing whether it was multi-line (no test message
 * has a line starting with +OK or -ERR).
 */
async function send(text: string): Promise<string> {
  client.send(`${text}\r\nNOOP\r\n`);
  const status = await client.readLine();
  if (status === null) throw new Error(`'${text}': the server hung up`);
  // AUTH asked for more: the NOOP line was taken as the client's response and answered.
  if (status.startsWith('+ ')) return (await client.readLine()) ?? 'closed';
  for (;;) {
    const next = await client.readLine();
    if (next === null) throw new Error(`'${text}': the server hung up`);
    if (/^(\+OK|-ERR)/.test(next)) return status;
  }
}

t.test('every command line gets +OK or -ERR and the session goes on', async (t) => {
  let answered = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 20 }), async (lines) => {
      for (const text of lines) {
        const status = await send(text);
        if (!/^(\+OK|-ERR)( |$)/.test(status)) throw new Error(`'${text}' got: ${status}`);
        answered += 1;
      }
      const reset = await send('RSET');
      if (!reset.startsWith('+OK')) throw new Error(`RSET got: ${reset}`);
    }),
    { numRuns: RUNS },
  );
  t.ok(answered > 0, `${answered} random command lines answered`);
  t.match(await send('STAT'), /^\+OK 4 /, 'nothing was deleted: RSET undid every DELE');
});

t.teardown(() => client.send('QUIT\r\n'));
