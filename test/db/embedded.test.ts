// Always embedded: the configs here are built without DATABASE_URL, whatever the suite runs on.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { type Config, loadConfig } from '../../src/config.js';
import type { Actor } from '../../src/core/actor.js';
import { lockDataDir } from '../../src/db/data-dir-lock.js';
import { openDatabase, servicesFor } from '../../src/main.js';
import { BIN, NO_CHILD_COVERAGE } from '../helpers/server.js';

const ACTOR: Actor = { id: 'test', name: 'embedded test', domains: null };

async function embeddedConfig(t: { teardown(fn: () => unknown): void }): Promise<Config> {
  const dataDir = await mkdtemp(join(tmpdir(), 'mailroom-embedded-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const config = loadConfig({ MAILROOM_DATA_DIR: dataDir });
  if (config.databaseUrl !== null) throw new Error('expected an embedded config');
  return config;
}

const pidFile = (config: Config) => join(config.dataDir, 'mailroom.pid');

/** The pid of a process that has exited. */
function deadPid(): number {
  const { pid } = spawnSync(process.execPath, ['-e', '']);
  if (pid === undefined) throw new Error('could not start a process');
  try {
    process.kill(pid, 0);
  } catch {
    return pid;
  }
  throw new Error(`pid ${pid} was reused already`);
}

t.test('embedded data survives a restart', async (t) => {
  const config = await embeddedConfig(t);
  const first = await openDatabase(config);
  t.equal(first.mode, 'embedded');
  const created = await servicesFor(first, config).domains.create({ name: 'Persist.Example' }, ACTOR);
  t.equal(created.value.name, 'persist.example');
  await first.close();
  t.same(await readdir(config.dataDir).then((files) => files.includes('mailroom.pid')), false, 'close releases the lock');

  const second = await openDatabase(config);
  t.teardown(() => second.close());
  const services = servicesFor(second, config);
  const found = await services.domains.get('persist.example', ACTOR);
  t.equal(found.value.name, 'persist.example');
  t.equal(found.revision, created.revision, 'the same row, unchanged');
  const list = await services.domains.list({}, { limit: 10 }, ACTOR);
  t.same(
    list.items.map((domain) => domain.name),
    ['persist.example'],
  );
});

t.test('a second open of a held data dir fails and names the process', async (t) => {
  const config = await embeddedConfig(t);
  const holder = await openDatabase(config);
  t.teardown(() => holder.close());
  t.equal((await readFile(pidFile(config), 'utf8')).trim(), String(process.pid), 'the pid file names this process');

  await t.rejects(openDatabase(config), { message: new RegExp(`in use by process ${process.pid}\\b`) });
  await t.rejects(openDatabase(config), { message: /DATABASE_URL/ }, 'and says what to do instead');
  // Two opens started together: only one may win.
  await holder.close();
  const results = await Promise.allSettled([openDatabase(config), openDatabase(config)]);
  t.same(
    results.map((result) => result.status).sort(),
    ['fulfilled', 'rejected'],
    'of two concurrent opens exactly one succeeds',
  );
  for (const result of results) if (result.status === 'fulfilled') await result.value.close();
  const again = await openDatabase(config);
  t.pass('once released, the data dir opens again');
  await again.close();
});

t.test('another process is refused while this one holds the data dir', async (t) => {
  const config = await embeddedConfig(t);
  const holder = await openDatabase(config);
  t.teardown(() => holder.close());
  const child = spawn(process.execPath, [BIN, 'migrate'], {
    env: { PATH: process.env.PATH, ...NO_CHILD_COVERAGE, MAILROOM_DATA_DIR: config.dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  t.equal(code, 1);
  t.match(stderr, new RegExp(`in use by process ${process.pid}\\b`));
  t.equal(stderr.trim().split('\n').length, 1, 'one line');
  t.equal((await readFile(pidFile(config), 'utf8')).trim(), String(process.pid), 'the holder keeps its lock');
});

t.test('a pid file left by a process that died is taken over', async (t) => {
  const config = await embeddedConfig(t);
  const stale = deadPid();
  await writeFile(pidFile(config), String(stale));
  const database = await openDatabase(config);
  t.equal((await readFile(pidFile(config), 'utf8')).trim(), String(process.pid));
  await database.close();
  t.notOk((await readdir(config.dataDir)).includes('mailroom.pid'), 'and released on close');
});

t.test('an empty or garbled pid file is taken over', async (t) => {
  const config = await embeddedConfig(t);
  for (const content of ['', 'not a pid', '-5', '0']) {
    await writeFile(pidFile(config), content);
    const database = await openDatabase(config);
    t.equal((await readFile(pidFile(config), 'utf8')).trim(), String(process.pid), JSON.stringify(content));
    await database.close();
  }
});

t.test('this process’s own pid in a pid file it did not write is stale (a restarted container)', async (t) => {
  const config = await embeddedConfig(t);
  await writeFile(pidFile(config), String(process.pid));
  const database = await openDatabase(config);
  t.pass('opened');
  await database.close();
});

t.test('a data dir that cannot be made fails clearly and holds nothing', async (t) => {
  const config = await embeddedConfig(t);
  const blocked = join(config.dataDir, 'blocked');
  await writeFile(blocked, 'a file where the data dir should be');
  await t.rejects(lockDataDir(blocked), { code: 'EEXIST' });
  await rm(blocked);
  const release = await lockDataDir(blocked);
  t.pass('once the path is free the same process can lock it: the failed attempt kept no claim');
  await release();
});

t.test('an in-memory database writes nothing to disk', async (t) => {
  const cwd = await mkdtemp(join(tmpdir(), 'mailroom-embedded-cwd-'));
  const before = process.cwd();
  process.chdir(cwd);
  t.teardown(async () => {
    process.chdir(before);
    await rm(cwd, { recursive: true, force: true });
  });
  const config = { ...loadConfig({}), dataDir: 'memory://' };
  const first = await openDatabase(config);
  const second = await openDatabase(config);
  t.pass('in-memory databases are not locked against each other');
  await first.close();
  await second.close();
  t.same(await readdir(cwd), [], 'no `memory:` directory or pid file appears');
});
