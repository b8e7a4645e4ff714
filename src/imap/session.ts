import type { LoginAccount } from '../core/auth/login.js';
import { NotFoundError } from '../core/errors.js';
import type { Change } from '../core/events/changes.js';
import type { MessageSummary } from '../core/mailstore/service.js';
import type { Services } from '../core/services.js';
import type { Gateway } from '../gateway.js';
import { type Logger, sessionLogger } from '../log.js';
import type { Connection } from '../net/connection.js';
import type { TlsCertificate } from '../net/tls.js';
import { announceExpunged } from './expunges.js';
import { FlagTable } from './flag-table.js';
import type { CommandLimits } from './parser/command-reader.js';

export type SessionState = 'not_authenticated' | 'authenticated' | 'selected' | 'logout';

export interface ImapLimits extends CommandLimits {
  maxBadCommands: number;
  maxAuthFailures: number;
  /** Sessions one mailbox may have from one client address, counted on every gateway. */
  maxConnectionsPerMailbox: number;
  /** Autologout timer; RFC 3501 asks for at least 30 minutes. */
  idleTimeoutMs: number;
  /** From connect to login, however busy the client keeps the connection. */
  loginTimeoutMs: number;
  /** From a command line's first byte to its end. */
  lineTimeoutMs: number;
  /** Whether LOGIN and AUTHENTICATE are allowed without TLS from addresses other than loopback. */
  allowPlaintextAuth: boolean;
}

export interface ImapContext {
  services: Services;
  gateway: Gateway;
  tls: TlsCertificate;
  limits: ImapLimits;
  /** The door's logger; each session logs through a child of it (sessionLogger). */
  log: Logger;
}

/** What this session knows of its selected folder: sequence numbers are positions in `uids`. */
export interface SelectedFolder {
  id: number;
  name: string;
  uidValidity: number;
  readOnly: boolean;
  uids: number[];
  flags: FlagTable;
  /** Changes above this MODSEQ have not been told to the client yet. */
  modseq: number;
  /** Messages that are \Recent for this session: claimed by it (EXAMINE: not claimed by anyone yet). */
  recent: Set<number>;
  /** SEARCHRES (RFC 5182): the UIDs the last SEARCH RETURN (SAVE) kept, named `$`. */
  saved: number[];
}

/**
 * One IMAP connection: its state, the account it logged in as, its view of the selected folder,
 * and the untagged updates owed to the client.
 */
