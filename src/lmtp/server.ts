import type { AddressInfo, Socket } from 'node:net';
import { hostname } from 'node:os';
import { domainToASCII } from 'node:url';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { normalizeAddress } from '../core/addresses.js';
import { loggable } from '../core/errors.js';
import { INBOX } from '../core/mailstore/folders.js';
import type { Services } from '../core/services.js';
import { sessionLogger } from '../log.js';
import { delivered, invalidRecipient, type Reply, replyForError, tooLarge, transientFailure } from './replies.js';

/** The pino-style logger the other doors use; only what LMTP calls. */
export interface LmtpLogger {
  level: string;
  debug(details: object, message?: string, ...args: unknown[]): void;
  info(details: object, message?: string, ...args: unknown[]): void;
  warn(details: object, message?: string, ...args: unknown[]): void;
  error(details: object, message?: string, ...args: unknown[]): void;
  child(bindings: Record<string, unknown>, options?: { level?: string }): LmtpLogger;
}

export interface LmtpOptions {
  services: Pick<Services, 'mail' | 'metrics'>;
  /** config.maxMessageSize: the largest message stored, Return-Path line included. */
  maxMessageSize: number;
  logger?: LmtpLogger;
  /** Shown in the greeting; the machine's host name by default. */
  name?: string;
  maxClients?: number;
  maxRecipients?: number;
  /** Milliseconds a client may stay silent while the server waits for it. */
  socketTimeout?: number;
  /** Milliseconds close() waits for transactions in progress before it cuts connections. */
  closeTimeout?: number;
  /** Peers (plain addresses) that must open with a PROXY v1 header; smtp-server reads no v2. */
  useProxy?: string[];
}

export interface LmtpServer {
  /** e.g. lmtp://127.0.0.1:2424 */
  url: string;
  port: number;
  /** Stops accepting, lets transactions in progress finish, then ends the idle connections. */
  close(): Promise<void>;
}

/**
 * An MTA holds a few connections (Postfix: 20 per destination by default), and each one may hold a
 * whole message in memory, so the client cap also bounds memory. RFC 5321 §4.5.3.2.7 gives a
 * server 5 minutes of client silence. Postfix sends at most 50 recipients per LMTP transaction by
 * default; 1000 leaves room for other MTAs while bounding one transaction.
 */
const DEFAULTS = { maxClients: 100, maxRecipients: 1000, socketTimeout: 5 * 60_000, closeTimeout: 8_000 };

/**
 * Room kept under config.maxMessageSize for the Return-Path line: its prefix and CRLF around a
 * reverse-path of at most 256 octets (RFC 5321 §4.5.3.1.3). A message within the advertised SIZE
 * then always fits once the line is added.
 */
export const RETURN_PATH_ROOM = 'Return-Path: \r\n'.length + 256;

/** The SIZE advertised for a store that accepts `maxMessageSize` bytes. */
export const advertisedSize = (maxMessageSize: number) => maxMessageSize - RETURN_PATH_ROOM;

const silentLogger: LmtpLogger = {
  level: 'silent',
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};

function smtpError(reply: Reply): Error {
  return Object.assign(new Error(reply.text), { responseCode: reply.code });
}

/** The message as received, or null once it went over `limit` (the rest is drained, not kept). */
async function readMessage(stream: SMTPServerDataStream, limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length <= limit) chunks.push(chunk);
  }
  return stream.sizeExceeded || length > limit ? null : Buffer.concat(chunks, length);
}

/**
 * The LMTP listener (RFC 2033): smtp-server in LMTP mode in front of core delivery. Meant for the
 * MTA on the same host or a trusted network: no AUTH, no TLS. Recipients are checked for syntax at
 * RCPT; existence, suspension and quota are decided per recipient after DATA, in one core call that
 * stores the bytes once for all of them.
 */
