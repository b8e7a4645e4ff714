import { parseArgs } from 'node:util';
import { buildApp } from './api/app.js';
import { ConfigError, loadConfig } from './config.js';
import { openDatabase, PARTS, type Part, servicesFor, start } from './main.js';

class UsageError extends Error {}

const USAGE = `usage: mailroom <command>

  serve [--only api]        start the service (all parts by default)
  migrate                   apply database migrations and exit
  openapi                   print the OpenAPI document of the REST API
`;

async function serve(args: string[]) {
  const { values } = parseArgs({ args, options: { only: { type: 'string' } } });
  const parts = values.only === undefined ? PARTS : values.only.split(',').map((p) => p.trim());
  const unknown = parts.filter((p) => !(PARTS as readonly string[]).includes(p));
  if (unknown.length > 0) throw new UsageError(`unknown part ${unknown.join(', ')}; available: ${PARTS.join(', ')}`);
  const running = await start(loadConfig(), parts as Part[]);
  const stop = () => {
    // A second signal, or a close that hangs, ends the process anyway.
    setTimeout(() => process.exit(1), 10_000).unref();
    running.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

async function migrate() {
  const database = await openDatabase(loadConfig());
  await database.close();
  console.log('migrations applied');
}

async function openapi() {
  const config = { ...loadConfig(), databaseUrl: null, dataDir: 'memory://' };
  const database = await openDatabase(config);
  const app = await buildApp({ services: servicesFor(database, config), logLevel: 'silent', bodyLimit: config.apiBodyLimit });
  await app.ready();
  process.stdout.write(`${JSON.stringify(app.swagger(), null, 2)}\n`);
  await app.close();
  await database.close();
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (command === 'serve') return serve(args);
  if (command === 'migrate') return migrate();
  if (command === 'openapi') return openapi();
  throw new UsageError(command === undefined ? 'no command given' : `unknown command '${command}'`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`mailroom: ${error.message}\n${USAGE}`);
    process.exit(2);
  }
  if (error instanceof ConfigError) {
    process.stderr.write(`mailroom: configuration error: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`mailroom: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
