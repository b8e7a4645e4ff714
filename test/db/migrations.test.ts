import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type SQL, sql } from 'drizzle-orm';
import t from 'tap';
import { connect, type DatabaseHandle } from '../../src/db/client.js';
import { freshDatabase, freshDatabaseUrl } from '../helpers/database.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MIGRATIONS = join(ROOT, 'migrations');
const DRIZZLE_KIT = join(ROOT, 'node_modules/.bin/drizzle-kit');
const MAIL_TABLES = ['expunged', 'failed_logins', 'folders', 'mail_sessions', 'messages', 'subscriptions'];

async function rows<T>(database: DatabaseHandle, query: SQL): Promise<T[]> {
  // node-postgres and PGlite both answer with { rows }.
  const result = (await database.db.execute(query)) as unknown as { rows: T[] };
  return result.rows;
}

/** Every file under dir with its contents, for comparing two trees. */
async function tree(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files[relative(dir, path)] = await readFile(path, 'utf8');
  }
  return files;
}

/** Runs drizzle-kit generate against the schema, writing into out; returns what it printed. */
async function generate(out: string): Promise<string> {
  // drizzle-kit prefixes --out with './', so it must be relative to the working directory.
  const { stdout, stderr } = await promisify(execFile)(
    DRIZZLE_KIT,
    ['generate', '--dialect', 'postgresql', '--schema', './src/db/schema/index.ts', '--out', relative(ROOT, out)],
    { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' } },
  );
  return stdout + stderr;
}

async function journalTags(): Promise<string[]> {
  const journal = JSON.parse(await readFile(join(MIGRATIONS, 'meta/_journal.json'), 'utf8')) as {
    entries: { tag: string }[];
  };
  return journal.entries.map((entry) => entry.tag);
}

t.test('the committed migrations match the drizzle schema', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'mailroom-migrations-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  await cp(MIGRATIONS, out, { recursive: true });
  const before = await tree(out);
  const output = await generate(out);
  const otherwise = 'if not, src/db/schema changed without a migration: run `npm run db:generate` and commit migrations/';
  t.match(output, /No schema changes, nothing to migrate/, `drizzle-kit finds no schema change (${otherwise})`);
  t.same(await tree(out), before, `drizzle-kit writes no file (${otherwise})`);
});

t.test('the drift check can fail: a column missing from the last snapshot is noticed', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'mailroom-migrations-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  await cp(MIGRATIONS, out, { recursive: true });
  const snapshots = (await readdir(join(out, 'meta'))).filter((file) => file.endsWith('_snapshot.json')).sort();
  const last = join(out, 'meta', snapshots[snapshots.length - 1]!);
  const snapshot = JSON.parse(await readFile(last, 'utf8'));
  delete snapshot.tables['public.folders'].columns.special_use;
  await writeFile(last, JSON.stringify(snapshot, null, 2));
  const before = Object.keys(await tree(out));
  const output = await generate(out);
  const added = Object.keys(await tree(out)).filter((file) => !before.includes(file) && file.endsWith('.sql'));
  t.equal(added.length, 1, 'a new migration is written');
  t.match(await readFile(join(out, added[0] ?? 'none'), 'utf8').catch(() => output), /ADD COLUMN "special_use"/);
});

t.test('every migration file is in the journal and the other way round', async (t) => {
  const files = (await readdir(MIGRATIONS)).filter((file) => file.endsWith('.sql')).map((file) => file.slice(0, -4));
  t.same(files.sort(), (await journalTags()).sort());
});

t.test('migrations apply again without error or change', async (t) => {
  const database = await freshDatabase(t);
  const schemaNow = () =>
    rows(
      database,
      sql`select table_name, column_name, data_type from information_schema.columns
          where table_schema = 'public' order by table_name, ordinal_position`,
    );
  const before = await schemaNow();
  t.ok(before.length > 0);
  await database.migrate();
  await database.migrate();
  t.same(await schemaNow(), before, 'the schema is unchanged');
  const applied = await rows<{ count: number | string }>(database, sql`select count(*) as count from drizzle.__drizzle_migrations`);
  t.equal(Number(applied[0]!.count), (await journalTags()).length, 'each migration is recorded once');
});

