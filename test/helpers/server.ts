import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabaseUrl } from './database.js';
import { recordOutput, rememberSecret } from './secrets.js';

export const BIN = new URL('../../bin/mailroom.js', import.meta.url).pathname;

/**
 * For `env` of spawned processes: tap would collect their coverage too, but they run through tsx,
 * whose source maps differ from tap's, and the merged report then misplaces lines.
 */
export const NO_CHILD_COVERAGE = { _TAPJS_PROCESSINFO_COVERAGE_: '0' };

/** Test processes run side by side: no listener takes its fixed default port unless asked to. */
export const MAIL_PORTS_OFF = {
  MAILROOM_IMAP_PORT: 'off',
  MAILROOM_IMAPS_PORT: 'off',
  MAILROOM_POP3_PORT: 'off',
  MAILROOM_POP3S_PORT: 'off',
  MAILROOM_LMTP_PORT: 'off',
};

/** A port that was free a moment ago, for a child process to bind. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Free ports for every mail listener, to pass to startServer. */
export async function mailPorts() {
  return {
    MAILROOM_IMAP_PORT: String(await freePort()),
    MAILROOM_IMAPS_PORT: String(await freePort()),
    MAILROOM_POP3_PORT: String(await freePort()),
    MAILROOM_POP3S_PORT: String(await freePort()),
    MAILROOM_LMTP_PORT: String(await freePort()),
  };
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  output: () => string;
  /** Resolves once the process has exited. */
  exited: Promise<void>;
  /** Where its data is: the database URL, or null for the embedded database in dataDir. */
  databaseUrl: string | null;
  dataDir: string;
}

/**
 * `mailroom serve` as its own process, on a fresh database (Postgres when the suite runs with
 * DATABASE_URL, embedded in a temporary data dir otherwise) unless env names one; ready when
 * /readyz answers. `only`: `serve --only` those parts (api among them, for /readyz).
 */
export async function startServer(
  t: { teardown(fn: () => unknown): void },
  env: Record<string, string> = {},
  options: { only?: string[] } = {},
): Promise<ServerProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), 'mailroom-server-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const databaseUrl = env.DATABASE_URL ?? (await freshDatabaseUrl(t));
  const port = await freePort();
  for (const [name, value] of Object.entries(env)) if (/TOKEN|PASSWORD/.test(name)) rememberSecret(value);
  const only = options.only ? ['--only', options.only.join(',')] : [];
  const child = spawn(process.execPath, [BIN, 'serve', ...only], {
    env: {
      PATH: process.env.PATH,
      MAILROOM_DATA_DIR: dataDir,
      MAILROOM_HTTP_PORT: String(port),
      MAILROOM_LOG_LEVEL: 'warn',
      ...NO_CHILD_COVERAGE,
      ...MAIL_PORTS_OFF,
      ...(databaseUrl === null ? {} : { DATABASE_URL: databaseUrl }),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(async () => {
    child.kill('SIGTERM');
    await exited;
    recordOutput('mailroom serve output', output);
  });
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 300; attempt++) {
    if (child.exitCode !== null) throw new Error(`mailroom serve exited with ${child.exitCode}:\n${output}`);
    const ready = await fetch(`${url}/readyz`).then((r) => r.ok, () => false);
    if (ready) return { url, child, output: () => output, exited, databaseUrl, dataDir };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`mailroom serve did not become ready:\n${output}`);
}
