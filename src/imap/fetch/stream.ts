import { DomainError } from '../../core/errors.js';
import type { MessageSummary } from '../../core/mailstore/service.js';
import type { MessageIndex } from '../../core/mime/types.js';
import type { ImapSession, SelectedFolder } from '../session.js';
import type { FetchItem, FetchRequest } from './attributes.js';
import { bodyStructure, envelope, internalDate } from './render.js';
import { filterHeaderFields, isWholeMessage, locateSection, type SectionRange } from './section.js';

/** UIDs whose index (and \Seen change) is handled at once; message bytes are read per message. */
const BATCH = 200;
/** Small responses are gathered up to this many bytes before being handed to the socket. */
const FLUSH_BYTES = 64 * 1024;
/** Message reads in flight while earlier responses are written, and the bytes they may hold. */
const READ_AHEAD = 4;
const READ_AHEAD_BYTES = 2 * 1024 * 1024;
/** Postgres substring() takes an int4 length: "to the end" of a message. */
const TO_THE_END = 2 ** 31 - 1;

export interface FetchOutcome {
  /** Messages skipped because another session expunged them meanwhile (RFC 5530 EXPUNGEISSUED). */
  expungeIssued: boolean;
}

type Piece = string | Buffer;

/** A message that vanished between the session's view and the read: it is skipped. */
class Vanished extends Error {}

/**
 * Answers FETCH for `uids` (ascending, all in the session's view) in order, message by
 * message: indexes are read BATCH UIDs at a time, a message's bytes only when an item needs
 * them and only the ranges it needs, and every response goes out through writeAll, so a client
 * that reads slowly holds the loop back instead of making the server buffer its mailbox. While
 * one response is written the next few are read.
 */
export async function streamFetch(session: ImapSession, uids: number[], request: FetchRequest): Promise<FetchOutcome> {
  const selected = session.selected!;
  const accountId = session.account!.accountId;
  const mail = session.services.mail;
  const outcome: FetchOutcome = { expungeIssued: false };

  // Date, size and MODSEQ are not in the session's view. CHANGEDSINCE reads only what changed.
  let summaries: Map<number, MessageSummary> | null = null;
  if (request.changedSince !== null) {
    const changes = await mail.changesSince(accountId, selected.id, request.changedSince);
    summaries = new Map(changes.changed.map((m) => [m.uid, m]));
    uids = uids.filter((uid) => summaries!.has(uid));
  } else if (request.needsSummary) {
    summaries = new Map((await mail.list(accountId, selected.id)).map((m) => [m.uid, m]));
  }

  const condstore = session.enabled.has('CONDSTORE');
  const output = new Output(session);
  for (let from = 0; from < uids.length && !session.connection.closed; from += BATCH) {
    const batch = uids.slice(from, from + BATCH);
    const wantIndex = request.needsIndex || (request.sizesMessages && uids.length > 1);
    const indexes = wantIndex ? await mail.indexes(accountId, selected.id, batch) : null;
    const present = batch.filter((uid) => (indexes === null || indexes.has(uid)) && (summaries === null || summaries.has(uid)));
    if (present.length < batch.length) outcome.expungeIssued = true;

    // FLAGS tells what the store holds when it was read anyway; the view then knows the client
    // has heard it, so the sync after the command does not repeat it. Without FLAGS in the
    // answer the view stays as it is, and the sync tells the change.
    if (summaries && request.items.some((item) => item.kind === 'FLAGS')) {
      for (const uid of present) selected.flags.set(uid, summaries.get(uid)!.flags);
    }
    const seenNow = new Map<number, number>(); // uid -> MODSEQ of the \Seen change
    if (request.setsSeen && !selected.readOnly && present.length > 0) {
      const { changed } = await mail.changeFlags(accountId, selected.id, present, 'add', ['\\Seen']);
      for (const m of changed) {
        selected.flags.set(m.uid, m.flags);
        seenNow.set(m.uid, m.modseq);
      }
    }

    const context: MessageContext = { session, selected, request, indexes, summaries, seenNow, condstore };
    // Read ahead while writing: a few messages at once when they are small, one when they are
    // large or of unknown size, so at most READ_AHEAD_BYTES (or one message) wait in memory.
    const queue: { size: number; response: Promise<Piece[] | null> }[] = [];
    let queued = 0;
    let next = 0;
    const readAhead = () => {
      while (next < present.length && queue.length < READ_AHEAD) {
        const uid = present[next]!;
        const size = estimateSize(request, indexes?.get(uid) ?? null);
        if (queue.length > 0 && queued + size > READ_AHEAD_BYTES) break;
        const response = respond(context, uid);
        // Awaited in its turn; this only keeps a failure meanwhile from counting as unhandled.
        response.catch(() => {});
        queue.push({ size, response });
        queued += size;
        next++;
      }
    };
    readAhead();
    while (queue.length > 0 && !session.connection.closed) {
      const head = queue[0]!;
      const pieces = await head.response;
      queue.shift();
      readAhead();
      if (pieces === null) outcome.expungeIssued = true;
      else await output.add(pieces);
      queued -= head.size;
    }
    await output.flush();
  }
  await output.flush();
  return outcome;
}

