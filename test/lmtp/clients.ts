import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

const PYTHON_CLIENT = fileURLToPath(new URL('./lmtp-client.py', import.meta.url));

/** [code, text] as the client saw it. */
export type Answer = [number, string];

export interface PythonTransaction {
  from: string;
  to: string[];
  message: Buffer;
  mailOptions?: string[];
}

export interface PythonResult {
  lhlo: Answer;
  /** LHLO keywords (lowercase) -> their parameters. */
  features: Record<string, string>;
  transactions: { mail: Answer; rcpt: Answer[]; data: Answer[] }[];
}

/** Runs the transactions over one connection with Python's smtplib.LMTP. */
export async function pythonLmtp(port: number, transactions: PythonTransaction[]): Promise<PythonResult> {
  const child = spawn('python3', [PYTHON_CLIENT], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  child.stdin.end(
    JSON.stringify({
      host: '127.0.0.1',
      port,
      transactions: transactions.map((tx) => ({ ...tx, message: tx.message.toString('base64') })),
    }),
  );
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`lmtp-client.py exited with ${code}: ${stderr}`);
  return JSON.parse(stdout) as PythonResult;
}

/**
 * A plain socket speaking LMTP by hand, for what a library client hides: pipelining, exact reply
 * lines, a connection dropped in the middle of DATA.
 */
export class RawLmtp {
  private buffer = '';
  private waiting: (() => void) | null = null;
  private ended = false;
  /** The server's first reply: 220, or 421 when it turns the client away. */
  greeting = '';

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  /** preface: bytes sent before the greeting is awaited (a PROXY header). */
  static async open(port: number, preface?: string): Promise<RawLmtp> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    if (preface !== undefined) socket.write(preface);
    const client = new RawLmtp(socket);
    [client.greeting] = (await client.replies(1)) as [string];
    return client;
  }

  private wake() {
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.();
  }

  write(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** The next `count` replies; a multi-line reply comes back as its lines joined with \n. */
  async replies(count: number): Promise<string[]> {
    const replies: string[] = [];
    let lines: string[] = [];
    while (replies.length < count) {
      const end = this.buffer.indexOf('\r\n');
      if (end < 0) {
        if (this.ended) throw new Error(`connection closed after ${JSON.stringify(replies.concat(lines))}`);
        await new Promise<void>((resolve) => (this.waiting = resolve));
        continue;
      }
      const line = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      lines.push(line);
      if (line[3] !== '-') {
        replies.push(lines.join('\n'));
        lines = [];
      }
    }
    return replies;
  }

  /** Sends a command line and returns its reply. */
  async command(line: string): Promise<string> {
    this.write(`${line}\r\n`);
    const [reply] = await this.replies(1);
    return reply!;
  }

  /** Resolves once the server has closed the connection. */
  async closed(): Promise<void> {
    while (!this.ended) await new Promise<void>((resolve) => (this.waiting = resolve));
  }

  close(): void {
    this.socket.destroy();
  }
}

/** RFC 5321 §4.5.2: a line starting with '.' gets another one in front on the wire. */
export function dotStuff(message: Buffer): string {
  return message.toString('latin1').replace(/(^|\r\n)\./g, '$1..');
}
