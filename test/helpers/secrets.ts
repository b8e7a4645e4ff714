import { inspect } from 'node:util';
import { accounts, apiKeys, auditEvents, webhookEvents, webhooks } from '../../src/db/schema/index.js';
import type { Services } from '../../src/core/services.js';
import type { DatabaseHandle } from '../../src/db/client.js';

/*
 * Secrets never reach logs, audit events or API responses. Each test file runs in its own
 * process, so this module's state is that file's: the helpers remember every secret they hand
 * out or see (passwords, tokens, stored hashes) and record every output they produce (log lines,
 * response bodies, audit rows, child process output); when a file's test ends, the check throws
 * if any output holds any secret, which fails the file.
 */

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface Leak {
  source: string;
  secret: string;
}

/** Shorter values are words a test also uses innocently ('short' as a rejected password). */
const MIN_SECRET_LENGTH = 8;

const secrets = new Set<string>();
const outputs: { source: string; text: string }[] = [];
// Each output is compared with each secret once: checks run at several teardowns of one file.
const comparedSecrets = new Set<string>();
let comparedOutputs = 0;
const guarded = new WeakSet<Teardown>();

export function rememberSecret(value: unknown): void {
  if (typeof value === 'string' && value.length >= MIN_SECRET_LENGTH) secrets.add(value);
}

export function recordOutput(source: string, text: string): void {
  if (text !== '') outputs.push({ source, text });
}

/**
 * Remembers every password and hash given to the mailbox services and every token and webhook
 * secret the core issues, whether a test calls the core directly or goes through a door.
 */
export function rememberSecretsOf(services: Services): void {
  const { mailboxes, mailboxBatch, apiKeys, webhooks } = services;
  const create = mailboxes.create;
  mailboxes.create = (input, actor) => {
    rememberSecret(input.password);
    rememberSecret(input.passwordHash);
    return create(input, actor);
  };
  const setPassword = mailboxes.setPassword;
  mailboxes.setPassword = (address, input, actor) => {
    rememberSecret(input.password);
    rememberSecret(input.passwordHash);
    return setPassword(address, input, actor);
  };
  const run = mailboxBatch.run;
  mailboxBatch.run = (operations, options, actor) => {
    for (const operation of operations) {
      if (operation.op !== 'delete') {
        rememberSecret(operation.password);
        rememberSecret(operation.passwordHash);
      }
    }
    return run(operations, options, actor);
  };
  const issue = apiKeys.create;
  apiKeys.create = async (input, actor) => {
    const key = await issue(input, actor);
    rememberSecret(key.token);
    return key;
  };
  const subscribe = webhooks.create;
  webhooks.create = async (input, actor) => {
    const webhook = await subscribe(input, actor);
    rememberSecret(webhook.secret);
    return webhook;
  };
}

/** A log function that records its arguments, for the doors' `log` options. */
export function recordingLog(source: string) {
  const record = (details: object, message: string) => recordOutput(source, `${message} ${inspect(details, { depth: 6 })}`);
  return { info: record, warn: record, error: record };
}

/** Pino's destination: each written line is an output. */
export const recordingStream = (source: string) => ({ write: (line: string) => recordOutput(source, line) });

/** The secrets found in outputs since the last call; each pair is reported once. */
export function newLeaks(): Leak[] {
  const fresh = [...secrets].filter((secret) => !comparedSecrets.has(secret));
  const leaks: Leak[] = [];
  outputs.forEach(({ source, text }, index) => {
    for (const secret of index < comparedOutputs ? fresh : secrets) {
      if (text.includes(secret)) leaks.push({ source, secret: `${secret.slice(0, 4)}…(${secret.length} chars)` });
    }
  });
  comparedOutputs = outputs.length;
  for (const secret of fresh) comparedSecrets.add(secret);
  return leaks;
}

/**
 * Fails the test with a leak when `t` ends. Called by the helpers before they register their own
 * teardowns, so it runs after them (tap runs teardowns in reverse): after the last log line.
 */
export function checkForLeaksAtEnd(t: Teardown): void {
  if (guarded.has(t)) return;
  guarded.add(t);
  t.teardown(() => {
    const leaks = newLeaks();
    if (leaks.length > 0) {
      throw new Error(`secrets leaked: ${leaks.map((leak) => `${leak.secret} in ${leak.source}`).join('; ')}`);
    }
  });
}

/**
 * The stored hashes and webhook secrets become secrets; the audit trail and the webhook events
 * become output. Read just before the database closes.
 */
export async function recordDatabase(handle: DatabaseHandle): Promise<void> {
  const [hashes, tokens, secrets, audit, events] = await Promise.all([
    handle.db.select({ hash: accounts.passwordHash }).from(accounts),
    handle.db.select({ hash: apiKeys.tokenHash }).from(apiKeys),
    handle.db.select({ hash: webhooks.secret }).from(webhooks),
    handle.db.select().from(auditEvents),
    handle.db.select().from(webhookEvents),
  ]);
  for (const row of [...hashes, ...tokens, ...secrets]) rememberSecret(row.hash);
  for (const event of audit) recordOutput(`audit event ${event.action}`, JSON.stringify(event));
  for (const event of events) recordOutput(`webhook event ${event.type}`, JSON.stringify(event));
}
