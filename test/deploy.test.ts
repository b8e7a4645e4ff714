import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import t from 'tap';
import { loadConfig } from '../src/config.js';

/* What README.md and deploy/ tell an operator must match what the code does. */

const read = (path: string) => readFile(new URL(`../${path}`, import.meta.url), 'utf8');
const UNIT = new URL('../deploy/mailroom.service', import.meta.url).pathname;

/** The environment variables config.ts reads: each is named once, as a string literal. */
async function configVariables(): Promise<Set<string>> {
  return new Set([...(await read('src/config.ts')).matchAll(/'((?:MAILROOM_|DATABASE_URL)[A-Z0-9_]*)'/g)].map((m) => m[1]!));
}

/** `Key=value` lines of the unit's [Service] section; a key may repeat. */
function serviceSection(unit: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  for (const line of unit.split('\n').map((l) => l.trim())) {
    if (line === '' || line.startsWith('#')) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) section = header[1]!;
    else if (section === 'Service') {
      const [key = '', ...value] = line.split('=');
      keys.set(key, [...(keys.get(key) ?? []), value.join('=')]);
    }
  }
  return keys;
}

t.test('deploy/mailroom.service has the settings README promises', async (t) => {
  const unit = serviceSection(await read('deploy/mailroom.service'));
  const one = (key: string) => unit.get(key)?.at(-1);
  t.equal(one('NoNewPrivileges'), 'yes');
  t.equal(one('ProtectSystem'), 'strict');
  t.equal(one('ReadWritePaths'), '/var/lib/mailroom', 'the data dir is writable');
  t.equal(one('Environment'), `MAILROOM_DATA_DIR=${one('ReadWritePaths')}`, 'and is the one Mailroom uses');
  t.ok(Number(one('LimitNOFILE')) >= 65536, 'room for many connections');
  t.equal(one('Restart'), 'on-failure');
  t.equal(one('KillSignal'), 'SIGTERM', 'the signal serve stops gracefully on');
  t.match(one('EnvironmentFile'), /^\/etc\/mailroom\//);
  t.match(one('ExecStart'), /\/bin\/mailroom\.js serve$/);
  t.match(one('ExecReload'), /kill -HUP \$MAINPID/, 'reload rereads the TLS pair');
  const stopSeconds = Number(/^(\d+)s?$/.exec(one('TimeoutStopSec') ?? '')?.[1]);
  t.ok(stopSeconds > loadConfig({}).shutdownTimeoutMs / 1000, 'systemd waits longer than MAILROOM_SHUTDOWN_TIMEOUT before it kills');
});

const run = promisify(execFile);
const noSystemd = !(await run('systemd-analyze', ['--version']).then(() => true, () => false)) && 'systemd-analyze is not installed';

t.test('systemd-analyze verify finds nothing wrong in the unit', { skip: noSystemd }, async (t) => {
  // verify reports unknown keys and bad values on stderr but exits 0; a missing ExecStart program exits 1.
  const { stderr } = await run('systemd-analyze', ['verify', UNIT]).catch((error: { stderr: string }) => ({ stderr: error.stderr }));
  t.equal(stderr.trim(), '', 'no complaint');
});

t.test('every environment variable README.md and the unit name is one config.ts reads, and each is documented', async (t) => {
  const known = await configVariables();
  t.ok(known.size > 30, `config.ts read as expected (${known.size} variables)`);
  for (const [file, text] of [
    ['README.md', await read('README.md')],
    ['SECURITY.md', await read('SECURITY.md')],
    ['deploy/mailroom.service', await read('deploy/mailroom.service')],
  ] as const) {
    // `MAILROOM_LOGIN_*` names a family: some variable must start with it.
    for (const [, name, family] of text.matchAll(/\b(MAILROOM_[A-Z0-9_]*[A-Z0-9])(_\*)?/g)) {
      const exists = family ? [...known].some((variable) => variable.startsWith(`${name}_`)) : known.has(name!);
      t.ok(exists, `${file}: ${name}${family ?? ''} is read by config.ts`);
    }
  }
  const table = (await read('README.md')).split('## Configuration')[1]!.split('\n## ')[0]!;
  const documented = new Set([...table.matchAll(/^\| `([A-Z0-9_]+)`(?: \/ `([A-Z0-9_]+)`)?/gm)].flatMap((m) => m.slice(1).filter(Boolean)));
  t.same([...known].filter((name) => !documented.has(name)), [], "every variable has a row in README's configuration table");
});
