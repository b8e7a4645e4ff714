import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { type SecureContext, TLSSocket } from 'node:tls';
import { constants as zlib, createDeflateRaw, createInflateRaw, type DeflateRaw, type InflateRaw } from 'node:zlib';
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
 * Our compressor (RFC 4978 leaves its settings to us): an 8 KiB window and memLevel 7 hold 96 KiB
 * where zlib's defaults hold 256 KiB, and compress FETCH answers and mail text at most 3 points
 * worse (measured: 6.2% against 6.1% of the size, 29.9% against 26.8%). Each
 * write is flushed (Z_SYNC_FLUSH): the client can read all of it without waiting for more. The
 * inflater keeps zlib's 32 KiB window, the most a client may use.
 */
const DEFLATE = { windowBits: 13, memLevel: 7, flush: zlib.Z_SYNC_FLUSH };
// Output gathered this far goes to the compressor before the turn ends.
const DEFLATE_CHUNK = 64 * 1024;
/**
 * A connection quiet this long gives its compressor back (most of a compressed connection's
 * memory; an IDLE crowd would hold it for hours) and makes a new one for its next answer. Safe
 * after a sync flush: the new compressor's blocks go on the same stream, referring back only to
 * what it compressed itself.
 */
export const DEFLATE_QUIET_MS = 5_000;

