import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { BIN, freePort, NO_CHILD_COVERAGE } from '../helpers/server.js';

export const ADMIN_TOKEN = 'lmtp-crash-test-admin-token';

export interface MailroomProcess {
  child: ChildProcess;
  apiUrl: string;
  lmtpPort: number;
  exited: Promise<void>;
  output(): string;
}

/**
 * `mailroom serve --only api,lmtp` as a child process on the given database, ready
 * once /readyz answers and the LMTP port accepts. Unlike test/helpers' startServer it can be
 * started again on the same database, which is what a crash test needs.
 */
export async function spawnMailroom(database: { dataDir: string; databaseUrl: string | null }): Promise<MailroomProcess> {
  const [httpPort, lmtpPort] = [await freePort(), await freePort()];
  // The API (to set up mailboxes) and LMTP; other doors would want their fixed default ports.
  const child = spawn(process.execPath, [BIN, 'serve', '--only', 'api,lmtp'], {
    env: {
      PATH: process.env.PATH,
      ...NO_CHILD_COVERAGE,
      // A killed child writes no coverage, and a live one would garble the report (see test/helpers/cli.ts).
      _TAPJS_PROCESSINFO_COVERAGE_: '0',
      MAILROOM_DATA_DIR: database.dataDir,
      MAILROOM_HTTP_PORT: String(httpPort),
      MAILROOM_LMTP_PORT: String(lmtpPort),
      MAILROOM_LOG_LEVEL: 'warn',
      MAILROOM_ADMIN_TOKEN: ADMIN_TOKEN,
      ...(database.databaseUrl === null ? {} : { DATABASE_URL: database.databaseUrl }),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const apiUrl = `http://127.0.0.1:${httpPort}`;
  for (let attempt = 0; attempt < 600; attempt++) {
    if (child.exitCode !== null) throw new Error(`mailroom serve exited with ${child.exitCode}:\n${output}`);
    const ready = await fetch(`${apiUrl}/readyz`).then((r) => r.ok, () => false);
    if (ready && (await accepts(lmtpPort))) return { child, apiUrl, lmtpPort, exited, output: () => output };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`mailroom serve did not become ready:\n${output}`);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A JSON request to the admin API of a child process; throws unless it succeeds. */
export async function adminRequest(apiUrl: string, method: string, path: string, body: unknown): Promise<unknown> {
  const response = await fetch(`${apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}