interface MessageContext {
  session: ImapSession;
  selected: SelectedFolder;
  request: FetchRequest;
  indexes: Map<number, MessageIndex> | null;
  summaries: Map<number, MessageSummary> | null;
  seenNow: Map<number, number>;
  condstore: boolean;
}

/** The untagged FETCH response for one message, or null when it has been expunged meanwhile. */
async function respond(context: MessageContext, uid: number): Promise<Piece[] | null> {
  const { session, selected, request, indexes, summaries, seenNow, condstore } = context;
  const index = indexes?.get(uid) ?? null;
  const summary = summaries?.get(uid) ?? null;
  const modseq = seenNow.get(uid) ?? summary?.modseq ?? null;
  const bytes = new MessageBytes(session, selected.id, uid, request.items);
  const pieces: Piece[] = [`* ${sequenceNumber(selected.uids, uid)} FETCH (`];
  const names = new Set<string>();
  const add = (name: string, value: Piece | Piece[]) => {
    pieces.push(`${names.size > 0 ? ' ' : ''}${name} `, ...(Array.isArray(value) ? value : [value]));
    names.add(name);
  };
  try {
    for (const item of request.items) {
      switch (item.kind) {
        case 'UID':
          add('UID', String(uid));
          break;
        case 'FLAGS':
          add('FLAGS', session.flagsItem(uid).slice('FLAGS '.length));
          break;
        case 'INTERNALDATE':
          add('INTERNALDATE', internalDate(summary!.internalDate));
          break;
        case 'RFC822.SIZE':
          add('RFC822.SIZE', String(summary!.size));
          break;
        case 'MODSEQ':
          add('MODSEQ', `(${modseq})`);
          break;
        case 'ENVELOPE':
          add('ENVELOPE', envelope(index!.envelope));
          break;
        case 'BODY':
          add('BODY', bodyStructure(index!.structure, false));
          break;
        case 'BODYSTRUCTURE':
          add('BODYSTRUCTURE', bodyStructure(index!.structure, true));
          break;
        case 'section':
          add(item.name, literal(await bytes.section(item, index)));
          break;
      }
    }
  } catch (error) {
    if (error instanceof Vanished) return null;
    throw error;
  }
  // RFC 3501 §6.4.5: flags changed by the fetch are told with it; RFC 7162 §3.2: with CONDSTORE
  // enabled, a FETCH that set \Seen also tells UID and the new MODSEQ.
  if (seenNow.has(uid)) {
    if (!names.has('FLAGS')) add('FLAGS', session.flagsItem(uid).slice('FLAGS '.length));
    if (condstore && !names.has('UID')) add('UID', String(uid));
    if (condstore && !names.has('MODSEQ')) add('MODSEQ', `(${modseq})`);
  }
  pieces.push(')\r\n');
  return pieces;
}

/** Position of `uid` in the view (UIDs ascend), as a sequence number. */
function sequenceNumber(uids: readonly number[], uid: number): number {
  let low = 0;
  let high = uids.length - 1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    const value = uids[middle]!;
    if (value === uid) return middle + 1;
    if (value < uid) low = middle + 1;
    else high = middle - 1;
  }
  throw new Error(`UID ${uid} is not in the session's view`);
}

/**
 * The message bytes a response will carry, from the index (the root part ends where the message
 * does). Without one it counts as the whole read-ahead budget, so it is read on its own.
 */
function estimateSize(request: FetchRequest, index: MessageIndex | null): number {
  let size = 0;
  for (const item of request.items) {
    if (item.kind !== 'section') continue;
    if (index === null) return READ_AHEAD_BYTES;
    const where = isWholeMessage(item.section) ? null : locateSection(index.structure, item.section);
    if (where === null) size += index.structure.end;
    else if (where.kind !== 'empty') size += (where.end ?? index.structure.end) - where.start;
  }
  return size;
}

