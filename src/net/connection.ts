import type { Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import { plainAddress } from './proxy-protocol.js';

/** A line too long to be a command: the rest up to its line end is dropped, the session goes on. */
export const LINE_TOO_LONG = Symbol('line too long');

export type Line = string | typeof LINE_TOO_LONG;

// Pipelined input beyond this is left in the kernel's buffers until the session catches up.
const MAX_BUFFERED = 256 * 1024;
// Output queued beyond this waits until the client has taken it.
const MAX_UNSENT = 256 * 1024;
// After close(), a client that neither reads the last answer nor hangs up is cut off.
const CLOSE_GRACE_MS = 30_000;

/**
 * A client connection read line by line (CRLF or bare LF) or by byte count (IMAP literals), with
 * a cap on line length and on how much pipelined input is held, and an in-place TLS upgrade.
 */
export class Connection {
  private socket: Socket;
  private buffer: Buffer = Buffer.alloc(0);
  private discarding = false;
  private waiting: (() => void) | null = null;
  private ended = false;
  /** The socket holding back this turn's writes, until flushed. */
  private corked: Socket | null = null;
  /** Between STARTTLS and the end of the handshake. */
  private handshaking = false;
  private lineTimeout: { ms: number; onTimeout: () => void } | null = null;
  /** Runs while a begun line is awaited. */
  private lineTimer: NodeJS.Timeout | null = null;
  readonly remoteAddress: string;
  /** From this host: plaintext credentials cannot be sniffed on the way. */
  readonly loopback: boolean;

  /** `remoteAddress`: the client's, when a PROXY header named one; the peer's by default. */
  constructor(
    socket: Socket,
    private readonly maxLineLength: number,
    remoteAddress = plainAddress(socket.remoteAddress ?? 'unknown'),
  ) {
    this.socket = socket;
    this.remoteAddress = remoteAddress;
    this.loopback = /^(127\.|::1$)/.test(this.remoteAddress);
    // Answers and pushed updates go out at once; Nagle's algorithm held IDLE pushes for ~40 ms.
    socket.setNoDelay(true);
    this.attach(socket);
  }

  get secure(): boolean {
    return this.socket instanceof TLSSocket;
  }

  get closed(): boolean {
    return this.ended;
  }

  private attach(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      if (this.buffer.length > MAX_BUFFERED) socket.pause();
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.stopLineTimer();
      this.wake();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.();
  }

  private async more(): Promise<boolean> {
    if (this.ended) return false;
    this.socket.resume();
    await new Promise<void>((resolve) => {
      this.waiting = resolve;
    });
    return true;
  }

  /** The next line without its line ending; null when the client has gone. */
  async readLine(): Promise<Line | null> {
    for (;;) {
      const end = this.buffer.indexOf(0x0a);
      if (end === -1) {
        if (this.buffer.length > this.maxLineLength) {
          // Keep reading but stop keeping: the line is answered as too long once it ends.
          this.buffer = Buffer.alloc(0);
          this.discarding = true;
        }
        if (this.buffer.length > 0 || this.discarding) this.startLineTimer();
        if (!(await this.more())) return null;
        continue;
      }
      this.stopLineTimer();
      const raw = this.buffer.subarray(0, end);
      this.buffer = this.buffer.subarray(end + 1);
      if (this.discarding || raw.length > this.maxLineLength) {
        this.discarding = false;
        return LINE_TOO_LONG;
      }
      const line = raw.at(-1) === 0x0d ? raw.subarray(0, -1) : raw;
      return line.toString('utf8');
    }
  }

  /** Exactly `length` bytes (an IMAP literal); null when the client has gone first. */
  async readBytes(length: number): Promise<Buffer | null> {
    const parts: Buffer[] = [];
    let remaining = length;
    while (remaining > 0) {
      if (this.buffer.length === 0 && !(await this.more())) return null;
      const take = this.buffer.subarray(0, remaining);
      this.buffer = this.buffer.subarray(take.length);
      parts.push(take);
      remaining -= take.length;
    }
    return Buffer.concat(parts);
  }

  write(data: string | Buffer): void {
    if (!this.ended) this.send(data);
  }

  /**
   * What is written in one turn of the event loop leaves together, in one system call: a status
   * line and the message after it are one packet, not two (TCP_NODELAY sends each write at once).
   */
  private send(data: string | Buffer): void {
    const socket = this.socket;
    if (this.corked !== socket) {
      this.corked = socket;
      socket.cork();
      process.nextTick(() => this.flush(socket));
    }
    socket.write(data);
  }

  private flush(socket: Socket): void {
    if (this.corked !== socket) return;
    this.corked = null;
    socket.uncork();
  }

  /**
   * Writes piece by piece, waiting whenever more than MAX_UNSENT bytes are queued (the client
   * reads slower than we send). Not at the socket's 16 KiB mark: a message and its terminating
   * line would leave in separate packets.
   */
  async writeAll(pieces: Iterable<Buffer>): Promise<void> {
    for (const piece of pieces) {
      if (this.ended) return;
      this.send(piece);
      if (this.socket.writableLength > MAX_UNSENT) {
        const socket = this.socket;
        await new Promise<void>((resolve) => {
          const done = () => {
            socket.off('drain', done);
            socket.off('close', done);
            resolve();
          };
          socket.on('drain', done);
          socket.on('close', done);
        });
      }
    }
  }

  /**
   * STARTTLS / STLS: anything the client sent after the command is thrown away (RFC 2595 §3.1:
   * plaintext injected before the handshake must not be taken as coming over TLS).
   */
  async upgradeToTls(context: SecureContext): Promise<void> {
    const plain = this.socket;
    // Answered in plain text before the handshake starts.
    this.flush(plain);
    plain.removeAllListeners('data');
    plain.removeAllListeners('end');
    plain.removeAllListeners('close');
    this.buffer = Buffer.alloc(0);
    const secure = new TLSSocket(plain, { isServer: true, secureContext: context });
    this.socket = secure;
    this.attach(secure);
    this.handshaking = true;
    try {
      await new Promise<void>((resolve, reject) => {
        secure.once('secure', resolve);
        secure.once('error', reject);
        // Cut off mid-handshake (a timeout closed it): no 'error' follows.
        secure.once('close', () => reject(new Error('closed during the TLS handshake')));
      });
    } finally {
      this.handshaking = false;
    }
  }

  /** Sends what is queued, then closes. */
  close(): void {
    // Nothing can reach a client that has not finished the handshake.
    if (this.handshaking) return this.destroy();
    this.ended = true;
    this.stopLineTimer();
    const socket = this.socket;
    socket.end();
    if (!socket.destroyed) {
      const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
      socket.once('close', () => clearTimeout(timer));
    }
    this.wake();
  }

  destroy(): void {
    this.ended = true;
    this.stopLineTimer();
    this.socket.destroy();
    this.wake();
  }

  setIdleTimeout(ms: number, onIdle: () => void): void {
    this.socket.setTimeout(ms, onIdle);
  }

  /**
   * Bounds the time from a line's first byte to its end. The idle timeout alone would let a client
   * hold the connection forever by sending a byte now and then without ever finishing a command.
   */
  setLineTimeout(ms: number, onTimeout: () => void): void {
    this.lineTimeout = { ms, onTimeout };
  }

  private startLineTimer(): void {
    if (this.lineTimer !== null || this.lineTimeout === null) return;
    const { ms, onTimeout } = this.lineTimeout;
    this.lineTimer = setTimeout(() => {
      this.lineTimer = null;
      onTimeout();
    }, ms);
  }

  private stopLineTimer(): void {
    if (this.lineTimer === null) return;
    clearTimeout(this.lineTimer);
    this.lineTimer = null;
  }
}
