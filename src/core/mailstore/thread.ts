/** The THREAD algorithms of RFC 5256 §3, over the sort columns the store keeps per message. */

export type ThreadAlgorithm = 'orderedsubject' | 'references';

/** One message of a thread and its replies; `uid` null is a dummy standing for a missing parent. */
export interface ThreadNode {
  uid: number | null;
  children: ThreadNode[];
}

/** What threading reads of a message (columns filled at delivery). */
export interface ThreadMessage {
  uid: number;
  /** The sent date (RFC 5256 §2.2) in milliseconds. */
  date: number;
  /** The casemapped base subject. */
  subject: string;
  replyOrForward: boolean;
  messageId: string | null;
  references: string[];
}

/** Sent date, then mailbox order (RFC 5256 §2.2). */
function byDate(a: ThreadMessage, b: ThreadMessage): number {
  return a.date - b.date || a.uid - b.uid;
}

/**
 * ORDEREDSUBJECT: `sorted` by base subject, then sent date. Each run of one subject is a thread
 * whose first message has all the others as children; threads go by their first message's date.
 */
export function orderedSubjectThreads(sorted: readonly ThreadMessage[]): ThreadNode[] {
  const threads: { first: ThreadMessage; node: ThreadNode }[] = [];
  let current: { first: ThreadMessage; node: ThreadNode } | undefined;
  for (const message of sorted) {
    if (current && current.first.subject === message.subject) {
      current.node.children.push({ uid: message.uid, children: [] });
      continue;
    }
    current = { first: message, node: { uid: message.uid, children: [] } };
    threads.push(current);
  }
  return threads.sort((a, b) => byDate(a.first, b.first)).map((thread) => thread.node);
}

interface Container extends ThreadNode {
  message: ThreadMessage | null;
  parent: Container | null;
  children: Container[];
}

const container = (message: ThreadMessage | null): Container => ({ uid: message?.uid ?? null, message, parent: null, children: [] });

/** Whether making `parent` the parent of `child` would close a loop: `parent` is `child` or below it. */
function wouldLoop(parent: Container, child: Container): boolean {
  for (let node: Container | null = parent; node !== null; node = node.parent) if (node === child) return true;
  return false;
}

function link(parent: Container, child: Container): void {
  child.parent = parent;
  parent.children.push(child);
}

function unlink(child: Container): void {
  const parent = child.parent!;
  parent.children.splice(parent.children.indexOf(child), 1);
  child.parent = null;
}

/** The message a container sorts and is named by: itself, or a dummy's first child's (children sorted). */
function representative(node: Container): ThreadMessage {
  let current = node;
  while (current.message === null) current = current.children[0]!;
  return current.message;
}

const byRepresentative = (a: Container, b: Container) => byDate(representative(a), representative(b));

/** Every container below `roots`, parents before children; iterative, as a reply chain may be very long. */
function descendants(roots: readonly Container[]): Container[] {
  const out: Container[] = [];
  const stack = [...roots];
  while (stack.length > 0) {
    const node = stack.pop()!;
    out.push(node);
    // Not push(...children): a folder of one subject may give a dummy 100,000 of them, past the argument limit.
    for (const child of node.children) stack.push(child);
  }
  return out;
}

/** Step (3): dummies go; their children take their place, at the top only when there is one. */
function prune(roots: Container[]): Container[] {
  // Children before parents, so a dummy's children are already pruned when it is.
  for (const node of descendants(roots).reverse()) node.children = spliceDummies(node.children, false, node);
  return spliceDummies(roots, true, null);
}

function spliceDummies(list: Container[], top: boolean, parent: Container | null): Container[] {
  const out: Container[] = [];
  for (const node of list) {
    if (node.message !== null) out.push(node);
    else if (node.children.length === 1 || (!top && node.children.length > 0)) {
      for (const child of node.children) {
        child.parent = parent;
        out.push(child);
      }
    } else if (node.children.length > 0) out.push(node);
  }
  return out;
}

/**
 * REFERENCES (RFC 5256 §3): threads from Message-ID and References (or In-Reply-To), missing
 * parents kept as dummies where they join several replies, then threads of one base subject merged.
 * `messages` in mailbox order.
 */
export function referenceThreads(messages: readonly ThreadMessage[]): ThreadNode[] {
  // (1) Link every message below its references; a missing or repeated Message-ID gets a unique one.
  const byId = new Map<string, Container>();
  const all: Container[] = [];
  for (const message of messages) {
    let own = message.messageId === null ? undefined : byId.get(message.messageId);
    if (own === undefined || own.message !== null) {
      own = container(message);
      if (message.messageId !== null && !byId.has(message.messageId)) byId.set(message.messageId, own);
      all.push(own);
    } else {
      own.message = message;
      own.uid = message.uid;
    }
    let previous: Container | null = null;
    for (const id of message.references) {
      let referenced = byId.get(id);
      if (referenced === undefined) {
        referenced = container(null);
        byId.set(id, referenced);
        all.push(referenced);
      }
      // (1A) An existing link stays: a References field may have been cut short.
      if (previous !== null && referenced.parent === null && !wouldLoop(previous, referenced)) link(previous, referenced);
      previous = referenced;
    }
    // (1B) The last reference is the parent, whatever an earlier message's References said.
    if (own.parent !== null) unlink(own);
    if (previous !== null && !wouldLoop(previous, own)) link(previous, own);
  }
  // (2), (3) The parentless are the roots; then the dummies go.
  let roots = prune(all.filter((node) => node.parent === null));
  // (4) Roots by sent date, a dummy by its first child's.
  for (const node of roots) if (node.message === null) node.children.sort(byRepresentative);
  roots.sort(byRepresentative);
  roots = mergeBySubject(roots);
  // (6) Every set of siblings by sent date, the deepest first.
  for (const node of descendants(roots).reverse()) node.children.sort(byRepresentative);
  return roots.sort(byRepresentative);
}

/** Step (5): top-level threads of one base subject are gathered under one of them or a new dummy. */
function mergeBySubject(roots: Container[]): Container[] {
  const subjectOf = (node: Container) => representative(node).subject;
  const table = new Map<string, Container>();
  for (const node of roots) {
    const subject = subjectOf(node);
    if (subject === '') continue;
    const held = table.get(subject);
    if (held === undefined) table.set(subject, node);
    else if (held.message !== null && (node.message === null || (held.message.replyOrForward && !node.message.replyOrForward))) {
      table.set(subject, node);
    }
  }
  const out = new Set(roots);
  for (const node of roots) {
    const subject = subjectOf(node);
    if (subject === '') continue;
    const held = table.get(subject)!;
    if (held === node) continue;
    out.delete(node);
    if (held.message === null && node.message === null) {
      for (const child of node.children) link(held, child);
    } else if (held.message === null || (node.message!.replyOrForward && !held.message.replyOrForward)) {
      link(held, node);
    } else {
      // The top level is sorted again afterwards: where the dummy goes in the set does not matter.
      const dummy = container(null);
      out.delete(held);
      out.add(dummy);
      link(dummy, held);
      link(dummy, node);
      table.set(subject, dummy);
    }
  }
  return [...out];
}
