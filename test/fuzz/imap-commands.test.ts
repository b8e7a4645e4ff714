import fc from 'fast-check';
import t from 'tap';
import { LineClient } from '../helpers/line-client.js';
import { PASSWORD, startTestImap } from '../helpers/imap.js';

// Random commands, from well-formed to garbage, through a real IMAP session: every one must get
// its tagged OK, NO or BAD, the session must stay usable, and the process must not crash.
// FUZZ_RUNS raises the number of command sequences for a longer hunt.
const RUNS = Number(process.env.FUZZ_RUNS ?? 40);

const imap = await startTestImap(t, { limits: { maxBadCommands: 1_000_000 } });
const ADDRESS = 'fuzz@fuzz.test';
await imap.mailbox(ADDRESS);
for (let i = 0; i < 5; i++) {
  await imap.deliver(ADDRESS, `From: a${i}@x.test\r\nSubject: =?utf-8?q?m${i}?=\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nbody ${i}\r\n--b--\r\n`);
}

// Commands that would end the session or wait for more than a line (TLS, IDLE) are left out:
// the property is about answers, not about those state changes.
const COMMANDS = [
  'CAPABILITY', 'NOOP', 'CHECK', 'SELECT', 'EXAMINE', 'CREATE', 'DELETE', 'RENAME', 'SUBSCRIBE', 'UNSUBSCRIBE',
  'LIST', 'LSUB', 'STATUS', 'APPEND', 'CLOSE', 'UNSELECT', 'EXPUNGE', 'SEARCH', 'FETCH', 'STORE', 'COPY', 'MOVE',
  'UID FETCH', 'UID SEARCH', 'UID STORE', 'UID COPY', 'UID MOVE', 'UID EXPUNGE', 'UID', 'ENABLE', 'ID', 'NAMESPACE',
  'GETQUOTA', 'GETQUOTAROOT', 'SETQUOTA', 'SORT', 'UID SORT', 'THREAD', 'UID THREAD', 'LOGIN', 'XYZZY', '',
];

const atom = fc.constantFrom(
  'INBOX', 'inbox', 'Sent', 'Fuzz', 'Fuzz/Child', '*', '%', '1', '2:4', '1:*', '*:1', '0', '4294967296', '1,3,5:*', '$',
  'ALL', 'FAST', 'FULL', 'FLAGS', 'BODY', 'BODYSTRUCTURE', 'ENVELOPE', 'INTERNALDATE', 'RFC822', 'RFC822.SIZE', 'UID',
  'BODY[]', 'BODY.PEEK[HEADER]', 'BODY[1.MIME]', 'BODY[2.1.TEXT]<0.10>', 'BODY[HEADER.FIELDS', 'BINARY[1]', 'BODY[]<5.>',
  '+FLAGS', '-FLAGS.SILENT', 'FLAGS.SILENT', '\\Seen', '\\Deleted', '\\Recent', '$Junk', 'NOT', 'OR', 'SINCE', 'BEFORE',
  '1-Jan-2026', '31-Feb-2026', 'LARGER', 'SMALLER', 'HEADER', 'SUBJECT', 'TEXT', 'BODY', 'KEYWORD', 'CHARSET', 'UTF-8',
  'MESSAGES', 'UIDNEXT', 'UNSEEN', 'HIGHESTMODSEQ', 'CHANGEDSINCE', 'UNCHANGEDSINCE', 'CONDSTORE', 'QRESYNC', 'NIL',
  'STORAGE', 'MESSAGE', 'REVERSE', 'DATE', 'ARRIVAL', 'REFERENCES', 'ORDEREDSUBJECT', 'US-ASCII', '&AOk-', '&-', '&Jjo', 'é', '\\', ']', '[', '<', '>', '.',
);
const quoted = fc.string({ maxLength: 12 }).map((s) => `"${s.replace(/[\r\n]/g, '').replace(/(["\\])/g, '\\$1')}"`);
const garbage = fc.string({ maxLength: 20, unit: 'binary' }).map((s) => s.replace(/[\r\n{]/g, ''));
const word = fc.oneof({ weight: 6, arbitrary: atom }, { weight: 2, arbitrary: quoted }, { weight: 1, arbitrary: garbage });
const args: fc.Arbitrary<string> = fc.letrec<{ args: string }>((tie) => ({
  args: fc
    .array(fc.oneof({ weight: 5, arbitrary: word }, { weight: 1, arbitrary: tie('args').map((inner) => `(${inner})`) }), { maxLength: 6 })
    .map((words) => words.join(' ')),
})).args;
const command = fc.tuple(fc.constantFrom(...COMMANDS), args).map(([name, rest]) => `${name} ${rest}`.trim());

/** The tagged answer to `tag`, skipping untagged lines and literal data. */
async function answerTo(client: LineClient, tag: string): Promise<string> {
  for (;;) {
    const line = await client.readLine();
    if (line === null) throw new Error(`the server closed the connection before answering ${tag}`);
    if (line.startsWith(`${tag} `)) return line;
  }
}

const client = await LineClient.connect(imap.port);
await client.readLine();
let counter = 0;
const send = async (text: string) => {
  const tag = `f${++counter}`;
  client.send(`${tag} ${text}\r\n`);
  return answerTo(client, tag);
};
t.match(await send(`LOGIN ${ADDRESS} "${PASSWORD}"`), /^f1 OK/);

t.test('every command gets a tagged OK, NO or BAD and the session goes on', async (t) => {
  let answered = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 25 }), async (commands) => {
      // Each sequence starts from a selected INBOX, so commands of both states get tried.
      await send('SELECT INBOX');
      for (const text of commands) {
        const answer = await send(text);
        if (!/^f\d+ (OK|NO|BAD)( |$)/.test(answer)) throw new Error(`'${text}' got: ${answer}`);
        answered += 1;
      }
    }),
    { numRuns: RUNS },
  );
  t.ok(answered > 0, `${answered} random commands answered`);
  t.match(await send('NOOP'), /OK/, 'the session still answers');
  const other = await LineClient.connect(imap.port);
  await other.readLine();
  other.send(`a LOGIN ${ADDRESS} "${PASSWORD}"\r\nb SELECT INBOX\r\n`);
  t.match(await answerTo(other, 'b'), /^b OK/, 'and a new session works');
  other.send('c LOGOUT\r\n');
  await answerTo(other, 'c');
});

t.teardown(() => client.send('z LOGOUT\r\n'));
