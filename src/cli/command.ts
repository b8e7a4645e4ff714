import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Actor } from '../core/actor.js';
import type { Status } from '../core/limits.js';
import type { Page, PageRequest } from '../core/pagination.js';
import type { Services } from '../core/services.js';
import { parseChoice, parseCount, parseSize, parseTime, readAll, readFirstLine } from './values.js';

/** A mistake on the command line: exit status 2, the message and the usage of what was meant. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface Outcome {
  /** What --json prints: the core's result in the REST API's shape; undefined prints nothing (a 204). */
  json?: unknown;
  /** What a person reads. */
  text: string;
  /** Some of the work was refused (a batch's failed operations): exit status 1 after printing. */
  failed?: boolean;
}

/** The work a command does once its arguments are valid: one call into the core. */
export type Job = (services: Services, actor: Actor) => Promise<Outcome>;

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Command {
  name: string;
  /** What follows `mailroom <group> <name>` in the usage. */
  synopsis: string;
  summary: string;
  /** Required positional arguments, by name, in order. */
  positionals?: readonly string[];
  options?: Options;
  /** Checks the arguments (throwing UsageError) before any database is opened. */
  prepare(input: Input): Job | Promise<Job>;
}

export interface Group {
  name: string;
  commands: readonly Command[];
}

/** `domains create <name> [...]`, as the usage shows it. */
export function commandUsage(group: Group, command: Command): string {
  return `${group.name} ${command.name} ${command.synopsis}`.trimEnd();
}

/** Every command of the group with what it does, for the usage text. */
export function groupUsage(group: Group): string {
  return group.commands.map((command) => `  ${commandUsage(group, command)}\n      ${command.summary}\n`).join('');
}

/** Everything the shell gave one command, with typed readers that report mistakes as usage errors. */
export class Input {
  constructor(
    private readonly command: Command,
    private readonly values: ReturnType<typeof parseArgs>['values'],
    private readonly positionals: readonly string[],
    readonly usage: string,
    private readonly stdin: NodeJS.ReadableStream,
  ) {}

  get json(): boolean {
    return this.values.json === true;
  }

  /** --help: print the usage instead of running. */
  get help(): boolean {
    return this.values.help === true;
  }

  usageError(message: string): UsageError {
    return new UsageError(message, this.usage);
  }

  /** A declared positional; its presence was checked when the line was parsed. */
  arg(name: string): string {
    const value = this.positionals[this.command.positionals?.indexOf(name) ?? -1];
    if (value === undefined) throw this.usageError(`missing argument <${name}>`);
    return value;
  }

  option(name: string): string | undefined {
    const value = this.values[name];
    return typeof value === 'string' ? value : undefined;
  }

  flag(name: string): boolean {
    return this.values[name] === true;
  }

  /** SIZE: bytes or 500K / 20M / 1G / 2T; `unlimited` is null. */
  size(name: string): number | null | undefined {
    return this.parsed(name, (text) => parseSize(text));
  }

  /** A whole number; with allowUnlimited, `unlimited` is null. */
  count(name: string, allowUnlimited: true): number | null | undefined;
  count(name: string, allowUnlimited: false): number | undefined;
  count(name: string, allowUnlimited: boolean): number | null | undefined {
    return this.parsed(name, (text) => parseCount(text, allowUnlimited));
  }

  /** An RFC 3339 time with its offset. */
  time(name: string): string | undefined {
    return this.parsed(name, parseTime);
  }

  choice<T extends string>(name: string, choices: readonly T[]): T | undefined {
    return this.parsed(name, (text) => parseChoice(text, choices));
  }

  /** --password-stdin reads the first line of stdin; --password-hash imports a hash. Never both. */
  async password(): Promise<{ password: string } | { passwordHash: string }> {
    const hash = this.option('password-hash');
    if (this.flag('password-stdin') === (hash !== undefined)) {
      throw this.usageError('give exactly one of --password-stdin and --password-hash');
    }
    if (hash !== undefined) return { passwordHash: hash };
    const password = await readFirstLine(this.stdin);
    if (password === '') throw this.usageError('--password-stdin: the first line of stdin is empty');
    return { password };
  }

