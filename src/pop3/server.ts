import type { Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import { Connection } from '../net/connection.js';
import { type Listener, listen } from '../net/listener.js';
import { MAX_LINE, type Pop3Context, Pop3Session } from './session.js';

export interface Pop3Options {
  host: string;
  /** Plain port offering STLS; null: off. */
  port: number | null;
  /** Implicit-TLS port (POP3S); null: off. */
  securePort: number | null;
  tls: SecureContext;
  maxConnectionsPerIp: number;
  context: Omit<Pop3Context, 'tls'>;
}

export interface Pop3Server {
  ports: { pop3?: number; pop3s?: number };
  close(): Promise<void>;
}

const REFUSAL = '-ERR [SYS/TEMP] Too many connections from your address\r\n';

/** The POP3 door: RFC 1939 with CAPA, STLS, SASL PLAIN and response codes, on one or two ports. */
export async function startPop3(options: Pop3Options): Promise<Pop3Server> {
  const listeners: Listener[] = [];
  const ports: Pop3Server['ports'] = {};
  const context: Pop3Context = { ...options.context, tls: options.tls };
  const serve = (socket: Socket) => {
    const session = new Pop3Session(new Connection(socket, MAX_LINE), context);
    session.run().catch((error) => options.context.log.warn({ err: error }, 'pop3 session failed'));
  };
  try {
    if (options.port !== null) {
      const listener = await listen({
        host: options.host,
        port: options.port,
        maxConnectionsPerIp: options.maxConnectionsPerIp,
        refusal: REFUSAL,
        onConnection: serve,
      });
      listeners.push(listener);
      ports.pop3 = listener.port;
    }
    if (options.securePort !== null) {
      const listener = await listen({
        host: options.host,
        port: options.securePort,
        implicitTls: options.tls,
        maxConnectionsPerIp: options.maxConnectionsPerIp,
        refusal: REFUSAL,
        onConnection: serve,
      });
      listeners.push(listener);
      ports.pop3s = listener.port;
    }
  } catch (error) {
    await Promise.all(listeners.map((listener) => listener.close()));
    throw error;
  }
  return {
    ports,
    close: async () => {
      await Promise.all(listeners.map((listener) => listener.close()));
    },
  };
}
