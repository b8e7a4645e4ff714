import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { resolve } from 'node:path';

/** Pid files of this process: its own pid in any other one is left over from an earlier run. */
const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function inUse(dataDir: string, owner: number): Error {
  return new Error(
    `The embedded database in ${dataDir} is in use by process ${owner}; stop it, use the API, or set DATABASE_URL`,
  );
}

/**
 * PGlite is a database inside one process: a second process opening the same files would corrupt
 * them. A pid file makes the second one stop with a clear message instead.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  // An in-memory database has no files to guard (and `memory://` is no directory to create).
  if (dataDir.startsWith('memory://')) return async () => {};
  const path = resolve(dataDir, 'mailroom.pid');
  // Claimed before the first await, so two opens in this process cannot both pass.
  if (held.has(path)) throw inUse(dataDir, process.pid);
  held.add(path);
  try {
    await mkdir(dataDir, { recursive: true });
    for (;;) {
      try {
        const file = await open(path, 'wx');
        await file.writeFile(String(process.pid));
        await file.close();
        return () => {
          held.delete(path);
          return rm(path, { force: true });
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const owner = Number(await readFile(path, 'utf8').catch(() => ''));
        // Our own pid in a file we do not hold (see `held`) is stale: a restarted container often gets the same pid.
        if (owner !== process.pid && Number.isInteger(owner) && owner > 0 && alive(owner)) throw inUse(dataDir, owner);
        await rm(path, { force: true }); // left behind by a process that died
      }
    }
  } catch (error) {
    held.delete(path);
    throw error;
  }
}
