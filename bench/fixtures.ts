/**
 * What the POP3 and IMAP benches load on both sides and how they run Mailroom: the 20 KB
 * message, the argon2id hash both servers verify, a fresh Postgres database, and
 * `mailroom serve --only …` on it.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import argon2 from 'argon2';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import { openDatabase, servicesFor } from '../src/main.js';
import { stop, waitForPort } from './dovecot.js';

export const MESSAGE_SIZE = 20 * 1024;
export const SERVER_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const BIN = fileURLToPath(new URL('../bin/mailroom.js', import.meta.url));

/**
 * A MESSAGE_SIZE multipart/alternative message (text and HTML), CRLF line ends, no line starting
 * with '.'; `label` goes into its Message-ID.
 */
export function message(n: number, to: string, label: string): Buffer {
  const boundary = `b-${n}`;
  const head =
    `From: Newsletter <news@sender.example>\r\nTo: ${to}\r\nSubject: Bench #${n}\r\n` +
    `Date: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <${n}.${label}@sender.example>\r\nMIME-Version: 1.0\r\n` +
    `Content-Type: multipart/alternative; boundary="${boundary}"\r\n\r\n`;
  const line = 'The quick brown fox jumps over the lazy dog, again and again, for the benchmark.\r\n';
  const text = `--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n`;
  const html = `--${boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>\r\n`;
  const tail = `</body></html>\r\n--${boundary}--\r\n`;
  let room = MESSAGE_SIZE - head.length - text.length - html.length - tail.length;
  const half = line.repeat(Math.floor(room / 2 / line.length));
  room -= 2 * half.length;
  const pad = `${'x'.repeat(Math.max(0, room - 2))}\r\n`.slice(-room);
  return Buffer.from(head + text + half + html + half + pad + tail);
}

/** Who the benches act as when they load their data through the core services. */
export const BENCH_ACTOR = { id: 'bench', name: 'bench', domains: null };

/** Runs `fill` with the core services on the database at `url`, closed afterwards: benches load their data through the real code. */
export async function withServices<T>(url: string, fill: (services: ReturnType<typeof servicesFor>) => Promise<T>): Promise<T> {
  const config = loadConfig({ DATABASE_URL: url, MAILROOM_LOG_LEVEL: 'silent' });
  const handle = await openDatabase(config);
  try {
    return await fill(servicesFor(handle, config));
  } finally {
    await handle.close();
  }
}

/** An argon2id hash with Mailroom's parameters, written m,t,p as libsodium (Dovecot) reads it. */
export async function sharedHash(password: string): Promise<string> {
  const hash = await argon2.hash(password, { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 });
  const params = /\$m=(\d+),p=(\d+),t=(\d+)\$/.exec(hash);
  return params ? hash.replace(params[0], `$m=${params[1]},t=${params[3]},p=${params[2]}$`) : hash;
}

/** The hash shown without its salt and digest, for the bench's header. */
export const hashParameters = (hash: string) => `${hash.slice(0, hash.lastIndexOf('$', hash.lastIndexOf('$') - 1))}$…`;

export const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export interface BenchDatabase {
  url: string;
  /** e.g. "PostgreSQL 15.20, synchronous_commit=on, fsync=on, shared_buffers=128MB" */
  settings: string;
  /**
   * Runs a bulk load with synchronous_commit off for the database's new sessions (one WAL flush
   * per delivery made loading take minutes on a busy disk), then ANALYZEs: planner statistics
   * as autovacuum keeps them on a database in use. Sessions opened afterwards (the server's) have
   * the server's own setting again.
   */
  load<T>(fill: (url: string) => Promise<T>): Promise<T>;
  /** ANALYZE alone, after a load that did not go through `load`. */
  analyze(): Promise<void>;
  drop(): Promise<void>;
}

/** A fresh database on the server of DATABASE_URL, dropped at the end. */
export async function createBenchDatabase(): Promise<BenchDatabase> {
  const name = `mailroom_bench_${process.pid}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: SERVER_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  const settings = (
    await admin.query(
      "select version() as v, current_setting('synchronous_commit') as sc, current_setting('fsync') as f, current_setting('shared_buffers') as sb",
    )
  ).rows[0] as { v: string; sc: string; f: string; sb: string };
  const analyze = async () => {
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    await client.query('analyze');
    await client.end();
  };
  return {
    url: url.toString(),
    settings: `${settings.v.split(' on ')[0]}, synchronous_commit=${settings.sc}, fsync=${settings.f}, shared_buffers=${settings.sb}`,
    async load(fill) {
      await admin.query(`alter database ${name} set synchronous_commit = off`);
      try {
        return await fill(url.toString());
      } finally {
        await admin.query(`alter database ${name} reset synchronous_commit`);
        await analyze();
      }
    },
    analyze,
    async drop() {
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

export interface MailroomProcess {
  pid: number;
  log: string;
  stop(): Promise<void>;
}

/**
 * `mailroom serve --only <parts>` on a database, logging to a file in `work`; resolves once
 * `port` listens. `env` holds the ports and limits; `profileDir` asks for a CPU profile there.
 */
export async function spawnMailroom(options: {
  work: string;
  databaseUrl: string;
  parts: string[];
  env: Record<string, string>;
  port: number;
  profileDir?: string;
}): Promise<MailroomProcess> {
  const dataDir = join(options.work, 'mailroom-data');
  await mkdir(dataDir, { recursive: true });
  const log = join(options.work, 'mailroom.log');
  const logFile = await open(log, 'w');
  const profile = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : [];
  const child = spawn(process.execPath, [...profile, BIN, 'serve', '--only', options.parts.join(',')], {
    env: { PATH: process.env.PATH, DATABASE_URL: options.databaseUrl, MAILROOM_DATA_DIR: dataDir, ...options.env },
    stdio: ['ignore', logFile.fd, logFile.fd],
  });
  await waitForPort(options.port, child, 'mailroom', log);
  return {
    pid: child.pid!,
    log,
    async stop() {
      await stop(child);
      await logFile.close();
    },
  };
}