/** A literal for message data; the empty string as "". IMAP literals carry no NUL (RFC 3501 §4.3). */
function literal(data: Buffer): Piece[] {
  if (data.length === 0) return ['""'];
  let bytes = data;
  if (bytes.includes(0)) {
    // As Dovecot does: NUL becomes 0x80, so the octet count and every offset stay the same.
    bytes = Buffer.from(bytes);
    for (let i = bytes.indexOf(0); i !== -1; i = bytes.indexOf(0, i + 1)) bytes[i] = 0x80;
  }
  return [`{${bytes.length}}\r\n`, bytes];
}

/**
 * The bytes of one message as its items need them: the whole message read once when an item
 * wants all of it, otherwise one ranged read per section (only those bytes leave the database).
 */
class MessageBytes {
  private whole: Promise<Buffer> | null = null;

  constructor(
    private readonly session: ImapSession,
    private readonly folderId: number,
    private readonly uid: number,
    items: readonly FetchItem[],
  ) {
    if (items.some((item) => item.kind === 'section' && isWholeMessage(item.section) && item.partial === null)) {
      this.whole = this.read();
      this.whole.catch(() => {});
    }
  }

  private async read(range?: { start: number; length: number }): Promise<Buffer> {
    try {
      return await this.session.services.mail.read(this.session.account!.accountId, this.folderId, this.uid, range);
    } catch (error) {
      if (error instanceof DomainError && error.code === 'message_not_found') throw new Vanished();
      throw error;
    }
  }

  private async range(start: number, end: number | null): Promise<Buffer> {
    // Offsets past what substring() takes are past any message too.
    if ((end !== null && end <= start) || start >= TO_THE_END) return Buffer.alloc(0);
    if (this.whole) return (await this.whole).subarray(start, end ?? undefined);
    return this.read({ start, length: Math.min(TO_THE_END, end === null ? TO_THE_END : end - start) });
  }

  async section(item: Extract<FetchItem, { kind: 'section' }>, index: MessageIndex | null): Promise<Buffer> {
    const where: SectionRange = isWholeMessage(item.section)
      ? { kind: 'bytes', start: 0, end: null }
      : locateSection(index!.structure, item.section);
    const partial = item.partial;
    switch (where.kind) {
      case 'empty':
        return Buffer.alloc(0);
      case 'fields': {
        const filtered = filterHeaderFields(await this.range(where.start, where.end), where.names, where.exclude);
        if (!partial) return filtered;
        return filtered.subarray(partial.start, partial.length === null ? undefined : partial.start + partial.length);
      }
      case 'bytes': {
        if (!partial) return this.range(where.start, where.end);
        const start = where.start + partial.start;
        const end = partial.length === null ? where.end : Math.min(where.end ?? Infinity, start + partial.length);
        return this.range(start, end === Infinity ? null : end);
      }
    }
  }
}

/** Responses gathered into a few large writes; writeAll waits whenever the client falls behind. */
class Output {
  private pending: Buffer[] = [];
  private size = 0;

  constructor(private readonly session: ImapSession) {}

  async add(pieces: Piece[]): Promise<void> {
    let text = '';
    for (const piece of pieces) {
      if (typeof piece === 'string') {
        text += piece;
        continue;
      }
      if (text) this.push(Buffer.from(text, 'utf8'));
      text = '';
      this.push(piece);
    }
    if (text) this.push(Buffer.from(text, 'utf8'));
    if (this.size >= FLUSH_BYTES) await this.flush();
  }

  private push(buffer: Buffer): void {
    this.pending.push(buffer);
    this.size += buffer.length;
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const pieces = this.pending;
    this.session.services.metrics.bytesSent.inc({ protocol: 'imap' }, this.size);
    this.pending = [];
    this.size = 0;
    // Small pieces are joined so the socket sees a few writes, large ones go as they are.
    await this.session.connection.writeAll(coalesce(pieces));
  }
}

function* coalesce(pieces: Buffer[]): Generator<Buffer> {
  let run: Buffer[] = [];
  let runSize = 0;
  for (const piece of pieces) {
    if (piece.length >= 16 * 1024) {
      if (run.length > 0) yield Buffer.concat(run, runSize);
      run = [];
      runSize = 0;
      yield piece;
      continue;
    }
    run.push(piece);
    runSize += piece.length;
  }
  if (run.length > 0) yield Buffer.concat(run, runSize);
}
