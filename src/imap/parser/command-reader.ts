import { type Connection, LINE_TOO_LONG } from '../../net/connection.js';

export interface CommandLimits {
  maxLineLength: number;
  maxLiteralSize: number;
}

/** One command's text lines and literals, in order, ready for tokenize(). */
export type RawCommand = { parts: (string | Buffer)[] } | { problem: string; tag: string | null; fatal: boolean };

const LITERAL = /\{(\d{1,10})(\+?)\}$/;

function tagOf(line: string): string | null {
  const tag = /^([^\s(){%*"\\\]]+) /.exec(line)?.[1];
  return tag ?? null;
}

/**
 * Reads a command with its literals (RFC 3501 §7.5, RFC 7888 LITERAL+), asking for each
 * synchronising literal and never holding one larger than allowed, nor literals larger than that
 * in all (a MULTIAPPEND, or a flood of empty literals, would otherwise grow without bound).
 * Null: the client has gone.
 */
export async function readCommand(connection: Connection, limits: CommandLimits): Promise<RawCommand | null> {
  const parts: (string | Buffer)[] = [];
  let literalBytes = 0;
  for (;;) {
    const line = await connection.readLine();
    if (line === null) return null;
    if (line === LINE_TOO_LONG) {
      // The rest of the command (a literal the client meant to send) cannot be told from commands.
      return { problem: 'Command line too long', tag: null, fatal: parts.length > 0 };
    }
    const tag = tagOf(typeof parts[0] === 'string' ? parts[0] : line);
    const literal = LITERAL.exec(line);
    if (!literal) {
      parts.push(line);
      return { parts };
    }
    const size = Number(literal[1]);
    const synchronising = literal[2] === '';
    // Each literal also counts a line's worth, so empty ones cannot pile up for free.
    literalBytes += size + limits.maxLineLength;
    if (size > limits.maxLiteralSize || literalBytes > limits.maxLiteralSize + limits.maxLineLength * 10) {
      const problem =
        size > limits.maxLiteralSize
          ? `Literal of ${size} bytes is larger than the ${limits.maxLiteralSize} allowed`
          : `The command's literals are larger than the ${limits.maxLiteralSize} bytes allowed in all`;
      // A synchronising literal is simply not asked for; a LITERAL+ one is already on its way.
      return { problem, tag, fatal: !synchronising };
    }
    if (synchronising) connection.write('+ Ready for literal data\r\n');
    const bytes = await connection.readBytes(size);
    if (bytes === null) return null;
    parts.push(line, bytes);
  }
}