  /** The text of the file a positional names, or of stdin for `-`. */
  async file(name: string): Promise<string> {
    const path = this.arg(name);
    try {
      return path === '-' ? await readAll(this.stdin) : await readFile(path, 'utf8');
    } catch (error) {
      throw this.usageError(`<${name}>: ${(error as Error).message}`);
    }
  }

  /** --limit N fetches one page (with its nextCursor); without it, every item from --cursor on. */
  pager(): <T>(fetch: (page: PageRequest) => Promise<Page<T>>) => Promise<Page<T>> {
    const limit = this.parsed('limit', (text) => {
      const n = parseCount(text, false);
      if (n === null || n < 1 || n > 500) throw new Error(`expected a whole number from 1 to 500, got '${text}'`);
      return n;
    });
    const cursor = this.option('cursor');
    return async <T>(fetch: (page: PageRequest) => Promise<Page<T>>): Promise<Page<T>> => {
      if (limit !== undefined) return fetch({ limit, cursor });
      const items: T[] = [];
      let next = cursor;
      do {
        const page = await fetch({ limit: 500, cursor: next });
        items.push(...page.items);
        next = page.nextCursor ?? undefined;
      } while (next !== undefined);
      return { items, nextCursor: null };
    };
  }

  private parsed<T>(name: string, parse: (text: string) => T): T | undefined {
    const text = this.option(name);
    if (text === undefined) return undefined;
    try {
      return parse(text);
    } catch (error) {
      throw this.usageError(`--${name}: ${(error as Error).message}`);
    }
  }
}

export const STATUSES: readonly Status[] = ['active', 'suspended'];

/** Drops the keys left undefined: the core merges a change by spreading it over the current values. */
export function given<T extends object>(object: T): Partial<T> {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as Partial<T>;
}

/** Options every list command takes. */
export const PAGE_OPTIONS: Options = { limit: { type: 'string' }, cursor: { type: 'string' } };

const PARSE_ERRORS: Record<string, (message: string) => string> = {
  // Node's message goes on about '--'; the option name is all a person needs.
  ERR_PARSE_ARGS_UNKNOWN_OPTION: (message) => {
    const option = /'([^']+)'/.exec(message)?.[1] ?? '';
    const hint = /^--password(=|$)/.test(option) ? '; passwords are read with --password-stdin' : '';
    return `unknown option '${option.replace(/=.*/, '')}'${hint}`;
  },
  ERR_PARSE_ARGS_INVALID_OPTION_VALUE: (message) => message.replace(/^Option/, 'option'),
};

/** node:util parseArgs, strict, with its mistakes turned into usage errors. */
export function parseStrict(args: string[], options: Options, usage: string): ReturnType<typeof parseArgs> {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    const translate = PARSE_ERRORS[(error as NodeJS.ErrnoException).code ?? ''];
    if (!translate) throw error;
    throw new UsageError(translate((error as Error).message), usage);
  }
}

/** Parses one command's arguments and checks their number. */
export function parseCommand(group: Group, command: Command, args: string[], stdin: NodeJS.ReadableStream): Input {
  const usage = `usage: mailroom ${commandUsage(group, command)}\n`;
  const parsed = parseStrict(args, { ...command.options, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, usage);
  const input = new Input(command, parsed.values, parsed.positionals, usage, stdin);
  if (input.help) return input;
  const expected = command.positionals ?? [];
  if (parsed.positionals.length < expected.length) {
    throw new UsageError(`missing argument <${expected[parsed.positionals.length]}>`, usage);
  }
  if (parsed.positionals.length > expected.length) {
    // The extra word is not echoed: it may be a password typed where it does not belong.
    const names = expected.map((name) => `<${name}>`).join(' ');
    throw new UsageError(`too many arguments; expected ${names === '' ? 'none' : names}`, usage);
  }
  return input;
}
