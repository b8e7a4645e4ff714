import { LoginError, type LoginAccount, type LoginService } from '../core/auth/login.js';
import { isDatabaseUnavailable, loggable } from '../core/errors.js';
import type { Change } from '../core/events/changes.js';
import type { NewSession } from '../core/sessions/service.js';
import type { MailStore } from '../core/mailstore/service.js';
import type { Metrics } from '../core/metrics.js';
import { Connection, LINE_TOO_LONG } from '../net/connection.js';
import type { TlsCertificate } from '../net/tls.js';
import { type Logger, sessionLogger } from '../log.js';
import { COMMANDS } from './commands.js';
import type { ReadAhead } from './read-ahead.js';

/** What a POP3 session needs from the rest of Mailroom. */
export interface Pop3Context {
  login: LoginService;
  mail: MailStore;
  metrics: Pick<Metrics, 'bytesSent' | 'commandDuration'>;
  /** Exclusive access to a maildrop across every gateway process; null when another session has it. */
  lockMaildrop(accountId: number, onLost: () => void): Promise<(() => Promise<void>) | null>;
  /** onResync: changes may have been missed (the feed reconnected). */
  subscribe(listener: (change: Change) => void, onResync: () => void): Promise<() => Promise<void>>;
  /** Lists the session for support (GET /v1/mailboxes/{address}/sessions); answers its removal. */
  registerSession(session: NewSession): Promise<() => Promise<void>>;
  /** For STLS; null when TLS is not available on this port. */
  tls: TlsCertificate | null;
  idleTimeoutMs: number;
  /** From connect to login, however busy the client keeps the connection. */
  loginTimeoutMs: number;
  /** From a command line's first byte to its end. */
  lineTimeoutMs: number;
  maxAuthFailures: number;
  /** Plaintext credentials on an unencrypted connection from another host (MAILROOM_ALLOW_PLAINTEXT_AUTH). */
  allowPlaintextAuth: boolean;
  /** The door's logger; each session logs through a child of it (sessionLogger). */
  log: Logger;
}

/** A message as this session numbers it: the scan listing never changes during the session. */
export interface ListedMessage {
  uid: number;
  /** The UIDL: the store's stable message key. */
  key: number;
  /** Octets as sent, with every line ending CRLF. */
  size: number;
  deleted: boolean;
}

export interface Maildrop {
  account: LoginAccount;
  inboxId: number;
  messages: ListedMessage[];
  reader: ReadAhead;
  /** Undo, in order: the change-feed subscription, the session listing, the lock. */
  release: (() => Promise<void>)[];
}

export const MAX_LINE = 2048;

