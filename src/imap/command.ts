import type { Token } from './parser/tokens.js';
import type { ImapSession, SessionState } from './session.js';

export interface CommandRun {
  tag: string;
  /** Given as UID FETCH, UID STORE, …: numbers are UIDs, and answers carry UID. */
  uid: boolean;
}

/** One IMAP command (STYLE.md: one module each, checked and dispatched centrally). */
export interface ImapCommand {
  name: string;
  states: readonly SessionState[];
  /** Whether `UID <name>` exists (RFC 3501 §6.4.8, UIDPLUS, MOVE). */
  uidVariant?: boolean;
  /**
   * Whether untagged EXPUNGE may be sent when it completes. False for FETCH, STORE and SEARCH
   * by sequence number (RFC 3501 §7.4.1); their UID forms allow it.
   */
  expungesAfter?: boolean;
  /**
   * Runs the command; the answer is the tagged OK text (a response code may lead it), or null
   * when the command has answered with its tag itself (STARTTLS, IDLE).
   */
  run(session: ImapSession, args: Token[], run: CommandRun): Promise<string | null> | string | null;
}

export const ANY: readonly SessionState[] = ['not_authenticated', 'authenticated', 'selected'];
export const AUTHENTICATED: readonly SessionState[] = ['authenticated', 'selected'];
export const SELECTED: readonly SessionState[] = ['selected'];
export const NOT_AUTHENTICATED: readonly SessionState[] = ['not_authenticated'];
