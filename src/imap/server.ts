import type { BlockList } from 'node:net';
import { loggable } from '../core/errors.js';
import { Connection } from '../net/connection.js';
import { listenPair } from '../net/listener.js';
import { bad, dispatch } from './dispatch.js';
import { readCommand } from './parser/command-reader.js';
import { type ImapContext, ImapSession } from './session.js';

export interface ImapOptions {
  host: string;
  /** Plain port offering STARTTLS; null: off. */
  port: number | null;
  /** Implicit-TLS port (IMAPS); null: off. */
  securePort: number | null;
  maxConnectionsPerIp: number;
  /** Per port: peers that must open with a PROXY header; absent: the port takes none. */
  proxyFrom?: { plain?: BlockList; secure?: BlockList };
  context: ImapContext;
}

export interface ImapServer {
  ports: { imap?: number; imaps?: number };
  /** Stops accepting, tells every session BYE, lets commands in progress end, then cuts what is left. */
  close(): Promise<void>;
}

const REFUSAL = '* BYE [UNAVAILABLE] Too many connections from your address\r\n';

/** One connection's session, from greeting to close. */
export async function serve(session: ImapSession): Promise<void> {
  const { connection, context } = session;
  const opened = Date.now();
  session.log.debug({ tls: connection.secure }, 'connection opened');
  connection.setIdleTimeout(context.limits.idleTimeoutMs, () => session.bye('Autologout; idle for too long'));
  connection.setLineTimeout(context.limits.lineTimeoutMs, () => session.bye('Command line took too long to arrive'));
  session.untagged(`OK [CAPABILITY ${session.capabilities().join(' ')}] Mailroom IMAP ready`);
  try {
    while (session.state !== 'logout' && !connection.closed) {
      const command = await readCommand(connection, context.limits);
      if (command === null) break;
      if ('problem' in command) {
        bad(session, command.tag ?? '*', command.problem);
        if (command.fatal) session.bye(command.problem);
        continue;
      }
      await dispatch(session, command);
    }
  } finally {
    const loggedOut = session.state === 'logout';
    if (loggedOut) connection.close();
    await session.close();
    // A connection that never logged in (a port probe, a health check) is news only when debugging.
    session.log[session.account ? 'info' : 'debug'](
      {
        user: session.account?.address,
        reason: session.endedBecause ?? (loggedOut ? 'logout' : 'closed by the client'),
        seconds: (Date.now() - opened) / 1000,
      },
      'connection closed',
    );
    // A shutdown cuts what is left once every session has ended: the last answer must be out.
    await connection.sent;
  }
}

/** The IMAP door (RFC 3501 and the extensions in CAPABILITY), on one or two ports. */
export async function startImap(options: ImapOptions): Promise<ImapServer> {
  const sessions = new Map<ImapSession, Promise<void>>();
  const pair = await listenPair({
    host: options.host,
    port: options.port,
    securePort: options.securePort,
    tls: options.context.tls,
    handshakeTimeoutMs: options.context.limits.loginTimeoutMs,
    maxConnectionsPerIp: options.maxConnectionsPerIp,
    proxyFrom: options.proxyFrom,
    refusal: REFUSAL,
    onConnection(socket, clientAddress) {
      const session = new ImapSession(new Connection(socket, options.context.limits.maxLineLength, clientAddress), options.context);
      const served = serve(session)
        .catch((error) => session.log.error({ err: loggable(error) }, 'imap session failed'))
        .finally(() => sessions.delete(session));
      sessions.set(session, served);
    },
  });
  return {
    ports: { imap: pair.plain, imaps: pair.secure },
    async close() {
      pair.stop();
      for (const session of sessions.keys()) session.bye('Server shutting down');
      await Promise.all(sessions.values());
      await pair.close();
    },
  };
}
