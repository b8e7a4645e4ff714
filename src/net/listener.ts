import { type BlockList, createServer, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { isTrusted, plainAddress, readProxyHeader } from './proxy-protocol.js';
import type { TlsCertificate } from './tls.js';

export interface ListenerOptions {
  host: string;
  port: number;
  /** Set: implicit TLS (IMAPS, POP3S); the handshake comes before the greeting. */
  implicitTls?: TlsCertificate;
  /** How long an implicit-TLS handshake (and a PROXY header) may take, however slowly the client feeds it. */
  handshakeTimeoutMs: number;
  /** Set: peers in this list must open with a PROXY header (v1 or v2) naming the real client. */
  proxyFrom?: BlockList;
  maxConnectionsPerIp: number;
  /** What a client over the per-address limit is told before the connection closes. */
  refusal: string;
  /** `clientAddress`: the peer's, or the one its PROXY header named. */
  onConnection(socket: Socket, clientAddress: string): void;
}

export interface Listener {
  /** The port bound (the one asked for, or the one the system chose for 0). */
  port: number;
  /** Stops accepting; the connections already open go on. */
  stop(): void;
  /** Stops accepting and cuts the connections still open. */
  close(): Promise<void>;
}

/** A TCP (or implicit-TLS) listener that caps connections per client address. */
export async function listen(options: ListenerOptions): Promise<Listener> {
  const perIp = new Map<string, number>();
  const open = new Set<Socket>();

  const accept = (plain: Socket, ip: string) => {
    const count = (perIp.get(ip) ?? 0) + 1;
    if (count > options.maxConnectionsPerIp) {
      // Read (and drop) what it sends, or its hang-up would go unseen on a socket paused for the header.
      plain.resume();
      plain.end(options.refusal);
      return;
    }
    perIp.set(ip, count);
    plain.once('close', () => {
      const left = (perIp.get(ip) ?? 1) - 1;
      if (left === 0) perIp.delete(ip);
      else perIp.set(ip, left);
    });
    if (!options.implicitTls) {
      // Paused after a PROXY header; resumes once the session listens, the bytes after the header first.
      plain.resume();
      options.onConnection(plain, ip);
      return;
    }
    // The certificate of the moment: a reload reaches the next handshake.
    const secure = new TLSSocket(plain, { isServer: true, secureContext: options.implicitTls.context });
    const timer = setTimeout(() => secure.destroy(), options.handshakeTimeoutMs);
    plain.once('close', () => clearTimeout(timer));
    secure.once('secure', () => {
      clearTimeout(timer);
      options.onConnection(secure, ip);
    });
    // A failed handshake (a plain-text client on the TLS port, a scanner) just ends the connection.
    secure.once('error', () => plain.destroy());
  };

  const server: Server = createServer((plain) => {
    open.add(plain);
    plain.once('close', () => open.delete(plain));
    plain.on('error', () => {});
    const peer = plainAddress(plain.remoteAddress ?? 'unknown');
    // Untrusted peers are served as they are: a PROXY line from them is just a bad command.
    if (!options.proxyFrom || !isTrusted(options.proxyFrom, peer)) return accept(plain, peer);
    readProxyHeader(plain, options.handshakeTimeoutMs).then(
      (client) => accept(plain, client),
      // Nothing sensible can be said before the header: the balancer sees the connection close.
      () => plain.destroy(),
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const closed = new Promise<void>((resolve) => server.once('close', resolve));
  const stop = () => {
    if (server.listening) server.close();
  };
  return {
    port: typeof address === 'object' && address !== null ? address.port : options.port,
    stop,
    async close() {
      stop();
      for (const socket of open) socket.destroy();
      await closed;
    },
  };
}

export interface PortPair {
  /** The plain port, where STARTTLS/STLS is offered; undefined when off. */
  plain?: number;
  /** The implicit-TLS port; undefined when off. */
  secure?: number;
  stop(): void;
  close(): Promise<void>;
}

/** A mail door's two listeners: plain (upgraded in-band) and implicit TLS; either may be off. */
export async function listenPair(
  options: Omit<ListenerOptions, 'port' | 'implicitTls' | 'proxyFrom'> & {
    port: number | null;
    securePort: number | null;
    tls: TlsCertificate;
    /** Each port opts in to the PROXY protocol on its own. */
    proxyFrom?: { plain?: BlockList; secure?: BlockList };
  },
): Promise<PortPair> {
  const listeners: Listener[] = [];
  const pair: PortPair = {
    stop: () => listeners.forEach((listener) => listener.stop()),
    close: async () => {
      await Promise.all(listeners.map((listener) => listener.close()));
    },
  };
  try {
    if (options.port !== null) {
      const listener = await listen({ ...options, port: options.port, proxyFrom: options.proxyFrom?.plain });
      listeners.push(listener);
      pair.plain = listener.port;
    }
    if (options.securePort !== null) {
      const listener = await listen({
        ...options,
        port: options.securePort,
        implicitTls: options.tls,
        proxyFrom: options.proxyFrom?.secure,
      });
      listeners.push(listener);
      pair.secure = listener.port;
    }
  } catch (error) {
    await pair.close();
    throw error;
  }
  return pair;
}