export class ImapSession {
  state: SessionState = 'not_authenticated';
  account: LoginAccount | null = null;
  selected: SelectedFolder | null = null;
  badCommands = 0;
  authFailures = 0;
  /** ENABLEd extensions (RFC 5161), e.g. CONDSTORE. */
  readonly enabled = new Set<string>();
  /** Set by the change feed; the next sync point reads what changed. */
  folderChanged = false;
  /** While IDLE, changes are pushed at once instead of waiting for a command. */
  idling: (() => void) | null = null;
  /** Every line of this connection carries its session id, protocol and client address. */
  readonly log: Logger;
  /** Why the server ended the session (the BYE text), for the closing log line. */
  endedBecause: string | null = null;
  private release: (() => Promise<void>)[] = [];
  private loginTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly connection: Connection,
    readonly context: ImapContext,
  ) {
    this.log = sessionLogger(context.log, 'imap', connection.remoteAddress);
    this.loginTimer = setTimeout(() => this.bye('Login timeout'), context.limits.loginTimeoutMs);
  }

  get services(): Services {
    return this.context.services;
  }

  write(data: string | Buffer): void {
    this.connection.write(data);
  }

  untagged(text: string): void {
    this.connection.write(`* ${text}\r\n`);
  }

  /** Plaintext credentials are refused off loopback unless TLS is on or allowed by config. */
  get mayLogin(): boolean {
    return this.connection.secure || this.connection.loopback || this.context.limits.allowPlaintextAuth;
  }

  capabilities(): string[] {
    const base = ['IMAP4rev1', 'LITERAL+', 'SASL-IR', 'ID', 'ENABLE', 'IDLE', 'NAMESPACE', 'UNSELECT', 'CHILDREN'];
    if (this.state === 'not_authenticated') {
      return [
        ...base,
        ...(this.connection.secure ? [] : ['STARTTLS']),
        ...(this.mayLogin ? ['AUTH=PLAIN'] : ['LOGINDISABLED']),
      ];
    }
    return [...base, 'UIDPLUS', 'MOVE', 'SPECIAL-USE', 'QUOTA', 'QUOTA=RES-STORAGE', 'QUOTA=RES-MESSAGE', 'CONDSTORE', 'STATUS=SIZE', 'QRESYNC', 'ESEARCH', 'SEARCHRES', 'SORT', 'THREAD=ORDEREDSUBJECT', 'THREAD=REFERENCES', 'MULTIAPPEND', `APPENDLIMIT=${this.appendLimit}`, 'LIST-EXTENDED', 'LIST-STATUS', 'UTF8=ACCEPT', ...(this.connection.compressed ? [] : ['COMPRESS=DEFLATE'])];
  }

  /** The largest message APPEND takes (RFC 7889): the store's limit, or the literal limit if lower. */
  get appendLimit(): number {
    return Math.min(this.services.mail.maxMessageSize, this.context.limits.maxLiteralSize);
  }

  /** After a successful login: listed for support, told of account and folder changes. */
  async loggedIn(account: LoginAccount): Promise<void> {
    const { gateway, limits } = this.context;
    // Registered first: a session over the mailbox's connection limit never becomes authenticated.
    this.release.push(
      await gateway.registerSession(
        { accountId: account.accountId, protocol: 'imap', remoteIp: this.connection.remoteAddress, tls: this.connection.secure },
        limits.maxConnectionsPerMailbox,
      ),
    );
    this.account = account;
    this.state = 'authenticated';
    clearTimeout(this.loginTimer);
    this.release.unshift(
      await gateway.feed.subscribe(
        (change) => this.onChange(change),
        // Changes may have been missed while the feed was away: the folder and the account alike.
        () => {
          this.markChanged();
          void this.recheckAccount();
        },
      ),
    );
  }

  private onChange(change: Change): void {
    if (change.accountId !== this.account?.accountId) return;
    if (change.kind === 'messages') {
      if (this.selected && change.folderId === this.selected.id && change.modseq > this.selected.modseq) this.markChanged();
    } else if (change.kind === 'folders') {
      // The selected folder may be the one renamed or deleted: the next sync finds out.
      if (this.selected) this.markChanged();
    } else if (change.kind === 'account') {
      if (change.reason === 'sessions') this.bye('Session ended by the administrator');
      else void this.recheckAccount();
    }
  }

  private markChanged(): void {
    this.folderChanged = true;
    this.idling?.();
  }

  /** A password change, suspension, IMAP switched off or deletion ends the session (RFC 3501 BYE). */
  private async recheckAccount(): Promise<void> {
    const account = this.account;
    if (!account) return;
    const current = await this.services.login.current(account.accountId).catch(() => undefined);
    if (current === undefined) return;
    if (current === null) this.bye('The mailbox was deleted');
    else if (current.status !== 'active') this.bye('The mailbox is suspended');
    else if (!current.imapEnabled) this.bye('IMAP is disabled for this mailbox');
    else if (current.passwordVersion !== account.passwordVersion) this.bye('The password was changed; log in again');
  }

  bye(text: string): void {
    if (this.state === 'logout') return;
    this.state = 'logout';
    this.endedBecause = text;
    this.untagged(`BYE ${text}`);
    this.connection.close();
  }

  /** The client's view of a folder as it stands now; `folder` is its row, read just before. */
  async openFolder(
    folder: { id: number; name: string; uidValidity: number; uidNext: number; highestModseq: number },
    readOnly: boolean,
  ): Promise<{ messages: MessageSummary[]; highestModseq: number; uidNext: number }> {
    const messages = await this.services.mail.list(this.account!.accountId, folder.id);
    // Mail that arrived between reading the row and the list is in the list: count it in.
    const highestModseq = messages.reduce((highest, m) => Math.max(highest, m.modseq), folder.highestModseq);
    const uidNext = Math.max(folder.uidNext, (messages.at(-1)?.uid ?? 0) + 1);
    const selected: SelectedFolder = {
      id: folder.id,
      name: folder.name,
      uidValidity: folder.uidValidity,
      readOnly,
      uids: messages.map((m) => m.uid),
      flags: new FlagTable(messages),
      modseq: highestModseq,
      recent: new Set(),
      saved: [],
    };
    await this.claimRecent(selected, messages);
    this.selected = selected;
    this.state = 'selected';
    this.folderChanged = false;
    return { messages, highestModseq, uidNext };
  }

  /**
   * Tells the client what changed in the selected folder since it last heard (RFC 3501 §5.2):
   * new messages (EXISTS), flag changes (FETCH) and, where allowed, expunges (EXPUNGE or VANISHED, which
   * renumber; never during FETCH, STORE or SEARCH by sequence number, §7.4.1).
   */
  async sync(options: { expunges: boolean }): Promise<void> {
    const selected = this.selected;
    if (!selected || !this.folderChanged) return;
    this.folderChanged = false;
    const known = new Set(selected.uids);
    let changes: Awaited<ReturnType<Services['mail']['changesSince']>>;
    let added: MessageSummary[];
    let claimed: number;
    try {
      changes = await this.services.mail.changesSince(this.account!.accountId, selected.id, selected.modseq);
      added = changes.changed.filter((m) => !known.has(m.uid) && m.uid > (selected.uids.at(-1) ?? 0));
      claimed = await this.claimRecent(selected, added);
    } catch (error) {
      // Another session deleted the folder this one has open; there is no view left to keep (as Dovecot).
      if (error instanceof NotFoundError) return this.bye('The selected folder was deleted');
      // Still owed: the next sync point tries again (the database may be back by then).
      this.folderChanged = true;
      throw error;
    }
    let deferred = false;
    if (options.expunges) {
      announceExpunged(this, changes.expunged);
    } else if (changes.expunged.some((uid) => known.has(uid))) {
      deferred = true;
    }
    for (const message of changes.changed) {
      if (!known.has(message.uid)) continue;
      const before = selected.flags.get(message.uid);
      selected.flags.set(message.uid, message.flags);
      if (before?.join(' ') !== message.flags.join(' ')) {
        const seq = selected.uids.indexOf(message.uid) + 1;
        const modseq = this.enabled.has('CONDSTORE') ? ` MODSEQ (${message.modseq})` : '';
        if (seq > 0) this.untagged(`${seq} FETCH (${this.flagsItem(message.uid)} UID ${message.uid}${modseq})`);
      }
    }
    if (added.length > 0) {
      for (const message of added) {
        selected.uids.push(message.uid);
        selected.flags.set(message.uid, message.flags);
      }
      this.untagged(`${selected.uids.length} EXISTS`);
      // Only a change is told (as Dovecot): another session may have claimed the new mail first.
      if (claimed > 0) this.untagged(`${selected.recent.size} RECENT`);
    }
    // Expunges held back stay owed; the MODSEQ moves only past what was told.
    if (deferred) this.folderChanged = true;
    else selected.modseq = Math.max(selected.modseq, changes.highestModseq);
  }

  /** Takes \Recent for `messages` (ascending, newly in the view) where no other session has; answers how many. */
  private async claimRecent(selected: SelectedFolder, messages: readonly { uid: number }[]): Promise<number> {
    const last = messages.at(-1);
    if (last === undefined) return 0;
    const { from, to } = await this.services.mail.folders.claimRecent(this.account!.accountId, selected.id, last.uid + 1, selected.readOnly);
    const recent = messages.filter(({ uid }) => uid >= from && uid < to);
    for (const { uid } of recent) selected.recent.add(uid);
    return recent.length;
  }

  flagsItem(uid: number): string {
    const flags = [...(this.selected!.flags.get(uid) ?? [])];
    if (this.selected!.recent.has(uid)) flags.push('\\Recent');
    return `FLAGS (${flags.join(' ')})`;
  }

  unselect(): void {
    this.selected = null;
    this.folderChanged = false;
    if (this.state === 'selected') this.state = 'authenticated';
  }

  async close(): Promise<void> {
    clearTimeout(this.loginTimer);
    for (const undo of this.release) await undo().catch(() => {});
    this.release = [];
  }
}
