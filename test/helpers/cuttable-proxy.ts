import { connect, createServer, type Socket } from 'node:net';

export interface CuttableProxy {
  /** `url` with its host and port replaced by the proxy's. */
  url: string;
  /**
   * Drops every connection through the proxy at once, as a Postgres restart does. Until
   * restore(), new connections are refused (`refuse`: closed on arrival, as by a server that is
   * down) or held unanswered (`blackhole`: as on a network that drops packets).
   */
  cut(mode: 'refuse' | 'blackhole'): void;
  /** Connections pass again; those held by a blackhole go through now, as a retried SYN would. */
  restore(): void;
  /** How many connections the proxy has carried or held, ever. */
  readonly accepted: number;
}

/** A TCP proxy in front of the Postgres server of `url`, to take the database away and give it back. */
export async function cuttableProxy(t: { teardown(fn: () => unknown): void }, url: string): Promise<CuttableProxy> {
  const target = new URL(url);
  const upstreamPort = Number(target.port || 5432);
  const pipes = new Set<Socket>();
  const held = new Set<Socket>();
  let state: 'open' | 'refuse' | 'blackhole' = 'open';
  let accepted = 0;

  function pipe(client: Socket): void {
    const upstream = connect(upstreamPort, target.hostname);
    for (const socket of [client, upstream]) {
      pipes.add(socket);
      socket.on('error', () => {});
      socket.once('close', () => {
        pipes.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  const server = createServer((client) => {
    accepted++;
    client.on('error', () => {});
    if (state === 'refuse') return void client.destroy();
    if (state === 'blackhole') {
      held.add(client);
      client.once('close', () => held.delete(client));
      return;
    }
    pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    for (const socket of [...pipes, ...held]) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String((server.address() as { port: number }).port);
  return {
    url: proxied.toString(),
    cut(mode) {
      state = mode;
      for (const socket of pipes) socket.destroy();
    },
    restore() {
      state = 'open';
      for (const client of held) {
        held.delete(client);
        pipe(client);
      }
    },
    get accepted() {
      return accepted;
    },
  };
}
