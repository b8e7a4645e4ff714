import { ImapSyntaxError, type Token } from '../parser/tokens.js';
import { isWholeMessage, parseSection, type Section, sectionName } from './section.js';

export type SimpleItem = 'UID' | 'FLAGS' | 'INTERNALDATE' | 'RFC822.SIZE' | 'ENVELOPE' | 'BODY' | 'BODYSTRUCTURE' | 'MODSEQ';

/** One thing a FETCH asks for; `name` is how the response labels it. */
export type FetchItem =
  | { kind: SimpleItem; name: SimpleItem }
  | {
      kind: 'section';
      name: string;
      section: Section;
      /** <start.length>: bytes of the section from start; length null with the lenient <start>. */
      partial: { start: number; length: number | null } | null;
      /** BODY.PEEK[…] and RFC822.HEADER leave \Seen alone. */
      peek: boolean;
    };

export interface FetchRequest {
  items: FetchItem[];
  /** CHANGEDSINCE (RFC 7162 §3.1.4): only messages whose MODSEQ is higher. */
  changedSince: number | null;
  /** VANISHED (RFC 7162 §3.2.6): UIDs in the set expunged since CHANGEDSINCE are told first. */
  vanished: boolean;
  /** Some item must set \Seen (BODY[…], RFC822, RFC822.TEXT). */
  setsSeen: boolean;
  /** Data beyond the session's view: the stored index, the summary (date, size, MODSEQ). */
  needsIndex: boolean;
  needsSummary: boolean;
  /** Message bytes are read: over several messages the index tells their sizes for reading ahead. */
  sizesMessages: boolean;
  /** MODSEQ or CHANGEDSINCE: a CONDSTORE enabling command (RFC 7162 §3.1). */
  enablesCondstore: boolean;
}

const SIMPLE = new Set<string>(['UID', 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY', 'BODYSTRUCTURE', 'MODSEQ']);

const MACROS: Record<string, SimpleItem[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};

// BODY[section]<start.length>; brackets may hold spaces (HEADER.FIELDS lists). <start> alone is
// not RFC 3501 but some clients send it; it means "from start to the end".
const BODY_SECTION = /^(BODY(?:\.PEEK)?)\[(.*)\](?:<(\d{1,10})(?:\.(\d{1,10}))?>)?$/is;

function simple(name: SimpleItem): FetchItem {
  return { kind: name, name };
}

function sectionItem(name: string, spec: string, peek: boolean): FetchItem {
  return { kind: 'section', name, section: parseSection(spec), partial: null, peek };
}

/** One fetch-att (RFC 3501 §9), case-insensitive. */
function parseItem(text: string): FetchItem {
  const upper = text.toUpperCase();
  if (SIMPLE.has(upper)) return simple(upper as SimpleItem);
  if (upper === 'RFC822') return sectionItem('RFC822', '', false);
  if (upper === 'RFC822.HEADER') return sectionItem('RFC822.HEADER', 'HEADER', true);
  if (upper === 'RFC822.TEXT') return sectionItem('RFC822.TEXT', 'TEXT', false);
  const match = BODY_SECTION.exec(text);
  if (!match) throw new ImapSyntaxError(`Unknown FETCH attribute ${text.slice(0, 100)}`);
  const [, kind, spec, start, length] = match as unknown as [string, string, string, string | undefined, string | undefined];
  const section = parseSection(spec);
  let partial: { start: number; length: number | null } | null = null;
  if (start !== undefined) {
    partial = { start: Number(start), length: length === undefined ? null : Number(length) };
    if (partial.length === 0) throw new ImapSyntaxError('A partial length must be greater than zero');
  }
  const name = `BODY[${sectionName(section)}]${partial ? `<${partial.start}>` : ''}`;
  return { kind: 'section', name, section, partial, peek: kind.toUpperCase() === 'BODY.PEEK' };
}

/**
 * The FETCH arguments after the sequence set: one attribute, a macro or a parenthesised list,
 * then optionally a list of modifiers (CHANGEDSINCE, VANISHED). UID FETCH always answers UID.
 */
export function parseFetchRequest(args: Token[], byUid: boolean): FetchRequest {
  const [what, modifiers] = args;
  let items: FetchItem[];
  if (what?.kind === 'atom') {
    const macro = MACROS[what.value.toUpperCase()];
    items = macro ? macro.map(simple) : [parseItem(what.value)];
  } else if (what?.kind === 'list') {
    if (what.items.length === 0) throw new ImapSyntaxError('The FETCH list is empty');
    items = what.items.map((token) => {
      if (token.kind !== 'atom') throw new ImapSyntaxError('Expected FETCH attributes');
      return parseItem(token.value);
    });
  } else {
    throw new ImapSyntaxError('Expected FETCH attributes');
  }

  let changedSince: number | null = null;
  let vanished = false;
  if (modifiers !== undefined) {
    if (modifiers.kind !== 'list') throw new ImapSyntaxError('Expected FETCH modifiers in parentheses');
    const list = modifiers.items;
    for (let i = 0; i < list.length; i += 2) {
      const name = list[i];
      const value = list[i + 1];
      if (name?.kind === 'atom' && name.value.toUpperCase() === 'VANISHED' && !vanished) {
        vanished = true;
        i -= 1;
        continue;
      }
      if (name?.kind !== 'atom' || name.value.toUpperCase() !== 'CHANGEDSINCE') {
        throw new ImapSyntaxError('Unknown FETCH modifier');
      }
      if (value?.kind !== 'atom' || !/^\d{1,19}$/.test(value.value) || changedSince !== null) {
        throw new ImapSyntaxError('CHANGEDSINCE takes one mod-sequence value');
      }
      changedSince = Number(value.value);
    }
  }
  // RFC 7162 §3.2.6: VANISHED only with UID FETCH and CHANGEDSINCE.
  if (vanished && (!byUid || changedSince === null)) throw new ImapSyntaxError('VANISHED needs UID FETCH and CHANGEDSINCE');

  // Before duplicates go: BODY.PEEK[] BODY[] still sets \Seen.
  const setsSeen = items.some((item) => item.kind === 'section' && !item.peek);
  // UID first for UID FETCH; MODSEQ is implied by CHANGEDSINCE; each item answered once.
  if (byUid) items.unshift(simple('UID'));
  if (changedSince !== null) items.push(simple('MODSEQ'));
  const named = new Set<string>();
  items = items.filter((item) => !named.has(item.name) && named.add(item.name));

  const has = (kind: SimpleItem) => items.some((item) => item.kind === kind);
  return {
    items,
    changedSince,
    vanished,
    setsSeen,
    needsIndex:
      has('ENVELOPE') || has('BODY') || has('BODYSTRUCTURE') ||
      items.some((item) => item.kind === 'section' && !isWholeMessage(item.section)),
    sizesMessages: items.some((item) => item.kind === 'section'),
    needsSummary: has('INTERNALDATE') || has('RFC822.SIZE') || has('MODSEQ'),
    enablesCondstore: has('MODSEQ'),
  };
}
