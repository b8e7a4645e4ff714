import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import type { Services } from '../../src/core/services.js';
import type { Database } from '../../src/db/client.js';
import { openDatabase, servicesFor } from '../../src/main.js';
import { freshDatabaseUrl } from './database.js';
import { recordOutput, rememberSecret } from './secrets.js';
import { BIN, NO_CHILD_COVERAGE } from './server.js';

/**
 * The CLI runs TypeScript through its own tsx transform; tap would merge that process's V8
 * coverage byte-for-byte with the test's own transform of the same files and garble the report.
 */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface TestCli {
  /** The environment every run gets: the database, and nothing from the test's own environment. */
  env: Record<string, string>;
  /** `node bin/mailroom.js ...args` with stdin written and closed. */
  run(args: string[], options?: { stdin?: string; env?: Record<string, string> }): Promise<CliRun>;
  /** Every byte any run printed, for checking that a secret never shows. */
  transcript(): string;
  /** Opens the CLI's database in this process between runs (the embedded one admits one process). */
  withDatabase<T>(fn: (services: Services, db: Database) => Promise<T>): Promise<T>;
}

/**
 * The CLI as a child process on a fresh database: a new database on the Postgres server when the
 * suite runs with DATABASE_URL, otherwise embedded in a temporary data dir.
 */
export async function freshCli(t: { teardown(fn: () => unknown): void }): Promise<TestCli> {
  const dataDir = await mkdtemp(join(tmpdir(), 'mailroom-cli-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const databaseUrl = await freshDatabaseUrl(t);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    ...NO_CHILD_COVERAGE,
    MAILROOM_DATA_DIR: dataDir,
    ...(databaseUrl === null ? {} : { DATABASE_URL: databaseUrl }),
  };
  let transcript = '';
  return {
    env,
    async run(args, options = {}) {
      if (args.includes('--password-stdin')) rememberSecret(options.stdin?.split(/\r?\n/)[0]);
      const hashAt = args.indexOf('--password-hash');
      if (hashAt >= 0) rememberSecret(args[hashAt + 1]);
      const child = spawn(process.execPath, [BIN, ...args], {
        env: { ...env, ...options.env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.stderr.on('data', (chunk) => (stderr += chunk));
      // A command that never reads stdin may exit before the write lands.
      child.stdin.on('error', () => {});
      child.stdin.end(options.stdin ?? '');
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      transcript += stdout + stderr;
      recordOutput(`mailroom ${args[0]} ${args[1] ?? ''}`, stdout + stderr);
      return { code, stdout, stderr };
    },
    transcript: () => transcript,
    async withDatabase(fn) {
      const config = loadConfig(env);
      const database = await openDatabase(config);
      try {
        return await fn(servicesFor(database, config), database.db);
      } finally {
        await database.close();
      }
    },
  };
}
