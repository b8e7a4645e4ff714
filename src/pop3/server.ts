import type { BlockList } from 'node:net';
import { loggable } from '../core/errors.js';
import { Connection } from '../net/connection.js';
import { listenPair } from '../net/listener.js';
import type { TlsCertificate } from '../net/tls.js';
import { MAX_LINE, type Pop3Context, Pop3Session } from './session.js';

export interface Pop3Options {
  host: string;
  /** Plain port offering STLS; null: off. */
  port: number | null;
  /** Implicit-TLS port (POP3S); null: off. */
  securePort: number | null;
  tls: TlsCertificate;
  maxConnectionsPerIp: number;
  /** Per port: peers that must open with a PROXY header; absent: the port takes none. */
  proxyFrom?: { plain?: BlockList; secure?: BlockList };
  context: Omit<Pop3Context, 'tls'>;
}

export interface Pop3Server {
  ports: { pop3?: number; pop3s?: number };
  /** Stops accepting, ends every session (a QUIT in progress finishes first), then cuts what is left. */
  close(): Promise<void>;
}

const REFUSAL = '-ERR [SYS/TEMP] Too many connections from your address\r\n';

/** The POP3 door: RFC 1939 with CAPA, STLS, SASL PLAIN and response codes, on one or two ports. */
export async function startPop3(options: Pop3Options): Promise<Pop3Server> {
  const context: Pop3Context = { ...options.context, tls: options.tls };
  const sessions = new Map<Pop3Session, Promise<void>>();
  const pair = await listenPair({
    host: options.host,
    port: options.port,
    securePort: options.securePort,
    tls: options.tls,
    handshakeTimeoutMs: options.context.loginTimeoutMs,
    maxConnectionsPerIp: options.maxConnectionsPerIp,
    proxyFrom: options.proxyFrom,
    refusal: REFUSAL,
    onConnection(socket, clientAddress) {
      const session = new Pop3Session(new Connection(socket, MAX_LINE, clientAddress), context);
      const served = session
        .run()
        .catch((error) => session.log.error({ err: loggable(error) }, 'pop3 session failed'))
        .finally(() => sessions.delete(session));
      sessions.set(session, served);
    },
  });
  return {
    ports: { pop3: pair.plain, pop3s: pair.secure },
    async close() {
      pair.stop();
      for (const session of sessions.keys()) session.end('Server shutting down');
      await Promise.all(sessions.values());
      await pair.close();
    },
  };
}
