import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { recordOutput } from './secrets.js';

export interface Received {
  /** Mailroom-Event, Mailroom-Delivery and Mailroom-Signature as they came. */
  event: string;
  delivery: string;
  signature: string;
  body: string;
  json: any;
}

export interface Receiver {
  url: string;
  port: number;
  /** Every request, repeats included, in arrival order. */
  received: Received[];
  /** What to answer from now on (200 at first). */
  respond(status: number): void;
  /** Polls until `done` holds for what came, or fails after timeoutMs. */
  waitFor(done: (received: Received[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A webhook receiver as a subscriber runs one: node:http on loopback, on `port` (a free one when
 * left out). Each body is recorded for the secret-leak check.
 */
export async function startReceiver(t: { teardown(fn: () => unknown): void }, port = 0): Promise<Receiver> {
  const received: Received[] = [];
  let status = 200;
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      recordOutput('webhook receiver', body);
      received.push({
        event: String(request.headers['mailroom-event']),
        delivery: String(request.headers['mailroom-delivery']),
        signature: String(request.headers['mailroom-signature']),
        body,
        json: JSON.parse(body),
      });
      response.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const bound = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));
  t.teardown(close);
  return {
    url: `http://127.0.0.1:${bound}/hooks`,
    port: bound,
    received,
    respond: (next) => void (status = next),
    async waitFor(done, what, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!done(received)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; received ${received.map((r) => r.event).join(', ')}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    close,
  };
}

/**
 * What the README tells a receiver to do: recompute HMAC-SHA256(secret, "<t>.<body>") over the
 * bytes received, compare in constant time, and refuse a timestamp older than the tolerance.
 */
export function verifySignature(secret: string, header: string, body: string, toleranceSeconds = 300): boolean {
  const parts = new Map(header.split(',').map((part) => part.split('=', 2) as [string, string]));
  const timestamp = Number(parts.get('t'));
  const given = Buffer.from(parts.get('v1') ?? '', 'hex');
  const expected = createHmac('sha256', secret).update(`${parts.get('t')}.${body}`).digest();
  return (
    Number.isInteger(timestamp) &&
    Math.abs(Date.now() / 1000 - timestamp) <= toleranceSeconds &&
    given.length === expected.length &&
    timingSafeEqual(given, expected)
  );
}
