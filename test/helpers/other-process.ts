import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { OtherProcessAction } from './other-process-actions.js';
import { NO_CHILD_COVERAGE } from './server.js';

const ACTIONS_SCRIPT = fileURLToPath(new URL('./other-process-actions.ts', import.meta.url));
const REPOSITORY = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Runs one action of other-process-actions.ts in a separate Node process connected to
 * databaseUrl (a Postgres server: an embedded database admits one process) and answers the
 * action's JSON result; rejects with the child's output when it fails.
 */
export async function runInOtherProcess(databaseUrl: string, action: OtherProcessAction, argument: unknown = null): Promise<unknown> {
  const child = spawn(process.execPath, ['--import', 'tsx', ACTIONS_SCRIPT, action, JSON.stringify(argument)], {
    cwd: REPOSITORY,
    env: { PATH: process.env.PATH, DATABASE_URL: databaseUrl, ...NO_CHILD_COVERAGE },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    // 'close', not 'exit': by then all of the child's output has been read.
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`${action} in another process exited with ${code}:\n${stderr}${stdout}`);
  return JSON.parse(stdout);
}
