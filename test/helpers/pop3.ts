import { type Pop3Options, startPop3 } from '../../src/pop3/server.js';
import type { Pop3Context } from '../../src/pop3/session.js';
import { createLogger, type Logger } from '../../src/log.js';
import { ACTOR, type GatewayFixture, gatewayFixture, PASSWORD } from './gateway.js';
import { recordingStream } from './secrets.js';

export { ACTOR, PASSWORD };

export interface TestPop3 extends Omit<GatewayFixture, 'tls'> {
  port: number;
  securePort: number;
  /** What the door's sessions stand on, for a session on a connection of the test's own. */
  context: Pop3Context;
}

/**
 * A POP3 gateway for this test file, on a database of its own (or on `url`'s, to share one; or
 * beside another door on `fixture`, in one gateway).
 */
export async function startTestPop3(
  t: { teardown(fn: () => unknown): void },
  options: {
    url?: string | null;
    fixture?: GatewayFixture;
    maxConnectionsPerIp?: number;
    proxyFrom?: Pop3Options['proxyFrom'];
    /** The door's logger; by default every line, at trace, goes to the leak check. */
    log?: Logger;
  } & Partial<
    Pick<Pop3Context, 'idleTimeoutMs' | 'loginTimeoutMs' | 'lineTimeoutMs'>
  > = {},
): Promise<TestPop3> {
  const fixture = options.fixture ?? (await gatewayFixture(t, options.url));
  const { services, gateway, tls } = fixture;
  const context: Pop3Context = {
    tls,
    login: services.login,
    mail: services.mail,
    metrics: services.metrics,
    lockMaildrop: gateway.lockMaildrop,
    registerSession: gateway.registerSession,
    subscribe: (listener, onResync) => gateway.feed.subscribe(listener, onResync),
    idleTimeoutMs: options.idleTimeoutMs ?? 600_000,
    loginTimeoutMs: options.loginTimeoutMs ?? 60_000,
    lineTimeoutMs: options.lineTimeoutMs ?? 60_000,
    maxAuthFailures: 3,
    allowPlaintextAuth: false,
    log: options.log ?? createLogger('trace', recordingStream('POP3 log')),
  };
  const server = await startPop3({
    host: '127.0.0.1',
    port: 0,
    securePort: 0,
    tls,
    maxConnectionsPerIp: options.maxConnectionsPerIp ?? 50,
    proxyFrom: options.proxyFrom,
    context,
  });
  t.teardown(() => server.close());
  return { ...fixture, context, port: server.ports.pop3!, securePort: server.ports.pop3s! };
}
