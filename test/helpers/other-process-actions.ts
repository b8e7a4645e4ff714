// Run by runInOtherProcess (other-process.ts): one action on the database of DATABASE_URL, in a
// Node process of its own, the way a second gateway on the same database would do it.
import { fileURLToPath } from 'node:url';
import { type Change, publishChange } from '../../src/core/events/changes.js';
import { connect, type DatabaseHandle } from '../../src/db/client.js';

/** Each action gets the process's own database handle and the JSON argument it was given. */
const actions = {
  async 'publish-change'(handle: DatabaseHandle, change: unknown) {
    await handle.db.transaction((tx) => publishChange(tx, change as Change));
  },
} satisfies Record<string, (handle: DatabaseHandle, argument: unknown) => Promise<unknown>>;

export type OtherProcessAction = keyof typeof actions;

// Imported for its types, this module does nothing; run as a script, it runs the action it is given.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [action, argument = 'null'] = process.argv.slice(2);
  const databaseUrl = process.env.DATABASE_URL;
  if (databaseUrl === undefined || action === undefined || !Object.hasOwn(actions, action)) {
    throw new Error(`usage: DATABASE_URL=… other-process-actions.ts ${Object.keys(actions).join('|')} [json]`);
  }
  const handle = await connect({ databaseUrl, dataDir: 'memory://', poolSize: 1 });
  try {
    const result = await actions[action as OtherProcessAction](handle, JSON.parse(argument));
    process.stdout.write(`${JSON.stringify(result ?? null)}\n`);
  } finally {
    await handle.close();
  }
}
