import { isDatabaseUnavailable, loggable } from '../core/errors.js';
import type { ImapCommand } from './command.js';
import { COMMANDS } from './commands/index.js';
import { imapAnswer } from './errors.js';
import type { RawCommand } from './parser/command-reader.js';
import { ImapSyntaxError, tokenize } from './parser/tokens.js';
import type { ImapSession } from './session.js';

const BY_NAME = new Map<string, ImapCommand>(COMMANDS.map((command) => [command.name, command]));
const HEAD = /^([^\s(){%*"\\\]]+) ([A-Za-z]+)(?: ([A-Za-z]+))?(?: |$)/;

/**
 * Runs one command, timed by its name; anything unknown is timed as "other", so the label set
 * stays bounded. IDLE is not timed: it lasts as long as the client waits, not as we work.
 */
export async function dispatch(session: ImapSession, command: Extract<RawCommand, { parts: unknown }>): Promise<void> {
  const started = process.hrtime.bigint();
  const name = (await run(session, command)) ?? 'other';
  if (name === 'IDLE') return;
  session.services.metrics.commandDuration.observe({ protocol: 'imap', command: name }, Number(process.hrtime.bigint() - started) / 1e9);
}

/**
 * Finds the command, checks the state, tokenizes its arguments, runs it, brings the client up to
 * date where the RFC allows, and answers with the tag. Errors are mapped once here. Answers the
 * command's name when it is one we know.
 */
async function run(session: ImapSession, command: Extract<RawCommand, { parts: unknown }>): Promise<string | void> {
  const first = command.parts[0] as string;
  const head = HEAD.exec(first);
  if (!head) {
    const tag = /^([^\s(){%*"\\\]]+)/.exec(first)?.[1];
    return bad(session, tag ?? '*', tag ? 'Missing command' : 'Missing tag');
  }
  const [matched, tag, name, sub] = head as unknown as [string, string, string, string | undefined];
  const uid = name.toUpperCase() === 'UID';
  const commandName = (uid ? sub ?? '' : name).toUpperCase();
  const rest = uid ? first.slice(matched.length) : first.slice(`${tag} ${name}`.length);
  const definition = BY_NAME.get(commandName);
  if (!definition || (uid && !definition.uidVariant)) return bad(session, tag, `Unknown command ${uid ? 'UID ' : ''}${commandName}`);
  const label = uid ? `UID ${definition.name}` : definition.name;
  if (!definition.states.includes(session.state)) {
    bad(session, tag, `${commandName} is not allowed ${session.state === 'not_authenticated' ? 'before login' : 'now'}`);
    return label;
  }
  try {
    const args = tokenize([rest, ...command.parts.slice(1)]);
    const text = await definition.run(session, args, { tag, uid });
    if (text === null || (session.state === 'logout' && definition.name !== 'LOGOUT')) return label;
    await session.sync({ expunges: uid || definition.expungesAfter !== false });
    session.write(`${tag} OK ${text}\r\n`);
  } catch (error) {
    if (error instanceof ImapSyntaxError) {
      bad(session, tag, error.message);
      return label;
    }
    const answer = imapAnswer(error);
    if (answer) {
      if (isDatabaseUnavailable(error)) session.log.warn({ err: loggable(error), command: commandName }, 'database unavailable');
      session.write(`${tag} ${answer.status} ${answer.text}\r\n`);
      return label;
    }
    session.log.error({ err: loggable(error), command: commandName }, 'imap command failed');
    session.write(`${tag} NO [SERVERBUG] A temporary problem on the server; try again later\r\n`);
  }
  return label;
}

/** BAD, counted: a client that keeps sending nonsense is let go (STYLE.md, smtp-server). */
export function bad(session: ImapSession, tag: string, text: string): void {
  session.badCommands += 1;
  session.write(`${tag} BAD ${text}\r\n`);
  if (session.badCommands >= session.context.limits.maxBadCommands) session.bye('Too many bad commands');
}
