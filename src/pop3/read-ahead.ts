import type { MailStore } from '../core/mailstore/service.js';
import type { ListedMessage } from './session.js';

/** One read-ahead query fetches at most this much; a session holds at most two such batches. */
export const READ_AHEAD_BYTES = 1024 * 1024;
const READ_AHEAD_MESSAGES = 64;

/** The messages numbered from..to-1 (from 0), fetched (or being fetched) in one query. */
interface Batch {
  from: number;
  to: number;
  /** Emptied as the messages are handed out. */
  bytes: Promise<Map<number, Buffer>>;
}

/**
 * The bytes of the messages a session hands out. A client downloading messages one after the
 * other (RETR n, RETR n+1, ...) would otherwise wait for one database round trip per message;
 * once it does, the following messages are fetched in batches of up to READ_AHEAD_BYTES, one
 * query each, the next batch while the client downloads the current one. A message larger than
 * a batch is read alone, when asked for.
 *
 * Message bytes never change, but a message can be expunged (by IMAP, the API) during the
 * session: `forget` drops everything fetched ahead, so asking for that message afterwards reads
 * the database and answers as it did without read-ahead.
 */
export class ReadAhead {
  private batches: Batch[] = [];
  /** The message number (from 0) last retrieved, to tell a sequential download. */
  private last = -1;

  constructor(
    private readonly mail: Pick<MailStore, 'read' | 'readMany'>,
    private readonly accountId: number,
    private readonly folderId: number,
    private readonly messages: readonly ListedMessage[],
  ) {}

  /** RETR: the message's bytes; a sequential download fetches the next ones along. */
  async retrieve(index: number): Promise<Buffer> {
    const sequential = index === this.last + 1;
    this.last = index;
    let batch = this.batchOf(index);
    if (!batch && sequential) {
      batch = this.fetch(index);
      this.batches = [batch];
    }
    const uid = this.messages[index]!.uid;
    let raw: Buffer | undefined;
    if (batch) {
      const bytes = await batch.bytes;
      raw = bytes.get(uid);
      bytes.delete(uid);
      this.moveOn(index);
    }
    // Not fetched ahead, or gone from the folder: the single read answers as RETR always has.
    return raw ?? this.mail.read(this.accountId, this.folderId, uid);
  }

  /** TOP: the message's bytes, from what was fetched ahead when it is there; nothing more. */
  async peek(index: number): Promise<Buffer> {
    const uid = this.messages[index]!.uid;
    const raw = (await this.batchOf(index)?.bytes)?.get(uid);
    return raw ?? this.mail.read(this.accountId, this.folderId, uid);
  }

  /** The folder changed: what was fetched ahead may include messages no longer there. */
  forget(): void {
    this.batches = [];
  }

  private batchOf(index: number): Batch | undefined {
    return this.batches.find((batch) => batch.from <= index && index < batch.to);
  }

  /** Past message `index`: drops the batches behind it and starts fetching the next one. */
  private moveOn(index: number): void {
    this.batches = this.batches.filter((batch) => batch.to > index + 1);
    const end = this.batches.at(-1)?.to ?? index + 1;
    if (this.batches.length < 2 && end < this.messages.length) this.batches.push(this.fetch(end));
  }

  /**
   * A query for the messages from `from` on, within the bounds. Deleted ones are left out, and
   * so is one larger than a batch: it is read alone when asked for.
   */
  private fetch(from: number): Batch {
    const uids: number[] = [];
    let bytes = 0;
    let to = from;
    for (; to < this.messages.length && uids.length < READ_AHEAD_MESSAGES; to++) {
      const message = this.messages[to]!;
      if (message.deleted || message.size > READ_AHEAD_BYTES) continue;
      if (bytes + message.size > READ_AHEAD_BYTES) break;
      uids.push(message.uid);
      bytes += message.size;
    }
    // A failed query leaves the messages to their single reads, which report the failure.
    const fetched = this.mail.readMany(this.accountId, this.folderId, uids).catch(() => new Map<number, Buffer>());
    return { from, to, bytes: fetched };
  }
}
