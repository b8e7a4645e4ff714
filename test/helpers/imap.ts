import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import { type ImapOptions, startImap } from '../../src/imap/server.js';
import type { ImapContext, ImapLimits } from '../../src/imap/session.js';
import { createLogger, type Logger } from '../../src/log.js';
import { ACTOR, type GatewayFixture, gatewayFixture, PASSWORD } from './gateway.js';
import { recordingStream } from './secrets.js';
import { LineClient, run } from './line-client.js';

export { ACTOR, PASSWORD };

export interface TestImap extends Omit<GatewayFixture, 'gateway' | 'tls'> {
  port: number;
  securePort: number;
  /** What the door's sessions stand on, for a session on a connection of the test's own. */
  context: ImapContext;
  /** Delivers raw bytes to the mailbox's INBOX (or folder) through the core. */
  deliver(address: string, raw: string | Buffer, folder?: string): Promise<number>;
  /** imapflow (a real client) for `address` with PASSWORD over IMAPS, not yet connected. */
  imapflow(address: string, options?: Partial<ImapFlowOptions>): ImapFlow;
  /** A raw connection logged in as `address` with PASSWORD, closed when the test file ends. */
  login(address: string): Promise<LineClient>;
  /** As if an earlier session had selected the folder: the mail in it now is no longer \Recent. */
  claimRecent(accountId: number, folder?: string): Promise<void>;
}

export const TEST_LIMITS: ImapLimits = {
  maxLineLength: 64 * 1024,
  maxLiteralSize: 10 * 1024 * 1024,
  maxBadCommands: 20,
  maxAuthFailures: 3,
  maxConnectionsPerMailbox: 10,
  idleTimeoutMs: 30 * 60_000,
  loginTimeoutMs: 60_000,
  lineTimeoutMs: 60_000,
  allowPlaintextAuth: false,
};

/**
 * An IMAP gateway for this test file, on a database of its own (or on `url`'s, to share one; or
 * beside another door on `fixture`, in one gateway).
 */
export async function startTestImap(
  t: { teardown(fn: () => unknown): void },
  options: {
    url?: string | null;
    fixture?: GatewayFixture;
    limits?: Partial<ImapLimits>;
    maxConnectionsPerIp?: number;
    proxyFrom?: ImapOptions['proxyFrom'];
    /** The door's logger; by default every line, at trace, goes to the leak check. */
    log?: Logger;
  } = {},
): Promise<TestImap> {
  const fixture = options.fixture ?? (await gatewayFixture(t, options.url));
  const { services, gateway, tls } = fixture;
  const context: ImapContext = {
    services,
    gateway,
    tls,
    limits: { ...TEST_LIMITS, ...options.limits },
    log: options.log ?? createLogger('trace', recordingStream('IMAP log')),
  };
  const server = await startImap({
    host: '127.0.0.1', port: 0, securePort: 0, maxConnectionsPerIp: options.maxConnectionsPerIp ?? 100,
    proxyFrom: options.proxyFrom,
    context,
  });
  t.teardown(() => server.close());
  return {
    ...fixture,
    context,
    port: server.ports.imap!,
    securePort: server.ports.imaps!,
    async deliver(address, raw, folder) {
      const [result] = await services.mail.deliver(Buffer.from(raw), [address], folder);
      if (!result!.delivered) throw new Error(`setup: delivery to ${address} failed: ${result!.error.code}`);
      return result!.uid;
    },
    imapflow(address, options = {}) {
      return new ImapFlow({
        host: '127.0.0.1',
        port: server.ports.imaps!,
        secure: true,
        tls: { rejectUnauthorized: false },
        auth: { user: address, pass: PASSWORD },
        logger: false,
        disableAutoIdle: true,
        ...options,
      });
    },
    async claimRecent(accountId, folder = 'INBOX') {
      const row = await services.mail.folders.get(accountId, folder);
      await services.mail.folders.claimRecent(accountId, row.id, row.uidNext);
    },
    async login(address) {
      const client = await LineClient.connect(server.ports.imap!);
      t.teardown(() => client.close());
      await client.readLine();
      const answer = await run(client, `l1 LOGIN ${address} "${PASSWORD}"`);
      if (!answer.at(-1)?.startsWith('l1 OK')) throw new Error(`login: ${answer.join('\n')}`);
      return client;
    },
  };
}
