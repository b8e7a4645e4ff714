import { ImapSyntaxError, type Token } from './parser/tokens.js';

/** Argument readers shared by the commands: each throws ImapSyntaxError (BAD) on a mismatch. */

export function expectCount(args: Token[], min: number, max = min): void {
  if (args.length < min || args.length > max) {
    throw new ImapSyntaxError(min === max ? `Expected ${min} arguments` : `Expected ${min} to ${max} arguments`);
  }
}

export function atom(token: Token | undefined, what = 'an atom'): string {
  if (token?.kind !== 'atom') throw new ImapSyntaxError(`Expected ${what}`);
  return token.value;
}

/** An astring: atom, quoted string or literal, as UTF-8 text. */
export function text(token: Token | undefined, what = 'a string'): string {
  if (token?.kind === 'atom') return token.value;
  if (token?.kind === 'string') return token.value.toString('utf8');
  throw new ImapSyntaxError(`Expected ${what}`);
}

export function bytes(token: Token | undefined, what = 'a string'): Buffer {
  if (token?.kind === 'string') return token.value;
  if (token?.kind === 'atom') return Buffer.from(token.value);
  throw new ImapSyntaxError(`Expected ${what}`);
}

export function listItems(token: Token | undefined, what = 'a parenthesised list'): Token[] {
  if (token?.kind !== 'list') throw new ImapSyntaxError(`Expected ${what}`);
  return token.items;
}

export function number(token: Token | undefined, what = 'a number'): number {
  const value = atom(token, what);
  if (!/^\d{1,15}$/.test(value)) throw new ImapSyntaxError(`Expected ${what}`);
  return Number(value);
}