export async function startLmtpServer(options: LmtpOptions, host: string, port: number): Promise<LmtpServer> {
  const log = options.logger ?? silentLogger;
  const size = advertisedSize(options.maxMessageSize);
  // Transactions between DATA and their replies, so close() can let them finish.
  const inProgress = new Set<Promise<unknown>>();
  // smtp-server's session id, which its own debug lines carry as `cid`.
  const sessionLog = (session: SMTPServerSession) => sessionLogger(log, 'lmtp', session.remoteAddress, session.id);

  async function deliver(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<Reply[]> {
    const transactionLog = sessionLog(session);
    const recipients = session.envelope.rcptTo.map((rcpt) => rcpt.address);
    const message = await readMessage(stream, size);
    if (message === null) {
      transactionLog.info({ bytes: stream.byteLength, limit: size }, 'message refused: too large');
      return recipients.map(() => tooLarge(size));
    }
    const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    // The same line for every recipient, so all of them share one stored blob.
    const raw = Buffer.concat([Buffer.from(`Return-Path: <${asciiDomain(sender)}>\r\n`), message]);
    let results;
    try {
      results = await options.services.mail.deliver(raw, recipients, INBOX, { skipRedelivery: true });
    } catch (error) {
      const reply = replyForError(error, '', size);
      if (reply === null) transactionLog.error({ err: loggable(error) }, 'delivery failed; answered 451');
      return recipients.map(() => reply ?? transientFailure);
    }
    const replies = results.map((result) => {
      if (result.delivered) return delivered(result.recipient, result.uid);
      const reply = replyForError(result.error, result.recipient, size);
      if (reply === null) transactionLog.error({ err: result.error }, 'unexpected refusal; answered 451');
      return reply ?? transientFailure;
    });
    transactionLog.info(
      {
        from: sender,
        size: raw.length,
        recipients: results.map((r, i) => ({ to: r.recipient, reply: replies[i]!.code, ...(r.delivered ? { uid: r.uid } : {}) })),
      },
      'lmtp transaction',
    );
    return replies;
  }

  const server = new SMTPServer({
    lmtp: true,
    name: options.name ?? hostname(),
    disabledCommands: ['AUTH', 'STARTTLS'],
    hideSTARTTLS: true,
    // Our replies carry their own RFC 3463 codes in the text (5.2.1 and 5.3.4 are not in
    // smtp-server's table), so the library must not add a second one.
    hideENHANCEDSTATUSCODES: true,
    size,
    disableReverseLookup: true,
    // Addresses are judged by the core's rules in onRcptTo, so a bad one gets 550 5.1.1 like an unknown one.
    lenientAddressParsing: true,
    maxClients: options.maxClients ?? DEFAULTS.maxClients,
    maxRecipients: options.maxRecipients ?? DEFAULTS.maxRecipients,
    socketTimeout: options.socketTimeout ?? DEFAULTS.socketTimeout,
    closeTimeout: options.closeTimeout ?? DEFAULTS.closeTimeout,
    useProxy: options.useProxy ?? false,
    // smtp-server logs every connection at info and every client reset as an error; its lines are
    // for debugging sessions only. Errors that matter reach the 'error' event below.
    logger: log.child({ component: 'smtp-server' }, { level: ['debug', 'trace'].includes(log.level) ? log.level : 'fatal' }),

    onConnect(session, callback) {
      sessionLog(session).debug({}, 'connection opened');
      callback();
    },

    onClose(session) {
      sessionLog(session).debug({}, 'connection closed');
    },

    // Answered at once (the library's default waits a turn), so a pipelined MAIL, RCPT and DATA
    // get their replies in the same turn, and in one packet (see below).
    onMailFrom(_address, _session, callback) {
      callback();
    },

    onRcptTo(address, _session, callback) {
      try {
        normalizeAddress(address.address);
        callback();
      } catch {
        const reply = invalidRecipient(address.address);
        options.services.metrics.deliveries.inc({ result: reply.result });
        callback(smtpError(reply));
      }
    },

    onData(stream, session, callback) {
      const transaction = deliver(stream, session).then(
        (replies) => {
          for (const reply of replies) options.services.metrics.deliveries.inc({ result: reply.result });
          callback(null, replies.map(asResult));
        },
        (error: unknown) => {
          // Reading the stream failed (the client went away): nobody is left to answer.
          sessionLog(session).warn({ err: loggable(error) }, 'lmtp transaction abandoned');
          callback(smtpError(transientFailure));
        },
      );
      inProgress.add(transaction);
      void transaction.finally(() => inProgress.delete(transaction));
    },
  });

  // Connection errors (a client resetting) are reported here; without a listener they would crash the process.
  server.on('error', (error) => log.warn({ err: error }, 'lmtp connection error'));
  server.server.on('connection', coalesceWrites);

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(port, host, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.server.address() as AddressInfo).port;
  const url = `lmtp://${host.includes(':') ? `[${host}]` : host}:${bound}`;
  log.info({ url }, 'lmtp listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    port: bound,
    close: () =>
      (closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // From here every new command is answered 421; transactions past DATA still get their replies.
        while (inProgress.size > 0) await Promise.allSettled([...inProgress]);
        // The rest sit idle between transactions (an MTA's connection cache): tell them and hang up.
        for (const connection of server.connections) {
          connection.send(421, '4.3.2 Service shutting down');
          connection.close();
        }
        await closed;
      })()),
  };
}

/**
 * smtp-server writes each reply on its own, and a pipelined MAIL, RCPT and DATA (as Postfix sends
 * them) would leave in three packets, each waking the client. This sends what one turn of the
 * event loop writes on the socket as one packet.
 */
function coalesceWrites(socket: Socket): void {
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  socket.write = ((...args: unknown[]) => {
    if (!socket.writableCorked) {
      socket.cork();
      process.nextTick(() => socket.uncork());
    }
    return write(...args);
  }) as Socket['write'];
}

/**
 * smtp-server hands the sender's domain over in Unicode even when the client sent its ASCII form;
 * the header gets the ASCII form back (an IP literal or unparsable domain stays as given).
 */
function asciiDomain(address: string): string {
  const at = address.lastIndexOf('@');
  const domain = address.slice(at + 1);
  if (at < 0 || /^[\x00-\x7f]*$/.test(domain)) return address;
  const ascii = domainToASCII(domain);
  return ascii ? `${address.slice(0, at + 1)}${ascii}` : address;
}

/** smtp-server sends an Error entry with its responseCode and a string entry as a 250 reply. */
function asResult(reply: Reply): Error | string {
  return reply.code === 250 ? reply.text : smtpError(reply);
}
