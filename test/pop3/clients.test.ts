import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { PASSWORD, startTestPop3 } from '../helpers/pop3.js';

const SCRIPT = fileURLToPath(new URL('./poplib-client.py', import.meta.url));
const pop3 = await startTestPop3(t);

interface PoplibResult {
  capa: string[];
  stat: [number, number];
  uidl: string[];
  messages: { octets: number; raw: string }[];
  quit: string;
}

async function poplib(plan: Record<string, unknown>): Promise<PoplibResult> {
  const child = spawn('python3', [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  child.stdin.end(JSON.stringify({ user: 'reader@clients.test', password: PASSWORD, ...plan }));
  const code = await new Promise((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`poplib-client.py exited with ${code}: ${stderr}`);
  return JSON.parse(stdout);
}

const accountId = await pop3.mailbox('reader@clients.test');
const messages = [
  Buffer.from('Subject: one\r\n\r\nfirst body\r\n'),
  Buffer.from('Subject: dots\r\n\r\n.a line with a leading dot\r\n..and two\r\n.\r\nend\r\n'),
  Buffer.from(`Subject: binary-ish\r\n\r\n${'\u00e9t\u00e9 '.repeat(20)}\r\n`, 'latin1'),
];
for (const raw of messages) await pop3.services.mail.deliver(raw, ['reader@clients.test']);

t.test('poplib downloads every message byte-exact over plain, STLS and POP3S, keeping them', async (t) => {
  for (const mode of ['plain', 'stls', 'pop3s']) {
    const result = await poplib({ mode, port: mode === 'pop3s' ? pop3.securePort : pop3.port });
    t.equal(result.stat[0], 3, `${mode}: three messages`);
    t.equal(result.stat[1], messages.reduce((n, m) => n + m.length, 0), `${mode}: exact total octets`);
    t.same(
      result.messages.map((m) => Buffer.from(m.raw, 'base64')),
      messages,
      `${mode}: byte-exact, leading dots included`,
    );
    t.match(result.quit, /^\+OK/);
    if (mode === 'plain') t.ok(result.capa.includes('STLS'), 'STLS offered on the plain port');
  }
});

t.test('poplib deletes, and the next session no longer has the message', async (t) => {
  const before = await poplib({ mode: 'plain', port: pop3.port, delete: [1] });
  const after = await poplib({ mode: 'plain', port: pop3.port });
  t.equal(after.stat[0], 2);
  t.same(after.uidl.map((line) => line.split(' ')[1]), before.uidl.slice(1).map((line) => line.split(' ')[1]), 'the others keep their UIDL');
  const inbox = (await pop3.services.mail.folders.usage(accountId)).find((f) => f.name === 'INBOX')!;
  t.equal(inbox.messages, 2, 'an IMAP client sees it gone too');
});
