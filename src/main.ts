import type { Config } from './config.js';
import { buildApp } from './api/app.js';
import { createServices } from './core/services.js';
import { connect, type DatabaseHandle } from './db/client.js';
import { lockDataDir } from './db/data-dir-lock.js';

/** The parts `mailroom serve --only` can start; IMAP, POP3 and LMTP join as they are built. */
export const PARTS = ['api'] as const;
export type Part = (typeof PARTS)[number];

export interface Running {
  /** Where each started listener is reachable, e.g. { api: 'http://127.0.0.1:8080' }. */
  urls: Partial<Record<Part, string>>;
  close(): Promise<void>;
}

/** Opens the database for config, migrated and ready; embedded data is locked to this process. */
export async function openDatabase(config: Config): Promise<DatabaseHandle> {
  const unlock = config.databaseUrl === null ? await lockDataDir(config.dataDir) : async () => {};
  try {
    const handle = await connect({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.databasePoolSize });
    await handle.migrate();
    return {
      ...handle,
      async close() {
        await handle.close();
        await unlock();
      },
    };
  } catch (error) {
    await unlock();
    throw error;
  }
}

export function servicesFor(db: DatabaseHandle, config: Config) {
  return createServices(db.db, {
    passwordPolicy: { minLength: config.passwordMinLength },
    bootstrapToken: config.adminToken,
    maxMessageSize: config.maxMessageSize,
  });
}

/** The composition root: config -> database -> core services -> doors. */
export async function start(config: Config, parts: readonly Part[] = PARTS): Promise<Running> {
  const database = await openDatabase(config);
  const services = servicesFor(database, config);
  const urls: Running['urls'] = {};
  const app = await buildApp({ services, logLevel: config.logLevel, bodyLimit: config.apiBodyLimit });
  try {
    if (parts.includes('api') && config.httpPort !== null) {
      urls.api = await app.listen({ host: config.host, port: config.httpPort });
    }
  } catch (error) {
    await app.close();
    await database.close();
    throw error;
  }
  app.log.info({ database: database.mode, urls }, 'mailroom started');
  return {
    urls,
    async close() {
      await app.close();
      await database.close();
    },
  };
}
