import { connect as connectTcp, type Socket } from 'node:net';
import type { X509Certificate } from 'node:crypto';
import { connect as connectTls, TLSSocket } from 'node:tls';
import { constants as zlib, createDeflateRaw, createInflateRaw, type DeflateRaw, type InflateRaw } from 'node:zlib';

/**
 * A plain socket speaking a line protocol by hand (POP3, IMAP), for what library clients hide:
 * exact reply lines, pipelining, byte stuffing, garbage input.
 */
export class LineClient {
  private buffer = Buffer.alloc(0);
  private waiting: (() => void) | null = null;
  private ended = false;
  /** After compress(): the server's bytes are inflated, ours deflated. */
  private compression: { inflate: InflateRaw; deflate: DeflateRaw } | null = null;
  /** After compress(): the server's bytes as they came, still compressed. */
  readonly compressedBytes: Buffer[] = [];

  private constructor(private socket: Socket | TLSSocket) {
    this.attach(socket);
  }

  /**
   * To a port on 127.0.0.1, or to a Unix socket's path (a client that is not on loopback, as far
   * as the server can tell). localAddress (plain connections): the client's own, e.g. 127.0.0.2
   * to come from another address. preface: bytes sent first, before any TLS (a PROXY header).
   */
  static async connect(
    port: number | string,
    options: { tls?: boolean; localAddress?: string; preface?: Buffer } = {},
  ): Promise<LineClient> {
    if (options.preface && typeof port === 'number') {
      const plain = connectTcp({ host: '127.0.0.1', port, localAddress: options.localAddress });
      await new Promise<void>((resolve, reject) => {
        plain.once('connect', () => resolve());
        plain.once('error', reject);
      });
      plain.write(options.preface);
      const client = new LineClient(plain);
      if (options.tls) await client.startTls();
      return client;
    }
    const socket =
      typeof port === 'string'
        ? connectTcp({ path: port })
        : options.tls
          ? connectTls({ host: '127.0.0.1', port, rejectUnauthorized: false })
          : connectTcp({ host: '127.0.0.1', port, localAddress: options.localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once(options.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    return new LineClient(socket);
  }

  private attach(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => {
      if (!this.compression) return this.receive(chunk);
      this.compressedBytes.push(chunk);
      this.compression.inflate.write(chunk);
    });
    // Compressed, what came before the end is still being inflated.
    const end = () => (this.compression ? this.compression.inflate.end() : this.end());
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  private receive(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    this.wake();
  }

  private end(): void {
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.();
  }

  send(data: string | Buffer): void {
    if (!this.compression) return void this.socket.write(data);
    this.compression.deflate.write(data);
    this.compression.deflate.flush(zlib.Z_SYNC_FLUSH);
  }

  /** Bytes as they are, past any compression (a compressed stream made by the test). */
  sendRaw(data: Buffer): void {
    this.socket.write(data);
  }

  /**
   * COMPRESS=DEFLATE (RFC 4978), once the server has said OK: both directions raw DEFLATE from
   * here on; what is buffered past the OK came compressed.
   */
  compress(): void {
    const inflate = createInflateRaw();
    const deflate = createDeflateRaw();
    inflate.on('data', (chunk: Buffer) => this.receive(chunk));
    inflate.on('end', () => this.end());
    inflate.on('error', () => this.end());
    deflate.on('data', (chunk: Buffer) => this.socket.write(chunk));
    this.compression = { inflate, deflate };
    const early = this.buffer;
    this.buffer = Buffer.alloc(0);
    if (early.length > 0) {
      this.compressedBytes.push(early);
      inflate.write(early);
    }
  }

  /** The next line without its CRLF, or null once the server has closed and nothing is left. */
  async readLine(timeoutMs = 10_000): Promise<string | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.buffer.indexOf('\r\n');
      if (end !== -1) {
        const line = this.buffer.subarray(0, end).toString('latin1');
        this.buffer = this.buffer.subarray(end + 2);
        return line;
      }
      if (this.ended) return null;
      if (Date.now() > deadline) throw new Error(`no line within ${timeoutMs} ms; buffered: ${this.buffer.toString('latin1')}`);
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 100);
      });
    }
  }

  /** Lines up to the terminating '.', still byte-stuffed (as sent). */
  async readMultiline(): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.readLine();
      if (line === null) throw new Error('connection closed inside a multi-line answer');
      if (line === '.') return lines;
      lines.push(line);
    }
  }

  /** Sends a command and answers its first reply line. */
  async command(line: string): Promise<string | null> {
    this.send(`${line}\r\n`);
    return this.readLine();
  }

  async startTls(): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = connectTls({ socket: plain, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.attach(secure);
  }

  /** The server's certificate once TLS is on (implicit, or after startTls). */
  get certificate(): X509Certificate | undefined {
    return this.socket instanceof TLSSocket ? this.socket.getPeerX509Certificate() : undefined;
  }

  get closed(): boolean {
    return this.ended && this.buffer.length === 0;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Sends a tagged command and answers every line up to and including the tagged one. */
export async function run(client: LineClient, line: string): Promise<string[]> {
  const tag = line.split(' ')[0]!;
  client.send(`${line}\r\n`);
  const lines: string[] = [];
  for (;;) {
    const answer = await client.readLine();
    if (answer === null) return lines;
    lines.push(answer);
    if (answer.startsWith(`${tag} `)) return lines;
  }
}

/** NOOP until the untagged lines seen so far satisfy `done` (the change feed is asynchronous). */
export async function until(client: LineClient, done: (lines: string[]) => boolean): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < 50 && !done(seen); i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    seen.push(...(await run(client, `u${i} NOOP`)).slice(0, -1));
  }
  return seen;
}

/** Sends `data` every 50 ms until stopped, as a client keeping its connection busy. */
export function drip(client: LineClient, data: string): () => void {
  const timer = setInterval(() => client.send(data), 50);
  return () => clearInterval(timer);
}

/** The lines the server sends before it closes. */
export async function lastWords(client: LineClient): Promise<string[]> {
  const lines: string[] = [];
  for (let line = await client.readLine(); line !== null; line = await client.readLine()) lines.push(line);
  return lines;
}
