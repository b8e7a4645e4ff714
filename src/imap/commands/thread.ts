import type { ThreadAlgorithm, ThreadNode } from '../../core/mailstore/thread.js';
import { atom } from '../arguments.js';
import { type ImapCommand, SELECTED } from '../command.js';
import { ImapSyntaxError } from '../parser/tokens.js';
import { checkCharset, parseSearchKeys, positionOf, viewKey } from '../search-keys.js';

const ALGORITHMS = new Map<string, ThreadAlgorithm>([
  ['ORDEREDSUBJECT', 'orderedsubject'],
  ['REFERENCES', 'references'],
]);

/**
 * thread-list per thread (RFC 5256 §5): a run of only children in one list, `(3 6 (4 23)(44 7 96))`,
 * a dummy as a list of its children alone, `((3)(5))`. With a stack, as a reply chain may be very deep.
 */
function render(roots: readonly ThreadNode[], number: (uid: number) => number): string {
  const out: string[] = [];
  const stack: (string | ThreadNode)[] = [];
  const push = (nodes: readonly ThreadNode[]) => {
    for (let i = nodes.length - 1; i >= 0; i--) stack.push(')', nodes[i]!, '(');
  };
  push(roots);
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (typeof item === 'string') {
      out.push(item);
      continue;
    }
    let numbered = false;
    for (let node: ThreadNode | undefined = item; node !== undefined; ) {
      if (node.uid !== null) {
        out.push(`${numbered ? ' ' : ''}${number(node.uid)}`);
        numbered = true;
      }
      if (node.children.length === 1) {
        node = node.children[0];
        continue;
      }
      if (node.children.length > 1) {
        if (numbered) out.push(' ');
        push(node.children);
      }
      node = undefined;
    }
  }
  return out.join('');
}

/**
 * THREAD and UID THREAD (RFC 5256): an algorithm, a charset and SEARCH keys; the matching messages
 * this session knows, as threads, by sequence number or UID.
 */
export const thread: ImapCommand = {
  name: 'THREAD',
  states: SELECTED,
  uidVariant: true,
  expungesAfter: false,
  async run(session, args, { uid }) {
    const selected = session.selected!;
    const name = atom(args[0], 'a threading algorithm').toUpperCase();
    const algorithm = ALGORITHMS.get(name);
    if (algorithm === undefined) throw new ImapSyntaxError(`Unknown threading algorithm ${name.slice(0, 40)}; REFERENCES and ORDEREDSUBJECT are known`);
    checkCharset(args[1]);
    const parsed = parseSearchKeys(args.slice(2), selected);
    // Using MODSEQ turns CONDSTORE on for the session (RFC 7162 §3.1).
    if (parsed.modseq) session.enabled.add('CONDSTORE');
    const threads = await session.services.mail.thread(session.account!.accountId, selected.id, algorithm, {
      and: [parsed.key, viewKey(selected)],
    });
    const text = render(threads, uid ? (n) => n : (n) => positionOf(selected.uids, n) + 1);
    session.untagged(text === '' ? 'THREAD' : `THREAD ${text}`);
    return `${uid ? 'UID THREAD' : 'THREAD'} completed`;
  },
};
