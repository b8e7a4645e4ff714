import { LoginError } from '../core/auth/login.js';
import { DomainError, isDatabaseUnavailable } from '../core/errors.js';
import { BadCharsetError, SEARCH_CHARSETS } from './search-keys.js';

const FORBIDDEN_CODES: Record<string, string> = { privacy_required: 'PRIVACYREQUIRED', too_many_connections: 'LIMIT' };

/**
 * The one place core errors become IMAP answers (RFC 5530 response codes): what the client is
 * told, and whether it is NO (refused) rather than BAD (not understood).
 */
export function imapAnswer(error: unknown): { status: 'NO' | 'BAD'; text: string } | null {
  if (error instanceof LoginError) {
    if (error.refusal === 'invalid_credentials') return { status: 'NO', text: '[AUTHENTICATIONFAILED] Authentication failed' };
    // As Dovecot answers a temporary authentication failure: clients keep the password and retry later.
    if (error.refusal === 'locked_out') return { status: 'NO', text: `[UNAVAILABLE] ${error.message}` };
    return { status: 'NO', text: `[CONTACTADMIN] ${error.message}` };
  }
  // A charset SEARCH, SORT or THREAD cannot read is refused, not misunderstood (RFC 3501 §6.4.4).
  if (error instanceof BadCharsetError) return { status: 'NO', text: `[BADCHARSET (${SEARCH_CHARSETS.join(' ')})] ${error.message}` };
  // Not a bug to log: the database is restarting or out of reach, and the client may retry.
  if (isDatabaseUnavailable(error)) return { status: 'NO', text: '[UNAVAILABLE] The mail store is unavailable for a moment; try again later' };
  if (!(error instanceof DomainError)) return null;
  switch (error.kind) {
    case 'quota_exceeded':
      return { status: 'NO', text: `[OVERQUOTA] ${error.message}` };
    case 'not_found':
      return { status: 'NO', text: `[NONEXISTENT] ${error.message}` };
    case 'conflict':
      return { status: 'NO', text: `[${error.code === 'folder_exists' ? 'ALREADYEXISTS' : 'CANNOT'}] ${error.message}` };
    case 'forbidden':
      return { status: 'NO', text: `[${FORBIDDEN_CODES[error.code] ?? 'NOPERM'}] ${error.message}` };
    case 'invalid':
      return { status: 'NO', text: `[${error.code === 'message_too_large' ? 'LIMIT' : 'CANNOT'}] ${error.message}` };
    default:
      return { status: 'NO', text: error.message };
  }
}