interface Compression {
  inflate: InflateRaw;
  /** Null while the connection is quiet. */
  deflate: DeflateRaw | null;
  /** This turn's writes, not yet handed to the compressor. */
  pending: Buffer[];
  pendingBytes: number;
  /** Gives the compressor back after DEFLATE_QUIET_MS without writes. */
  quiet: NodeJS.Timeout;
}

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
  /** Once COMPRESS=DEFLATE is on: what is read is inflated, what is written deflated. */
  private compression: Compression | null = null;
  private finishing: Promise<void> = Promise.resolve();
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

  get compressed(): boolean {
    return this.compression !== null;
  }

  /** Settles once close() has handed everything to the socket (compressed, a moment after). */
  get sent(): Promise<void> {
    return this.finishing;
  }

  private attach(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => {
      const inflate = this.compression?.inflate;
      if (!inflate) return this.receive(chunk);
      // Compressed input waits in the kernel's buffers while the inflater is behind.
      if (inflate.writable && !inflate.write(chunk)) socket.pause();
    });
    // What the client sent before it hung up is still inflated and read.
    socket.on('end', () => (this.compression ? this.compression.inflate.end() : this.end()));
    socket.on('close', () => this.end());
    socket.on('error', () => this.end());
  }

  /** Input as the session reads it: inflated, when compressed. */
  private receive(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    if (this.buffer.length > MAX_BUFFERED) this.source.pause();
    this.wake();
  }

  /** Where the session's input comes from: the socket, or the inflater reading it. */
  private get source(): Socket | InflateRaw {
    return this.compression?.inflate ?? this.socket;
  }

  private end(): void {
    this.ended = true;
    this.stopLineTimer();
    if (this.socket.destroyed && this.compression) {
      // zlib's memory is freed now rather than at some later garbage collection.
      this.compression.inflate.destroy();
      this.compression.deflate?.destroy();
      clearTimeout(this.compression.quiet);
    }
    this.wake();
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.();
  }

  private async more(): Promise<boolean> {
    if (this.ended) return false;
    this.source.resume();
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
   * Compressed, what is written in one turn of the event loop is deflated as one chunk and
   * flushed once: a burst of lines is one flush, and every answer reaches the client whole.
   */
  private send(data: string | Buffer): void {
    const compression = this.compression;
    if (!compression) return this.sendRaw(data);
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (compression.pending.length === 0) process.nextTick(() => this.deflatePending(compression));
    compression.pending.push(bytes);
    compression.pendingBytes += bytes.length;
    if (compression.pendingBytes >= DEFLATE_CHUNK) this.deflatePending(compression);
  }

  private deflatePending(compression: Compression): void {
    const { pending, pendingBytes } = compression;
    if (pending.length === 0) return;
    compression.pending = [];
    compression.pendingBytes = 0;
    compression.deflate ??= this.deflater();
    compression.deflate.write(pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes));
    compression.quiet.refresh();
  }

  private deflater(): DeflateRaw {
    const deflate = createDeflateRaw(DEFLATE);
    deflate.on('data', (chunk: Buffer) => this.sendRaw(chunk));
    // Out of memory: nothing more can be said.
    deflate.on('error', () => this.destroy());
    return deflate;
  }

  private quiet(compression: Compression): void {
    const deflate = compression.deflate;
    if (deflate === null || deflate.writableEnded) return;
    // Still compressing (the client reads slowly): another quiet period first.
    if (deflate.writableLength > 0) return void compression.quiet.refresh();
    deflate.destroy();
    compression.deflate = null;
  }

  /**
   * What is written in one turn of the event loop leaves together, in one system call: a status
   * line and the message after it are one packet, not two (TCP_NODELAY sends each write at once).
   */
  private sendRaw(data: string | Buffer): void {
    const socket = this.socket;
    if (this.corked !== socket) {
      this.corked = socket;
      socket.cork();
      process.nextTick(() => this.uncork(socket));
    }
    socket.write(data);
  }

  private uncork(socket: Socket): void {
    if (this.corked !== socket) return;
    this.corked = null;
    socket.uncork();
  }

  /**
   * Writes piece by piece, waiting whenever more than MAX_UNSENT bytes are queued (the client
   * reads slower than we send), in the socket or before the compressor. Not at the socket's
   * 16 KiB mark: a message and its terminating line would leave in separate packets.
   */
  async writeAll(pieces: Iterable<Buffer>): Promise<void> {
    for (const piece of pieces) {
      if (this.ended) return;
      this.send(piece);
      for (let full = this.backlog(); full !== null; full = this.backlog()) await drained(full);
    }
  }

  /** The stream holding more than MAX_UNSENT bytes not yet sent, while the client is there. */
  private backlog(): Writable | null {
    if (this.ended) return null;
    const deflate = this.compression?.deflate;
    if (deflate && deflate.writableLength > MAX_UNSENT) return deflate;
    return this.socket.writableLength > MAX_UNSENT ? this.socket : null;
  }

  /**
   * COMPRESS=DEFLATE (RFC 4978): from here on both directions are raw DEFLATE, the input already
   * received after the command included. `onCorrupt`: input that does not inflate; the
   * connection closes after it.
   */
  startCompression(onCorrupt: () => void): void {
    const inflate = createInflateRaw();
    const compression: Compression = {
      inflate,
      deflate: null,
      pending: [],
      pendingBytes: 0,
      quiet: setTimeout(() => this.quiet(compression), DEFLATE_QUIET_MS).unref(),
    };
    this.compression = compression;
    inflate.on('data', (chunk: Buffer) => this.receive(chunk));
    inflate.on('drain', () => this.socket.resume());
    inflate.on('end', () => this.end());
    inflate.on('error', () => {
      onCorrupt();
      if (!this.ended) this.close();
    });
    const early = this.buffer;
    this.buffer = Buffer.alloc(0);
    if (early.length > 0) inflate.write(early);
  }

  /**
   * STARTTLS / STLS: anything the client sent after the command is thrown away (RFC 2595 §3.1:
   * plaintext injected before the handshake must not be taken as coming over TLS).
   */
  async upgradeToTls(context: SecureContext): Promise<void> {
    const plain = this.socket;
    // Answered in plain text before the handshake starts.
    this.uncork(plain);
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
    const compression = this.compression;
    if (!compression) socket.end();
    else if (!socket.destroyed && !compression.deflate?.writableEnded) {
      // The compressed stream is finished first (a final block), then the connection.
      this.deflatePending(compression);
      clearTimeout(compression.quiet);
      const deflate = (compression.deflate ??= this.deflater());
      deflate.once('end', () => socket.end());
      this.finishing = new Promise((resolve) => deflate.once('close', resolve));
      deflate.end();
    }
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

/** Resolves once `stream` has room again, or is gone. */
function drained(stream: Writable): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}
