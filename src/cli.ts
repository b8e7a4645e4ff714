import { userInfo } from 'node:os';
import { apiKeys } from './cli/api-keys.js';
import { type Group, groupUsage, type Options, type Outcome, parseCommand, parseStrict, UsageError } from './cli/command.js';
import { domains } from './cli/domains.js';
import { mailboxes } from './cli/mailboxes.js';
import { webhooks } from './cli/webhooks.js';
import { ConfigError, loadConfig } from './config.js';
import type { Actor } from './core/actor.js';
import { DomainError } from './core/errors.js';
import type { Part } from './main.js';

/**
 * The composition root (database, core, Fastify) loads only for commands that use it, so help
 * and usage errors answer at once.
 */
const composition = () => import('./main.js');

const GROUPS: readonly Group[] = [apiKeys, domains, mailboxes, webhooks];

const USAGE = `usage: mailroom <command> [arguments]

  serve [--only api,imap,pop3,lmtp,webhooks]
      start the service (all parts by default)
  migrate
      apply database migrations and exit
  openapi
      print the OpenAPI document of the REST API

${GROUPS.map(groupUsage).join('\n')}
The api-keys, domains, mailboxes and webhooks commands work on the database directly (no server
needed) and take --json: the result exactly as the REST API returns it (nothing for delete, revoke,
set-password and unlock); a refusal is then one JSON line {code, message, ...} on stderr.
mailboxes batch prints every operation's result and exits 1 when any failed.
Lists print every item, fetched 500 at a time; --limit N (1-500) prints one page of at most
N items and its nextCursor, which --cursor continues from.
SIZE is bytes or a number with K, M, G or T (1024-based), e.g. 500K, 20M, 1.5G; 'unlimited'
removes a limit. Passwords are never arguments: --password-stdin reads the first line of stdin.
Exit status: 0 done, 1 refused (the error code is printed), 2 usage or configuration error.
Configuration comes from the environment (DATABASE_URL, MAILROOM_DATA_DIR, ...; see README).
`;

/** Parses the few arguments serve, migrate and openapi take; extra words are usage errors. */
function builtinArgs(args: string[], options: Options = {}) {
  const { values, positionals } = parseStrict(args, options, USAGE);
  if (positionals.length > 0) throw new UsageError('too many arguments', USAGE);
  return values;
}

async function serve(args: string[]) {
  const values = builtinArgs(args, { only: { type: 'string' } });
  const { PARTS, start } = await composition();
  const only = typeof values.only === 'string' ? values.only : undefined;
  const parts = only === undefined ? PARTS : only.split(',').map((p) => p.trim());
  const unknown = parts.filter((p) => !(PARTS as readonly string[]).includes(p));
  if (unknown.length > 0) throw new UsageError(`unknown part ${unknown.join(', ')}; available: ${PARTS.join(', ')}`, USAGE);
  const config = loadConfig();
  const running = await start(config, parts as Part[]);
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    // A second signal, or a close that outlasts the deadline, ends the process anyway.
    if (stopping) {
      process.stderr.write(`mailroom: ${signal} again; exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    setTimeout(() => {
      process.stderr.write(`mailroom: not stopped within ${config.shutdownTimeoutMs / 1000} s; exiting now\n`);
      process.exit(1);
    }, config.shutdownTimeoutMs).unref();
    running.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`mailroom: stopping failed: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', () => void running.reloadTls());
}

async function migrate(args: string[]) {
  builtinArgs(args);
  const { openDatabase } = await composition();
  const database = await openDatabase(loadConfig());
  await database.close();
  console.log('migrations applied');
}

async function openapi(args: string[]) {
  builtinArgs(args);
  const [{ openDatabase, servicesFor }, { buildApp }] = await Promise.all([composition(), import('./api/app.js')]);
  const config = { ...loadConfig(), databaseUrl: null, dataDir: 'memory://' };
  const database = await openDatabase(config);
  const app = await buildApp({ services: servicesFor(database, config), bodyLimit: config.apiBodyLimit });
  await app.ready();
  process.stdout.write(`${JSON.stringify(app.swagger(), null, 2)}\n`);
  await app.close();
  await database.close();
}

/** Audit events name the operating-system user who ran the command. */
function cliActor(): Actor {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    // A container's uid may have no passwd entry.
    user = `uid-${process.getuid?.() ?? 'unknown'}`;
  }
  return { id: 'cli', name: `cli:${user}`, domains: null };
}

/** Prints what went wrong and returns the exit status. */
function report(error: unknown, json: boolean): number {
  const write = (text: string) => process.stderr.write(text);
  if (error instanceof UsageError) {
    write(`mailroom: ${error.message}\n${error.usage}`);
    return 2;
  }
  if (error instanceof ConfigError) {
    write(`mailroom: configuration error: ${error.message}\n`);
    return 2;
  }
  const { code, message, details } =
    error instanceof DomainError
      ? error
      : { code: 'internal_error', message: error instanceof Error ? error.message : String(error), details: {} };
  if (json) write(`${JSON.stringify({ code, message, ...details })}\n`);
  else write(`mailroom: ${error instanceof DomainError ? `${code}: ` : ''}${message}\n`);
  return 1;
}

/** `mailroom <group> <command> ...`: parse, check, open the database, one core call, print. */
async function runGroup(group: Group, args: string[]): Promise<void> {
  const [name, ...rest] = args;
  const usage = `usage:\n${groupUsage(group)}`;
  if (name === 'help' || name === '--help' || name === '-h') return void process.stdout.write(usage);
  if (name === undefined) throw new UsageError(`${group.name}: missing command`, usage);
  const command = group.commands.find((c) => c.name === name);
  if (!command) throw new UsageError(`${group.name}: unknown command '${name}'`, usage);
  const input = parseCommand(group, command, rest, process.stdin);
  if (input.help) return void process.stdout.write(input.usage);
  try {
    const job = await command.prepare(input);
    const config = loadConfig();
    const { openDatabase, servicesFor } = await composition();
    const database = await openDatabase(config);
    let outcome: Outcome;
    try {
      outcome = await job(servicesFor(database, config), cliActor());
    } finally {
      await database.close();
    }
    if (!input.json) process.stdout.write(outcome.text);
    else if (outcome.json !== undefined) process.stdout.write(`${JSON.stringify(outcome.json, null, 2)}\n`);
    if (outcome.failed) process.exitCode = 1;
  } catch (error) {
    // The database is closed by now, so the process ends by itself once stderr is written.
    process.exitCode = report(error, input.json);
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (command === 'help' || command === '--help' || command === '-h') return void process.stdout.write(USAGE);
  if (command === 'serve') return serve(args);
  if (command === 'migrate') return migrate(args);
  if (command === 'openapi') return openapi(args);
  const group = GROUPS.find((g) => g.name === command);
  if (group) return runGroup(group, args);
  throw new UsageError(command === undefined ? 'no command given' : `unknown command '${command}'`, USAGE);
}

// `mailroom mailboxes list | head` closes the pipe early; that is no error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});

main(process.argv.slice(2)).catch((error: unknown) => {
  process.exit(report(error, false));
});
