/**
 * IMAP command arguments as a tree (RFC 3501 §9): atoms (which include flags, sequence sets and
 * fetch attributes such as `BODY.PEEK[HEADER.FIELDS (FROM)]<0.100>`), strings (quoted or
 * literal) and parenthesised lists.
 */
export type Token =
  | { kind: 'atom'; value: string }
  | { kind: 'string'; value: Buffer; /** Sent as a literal, not quoted (APPEND tells messages from dates so). */ literal?: true }
  | { kind: 'list'; items: Token[] };

/** A command that cannot be understood; answered with BAD and counted. */
export class ImapSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImapSyntaxError';
  }
}

const ATOM_END = new Set(['(', ')', ' ', '"', '{']);

/**
 * Splits a command's text parts and literals into tokens. `parts` alternates text and the
 * literal that followed it: the text before a literal ends with its `{n}` marker.
 */
export function tokenize(parts: readonly (string | Buffer)[]): Token[] {
  const root: Token[] = [];
  const stack: Token[][] = [root];
  const push = (token: Token) => stack[stack.length - 1]!.push(token);
  for (let p = 0; p < parts.length; p++) {
    let part = parts[p]!;
    if (typeof part !== 'string') {
      push({ kind: 'string', value: part, literal: true });
      continue;
    }
    let i = 0;
    while (i < part.length) {
      const c = part[i]!;
      if (c === ' ') {
        i += 1;
      } else if (c === '(') {
        const list: Token = { kind: 'list', items: [] };
        push(list);
        stack.push(list.items);
        i += 1;
      } else if (c === ')') {
        if (stack.length === 1) throw new ImapSyntaxError('Unbalanced parenthesis');
        stack.pop();
        i += 1;
      } else if (c === '"') {
        let value = '';
        let j = i + 1;
        for (; j < part.length && part[j] !== '"'; j++) {
          if (part[j] === '\\') j += 1;
          if (j >= part.length) break;
          value += part[j];
        }
        if (j >= part.length) throw new ImapSyntaxError('Unterminated quoted string');
        push({ kind: 'string', value: Buffer.from(value, 'utf8') });
        i = j + 1;
      } else if (c === '{' || (c === '~' && part[i + 1] === '{')) {
        // A literal marker, or a literal8's (~{n}, RFC 4466: APPEND UTF8, RFC 6855 §4); its bytes are the next part.
        const end = part.indexOf('}', i);
        if (end === -1 || end !== part.length - 1) throw new ImapSyntaxError('A literal must end the line');
        i = part.length;
      } else {
        let j = i;
        let depth = 0;
        let joined = '';
        for (;;) {
          // Brackets may hold spaces and parentheses: BODY[HEADER.FIELDS (FROM TO)].
          while (j < part.length && (depth > 0 || !ATOM_END.has(part[j]!))) {
            if (part[j] === '[') depth += 1;
            else if (part[j] === ']') depth -= 1;
            j += 1;
          }
          if (depth <= 0) break;
          // A header-list name sent as a literal, BODY[HEADER.FIELDS ({7}CRLF SUBJECT)]: it joins the
          // atom as a quoted string, and the atom goes on in the text after the literal.
          const marker = /\{\d+\+?\}$/.exec(part);
          const [literal, after] = [parts[p + 1], parts[p + 2]];
          if (!marker || typeof literal === 'string' || typeof after !== 'string') break;
          const name = literal!.toString('latin1');
          // Brackets in it would end the section early; no header field name needs them.
          if (/[[\]]/.test(name)) throw new ImapSyntaxError('Invalid header field name in a literal');
          joined += `${part.slice(i, marker.index)}"${name.replace(/[\\"]/g, '\\$&')}"`;
          part = after;
          p += 2;
          i = j = 0;
        }
        if (depth !== 0) throw new ImapSyntaxError('Unbalanced bracket');
        push({ kind: 'atom', value: joined + part.slice(i, j) });
        i = j;
      }
    }
  }
  if (stack.length !== 1) throw new ImapSyntaxError('Unbalanced parenthesis');
  return root;
}