t.test('a restart migrates a database that is already migrated', async (t) => {
  const url = await freshDatabaseUrl(t);
  const dataDir = await mkdtemp(join(tmpdir(), 'mailroom-migrations-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const options = { databaseUrl: url, dataDir, poolSize: 2 };
  for (let start = 1; start <= 2; start++) {
    const database = await connect(options);
    try {
      await database.migrate();
      t.pass(`start ${start}: migrated`);
    } finally {
      await database.close();
    }
  }
});

t.test('processes starting together on one Postgres take turns migrating', async (t) => {
  const url = await freshDatabaseUrl(t);
  if (url === null) {
    t.pass('embedded: one process per data dir, guarded by the data-dir lock (test/db/embedded.test.ts)');
    return;
  }
  const handles = await Promise.all([1, 2, 3, 4].map(() => connect({ databaseUrl: url, dataDir: 'memory://', poolSize: 2 })));
  t.teardown(() => Promise.all(handles.map((handle) => handle.close())));
  await Promise.all(handles.map((handle) => handle.migrate()));
  const applied = await rows<{ count: string }>(handles[0]!, sql`select count(*) as count from drizzle.__drizzle_migrations`);
  t.equal(Number(applied[0]!.count), (await journalTags()).length);
});

t.test('mail tables lead their keys with account_id', async (t) => {
  const database = await freshDatabase(t);
  const withAccount = await rows<{ table_name: string }>(
    database,
    sql`select table_name from information_schema.columns
        where table_schema = 'public' and column_name = 'account_id' order by table_name`,
  );
  t.same(
    withAccount.map((row) => row.table_name),
    MAIL_TABLES,
    'the mail tables are the tables with an account_id (a new one must be added here and checked below)',
  );

  // Primary keys and unique constraints: what Citus needs to lead with the distribution column.
  const keys = await rows<{ table_name: string; name: string; primary: boolean; first_column: string }>(
    database,
    sql`select c.relname as table_name, i.relname as name, x.indisprimary as primary, a.attname as first_column
        from pg_index x
        join pg_class c on c.oid = x.indrelid
        join pg_class i on i.oid = x.indexrelid
        join pg_namespace n on n.oid = c.relnamespace
        join pg_attribute a on a.attrelid = c.oid and a.attnum = x.indkey[0]
        where n.nspname = 'public' and (x.indisprimary or x.indisunique)
        order by c.relname, i.relname`,
  );
  for (const table of MAIL_TABLES) {
    const tableKeys = keys.filter((key) => key.table_name === table);
    t.equal(tableKeys.filter((key) => key.primary).length, 1, `${table} has a primary key`);
    for (const key of tableKeys) {
      t.equal(key.first_column, 'account_id', `${table}: ${key.name} starts with account_id`);
    }
  }

  // Foreign keys between mail tables stay within one account.
  const foreignKeys = await rows<{ table_name: string; name: string; first_column: string; target: string }>(
    database,
    sql`select c.relname as table_name, k.conname as name, a.attname as first_column, r.relname as target
        from pg_constraint k
        join pg_class c on c.oid = k.conrelid
        join pg_class r on r.oid = k.confrelid
        join pg_attribute a on a.attrelid = c.oid and a.attnum = k.conkey[1]
        where k.contype = 'f'`,
  );
  for (const key of foreignKeys.filter((key) => MAIL_TABLES.includes(key.target))) {
    t.equal(key.first_column, 'account_id', `${key.table_name}: ${key.name} to ${key.target} starts with account_id`);
  }
  t.ok(foreignKeys.some((key) => key.table_name === 'messages' && key.target === 'folders'), 'messages reference folders');
});
