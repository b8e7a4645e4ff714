/**
 * The IMAP benches' client. It relies on RFC 3501 alone: responses are lines, a line ending in
 * {n} (or {n+}) is followed by n octets of literal and goes on after them; one command at a time.
 */
import { connect, type Socket } from 'node:net';

export interface Reply {
  /** The tagged line's text after the tag, e.g. "OK [APPENDUID 1 2001] APPEND completed". */
  text: string;
  /** Untagged lines, literals replaced by their {n}. */
  untagged: string[];
  /** Size of each literal received, in order. */
  literals: number[];
}

export class ImapClient {
  private buffer: Buffer = Buffer.alloc(0);
  private offset = 0;
  /** Octets of literal still to skip before the current line goes on. */
  private literalLeft = 0;
  private line = '';
  private literals: number[] = [];
  private untagged: string[] = [];
  private tagged: { tag: string; resolve(reply: Reply): void; reject(error: Error): void } | null = null;
  private continued: (() => void) | null = null;
  private greeted: { resolve(): void; reject(error: Error): void } | null = null;
  private failed: Error | null = null;
  private tags = 0;
  /** Called with every untagged line as it arrives, e.g. to time `* n EXISTS` during IDLE. */
  onUntagged: ((line: string) => void) | null = null;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.offset >= this.buffer.length ? chunk : Buffer.concat([this.buffer.subarray(this.offset), chunk]);
      this.offset = 0;
      this.parse();
    });
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  static async open(port: number): Promise<ImapClient> {
    const socket = connect(port, '127.0.0.1');
    const client = new ImapClient(socket);
    await new Promise<void>((resolve, reject) => (client.greeted = { resolve, reject }));
    return client;
  }

  /** Connects and logs in with LOGIN, then SELECTs INBOX; answers the client and EXISTS. */
  static async session(port: number, address: string, password: string): Promise<{ client: ImapClient; exists: number }> {
    const client = await ImapClient.open(port);
    await client.command(`LOGIN ${address} "${password}"`);
    return { client, exists: await client.select() };
  }

  private fail(error: Error) {
    this.failed ??= error;
    const tagged = this.tagged;
    const greeted = this.greeted;
    this.tagged = null;
    this.greeted = null;
    tagged?.reject(this.failed);
    greeted?.reject(this.failed);
  }

  private parse() {
    for (;;) {
      if (this.literalLeft > 0) {
        const take = Math.min(this.literalLeft, this.buffer.length - this.offset);
        this.offset += take;
        this.literalLeft -= take;
        if (this.literalLeft > 0) return;
      }
      const end = this.buffer.indexOf('\r\n', this.offset);
      if (end < 0) return;
      const piece = this.buffer.toString('latin1', this.offset, end);
      this.offset = end + 2;
      const literal = /\{(\d+)\+?\}$/.exec(piece);
      this.line += piece;
      if (literal) {
        this.literalLeft = Number(literal[1]);
        this.literals.push(this.literalLeft);
        continue;
      }
      const line = this.line;
      this.line = '';
      this.response(line);
    }
  }

  private response(line: string) {
    if (line.startsWith('+')) {
      const continued = this.continued;
      this.continued = null;
      continued?.();
    } else if (line.startsWith('* ')) {
      if (this.greeted) {
        const greeted = this.greeted;
        if (!line.startsWith('* OK')) return this.fail(new Error(`IMAP greeting: ${line}`));
        this.greeted = null;
        greeted.resolve();
        return;
      }
      this.untagged.push(line);
      this.onUntagged?.(line);
    } else {
      const space = line.indexOf(' ');
      const tagged = this.tagged;
      if (!tagged || line.slice(0, space) !== tagged.tag) {
        this.fail(new Error(`unexpected IMAP response: ${line.slice(0, 200)}`));
        return;
      }
      this.tagged = null;
      const reply = { text: line.slice(space + 1), untagged: this.untagged, literals: this.literals };
      this.untagged = [];
      this.literals = [];
      if (reply.text.startsWith('OK')) tagged.resolve(reply);
      else tagged.reject(new Error(`IMAP server answered: ${line.slice(0, 200)}`));
    }
  }

  /** Sends one command (with a LITERAL+ literal after it, if given); resolves on OK, throws otherwise. */
  command(text: string, literal?: Buffer): Promise<Reply> {
    if (this.failed) return Promise.reject(this.failed);
    const tag = `a${++this.tags}`;
    const reply = new Promise<Reply>((resolve, reject) => (this.tagged = { tag, resolve, reject }));
    if (literal) this.socket.write(Buffer.concat([Buffer.from(`${tag} ${text} {${literal.length}+}\r\n`), literal, Buffer.from('\r\n')]));
    else this.socket.write(`${tag} ${text}\r\n`);
    return reply;
  }

  async select(): Promise<number> {
    const reply = await this.command('SELECT INBOX');
    const exists = reply.untagged.map((line) => /^\* (\d+) EXISTS/.exec(line)).find((m) => m !== null);
    if (!exists) throw new Error('SELECT answered no EXISTS');
    return Number(exists[1]);
  }

  /** Starts IDLE and resolves at the continuation; `done()` ends it. */
  async idle(): Promise<{ done(): Promise<Reply> }> {
    const continued = new Promise<void>((resolve) => (this.continued = resolve));
    const ended = this.command('IDLE');
    // A connection dropped while idling (as the bench drops its crowd) is no failure until DONE is awaited.
    ended.catch(() => {});
    await Promise.race([continued, ended]);
    return {
      done: () => {
        this.socket.write('DONE\r\n');
        return ended;
      },
    };
  }

  async logout(): Promise<void> {
    await this.command('LOGOUT');
    this.socket.end();
  }

  destroy() {
    this.socket.destroy();
  }
}
