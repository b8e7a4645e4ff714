/**
 * The POP3 benches' client. It counts on nothing but RFC 1939: status lines, and multi-line
 * answers that end at CRLF.CRLF.
 */
import { connect, type Socket } from 'node:net';

const TERMINATOR = Buffer.from('\r\n.\r\n');

export class Pop3Client {
  private buffer: Buffer = Buffer.alloc(0);
  private offset = 0;
  private waiting: (() => void) | null = null;
  private failed: Error | null = null;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.offset >= this.buffer.length ? chunk : Buffer.concat([this.buffer.subarray(this.offset), chunk]);
      this.offset = 0;
      this.wake();
    });
    socket.on('error', (error) => {
      this.failed = error;
      this.wake();
    });
    socket.on('close', () => {
      this.failed ??= new Error('connection closed');
      this.wake();
    });
  }

  static async open(port: number): Promise<Pop3Client> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const client = new Pop3Client(socket);
    await client.status();
    return client;
  }

  /** Connects and logs in with USER/PASS, one command at a time, as most clients do. */
  static async login(port: number, user: string, password: string): Promise<Pop3Client> {
    const client = await Pop3Client.open(port);
    await client.command(`USER ${user}`);
    await client.command(`PASS ${password}`);
    return client;
  }

  private wake() {
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.();
  }

  private async more(): Promise<void> {
    if (this.failed) throw this.failed;
    await new Promise<void>((resolve) => (this.waiting = resolve));
  }

  /** The next status line; throws on -ERR. */
  async status(): Promise<string> {
    for (;;) {
      const end = this.buffer.indexOf('\r\n', this.offset);
      if (end >= 0) {
        const line = this.buffer.toString('latin1', this.offset, end);
        this.offset = end + 2;
        if (!line.startsWith('+OK')) throw new Error(`POP3 server answered: ${line}`);
        return line;
      }
      await this.more();
    }
  }

  /** After a +OK status line: the body of a multi-line answer, still dot-stuffed, with its final CRLF. */
  async body(): Promise<Buffer> {
    while (this.buffer.length - this.offset < 3) await this.more();
    // A body line '.' is sent as '..', so '.' CRLF at once is the end of an empty body.
    if (this.buffer.toString('latin1', this.offset, this.offset + 3) === '.\r\n') {
      this.offset += 3;
      return Buffer.alloc(0);
    }
    let from = this.offset;
    for (;;) {
      const end = this.buffer.indexOf(TERMINATOR, from);
      if (end >= 0) {
        const body = this.buffer.subarray(this.offset, end + 2);
        this.offset = end + TERMINATOR.length;
        return body;
      }
      // Arriving data moves the unread part to the front: keep positions relative to it.
      const scanned = Math.max(from, this.buffer.length - (TERMINATOR.length - 1)) - this.offset;
      await this.more();
      from = this.offset + scanned;
    }
  }

  async command(line: string): Promise<string> {
    this.socket.write(`${line}\r\n`);
    return this.status();
  }

  async multiline(line: string): Promise<Buffer> {
    this.socket.write(`${line}\r\n`);
    await this.status();
    return this.body();
  }

  /** LIST: the octet count of each message, by message number - 1. */
  async list(): Promise<number[]> {
    const lines = (await this.multiline('LIST')).toString('latin1').split('\r\n').filter((l) => l !== '');
    return lines.map((line) => Number(line.split(' ')[1]));
  }

  /** RETRs messages 1..sizes.length with up to `window` commands in flight; checks every size. */
  async retrieveAll(sizes: number[], window: number): Promise<number> {
    let sent = 0;
    let received = 0;
    let octets = 0;
    const send = () => {
      const batch: string[] = [];
      while (sent < sizes.length && batch.length + (sent - received) < window) batch.push(`RETR ${++sent}\r\n`);
      if (batch.length > 0) this.socket.write(batch.join(''));
    };
    send();
    while (received < sizes.length) {
      await this.status();
      const body = await this.body();
      const expected = sizes[received]!;
      if (body.length !== expected) throw new Error(`message ${received + 1}: ${body.length} octets, LIST said ${expected}`);
      octets += body.length;
      received++;
      send();
    }
    return octets;
  }

  async quit(): Promise<void> {
    await this.command('QUIT');
    this.socket.end();
  }
}