export class Pop3Session {
  state: 'authorization' | 'transaction' | 'update' = 'authorization';
  /** USER given, awaiting PASS. */
  user: string | null = null;
  /** The mailbox this session logged in to, for its log lines. */
  loggedInAs: string | null = null;
  authFailures = 0;
  maildrop: Maildrop | null = null;
  /** Every line of this connection carries its session id, protocol and client address. */
  readonly log: Logger;
  /** Why the server ended the session, for the closing log line. */
  endedBecause: string | null = null;
  private loginTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly connection: Connection,
    readonly context: Pop3Context,
  ) {
    this.log = sessionLogger(context.log, 'pop3', connection.remoteAddress);
  }

  ok(text: string): void {
    this.connection.write(`+OK ${text}\r\n`);
  }

  /** Plaintext credentials are refused off loopback unless TLS is on or allowed by config. */
  get mayLogin(): boolean {
    return this.connection.secure || this.connection.loopback || this.context.allowPlaintextAuth;
  }

  err(text: string): void {
    this.connection.write(`-ERR ${text}\r\n`);
  }

  /** A multi-line answer: lines starting with '.' are stuffed, then the terminating '.'. */
  multiline(first: string, lines: string[]): void {
    const body = lines.map((line) => (line.startsWith('.') ? `.${line}` : line)).join('\r\n');
    this.connection.write(`+OK ${first}\r\n${body}${lines.length > 0 ? '\r\n' : ''}.\r\n`);
  }

  /**
   * Ends the session from the server's side (RFC 2449 SYS/TEMP: the client may come back later).
   * A QUIT already removing messages is let finish; it closes the connection itself.
   */
  end(text: string): void {
    if (this.connection.closed || this.state === 'update') return;
    this.err(`[SYS/TEMP] ${text}`);
    this.close(text);
  }

  /** Closes the connection from the server's side, saying why in the closing log line. */
  close(reason: string): void {
    this.endedBecause ??= reason;
    this.connection.close();
  }

  async run(): Promise<void> {
    const { connection, context } = this;
    const opened = Date.now();
    this.log.debug({ tls: connection.secure }, 'connection opened');
    const closeWith = (text: string) => () => {
      this.err(text);
      this.close(text);
    };
    connection.setIdleTimeout(context.idleTimeoutMs, closeWith('[SYS/TEMP] Idle for too long, closing'));
    connection.setLineTimeout(context.lineTimeoutMs, closeWith('Command line took too long to arrive, closing'));
    this.loginTimer = setTimeout(closeWith('Login timeout, closing'), context.loginTimeoutMs);
    this.ok('Mailroom POP3 ready');
    try {
      while (!this.connection.closed) {
        const line = await this.connection.readLine();
        if (line === null) break;
        if (line === LINE_TOO_LONG) {
          this.err('Command line too long');
          continue;
        }
        await this.handle(line);
      }
    } finally {
      clearTimeout(this.loginTimer);
      await this.release();
      const user = this.loggedInAs ?? undefined;
      // A connection that never logged in (a port probe, a health check) is news only when debugging.
      this.log[user ? 'info' : 'debug'](
        { user, reason: this.endedBecause ?? 'closed by the client', seconds: (Date.now() - opened) / 1000 },
        'connection closed',
      );
    }
  }

  /** Logged in: the login timeout no longer applies. */
  loggedIn(maildrop: Maildrop): void {
    clearTimeout(this.loginTimer);
    this.maildrop = maildrop;
    this.loggedInAs = maildrop.account.address;
    this.state = 'transaction';
    this.user = null;
  }

  /** Sends a message as RETR or TOP encodes it, counting its bytes. */
  async sendMessage(pieces: Iterable<Buffer>): Promise<void> {
    const bytesSent = this.context.metrics.bytesSent;
    await this.connection.writeAll(
      (function* () {
        for (const piece of pieces) {
          bytesSent.inc({ protocol: 'pop3' }, piece.length);
          yield piece;
        }
      })(),
    );
  }

  /** Runs one command, timed by its name; anything unknown is timed as "other", so the label set stays bounded. */
  private async handle(line: string): Promise<void> {
    const [word = '', ...rest] = line.split(' ');
    const name = word.toUpperCase();
    const done = this.context.metrics.commandDuration.startTimer({ protocol: 'pop3' });
    await this.execute(name, rest.join(' '));
    done({ command: Object.hasOwn(COMMANDS, name) ? name : 'other' });
  }

  private async execute(name: string, argument: string): Promise<void> {
    const command = COMMANDS[name];
    if (!command || !command.states.includes(this.state)) {
      this.err(command ? `${name} is not allowed now` : 'Unknown command');
      return;
    }
    try {
      await command.run(this, argument);
    } catch (error) {
      if (error instanceof LoginError) {
        this.err(`[AUTH] ${error.message}`);
        return;
      }
      this.log[isDatabaseUnavailable(error) ? 'warn' : 'error']({ err: loggable(error), command: name }, 'pop3 command failed');
      this.err('[SYS/TEMP] A temporary problem on the server; try again later');
    }
  }

  /** A dropped connection deletes nothing; it only gives the maildrop back. */
  async release(): Promise<void> {
    const maildrop = this.maildrop;
    this.maildrop = null;
    if (!maildrop) return;
    for (const undo of maildrop.release) await undo().catch(() => {});
  }

  message(argument: string): ListedMessage | null {
    if (!/^\d{1,9}$/.test(argument)) return null;
    const message = this.maildrop!.messages[Number(argument) - 1];
    return message && !message.deleted ? message : null;
  }
}
