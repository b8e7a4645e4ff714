import { InvalidError } from '../errors.js';

/** RFC 3501 system flags, in their canonical spelling. \Recent belongs to sessions, not the store. */
export const SYSTEM_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'] as const;

const CANONICAL = new Map(SYSTEM_FLAGS.map((flag) => [flag.toLowerCase(), flag]));
// RFC 3501 atom characters, without the list and quoting specials.
const KEYWORD = /^[^\u0000-\u0020\u007f-\uffff(){%*"\\\]]+$/;

/**
 * System flags are matched case-insensitively and stored in one spelling; keywords as given.
 * Sorted and deduplicated, so equal sets compare equal in SQL.
 */
export function normalizeFlags(flags: readonly string[]): string[] {
  const normalized = flags.map((flag) => {
    if (flag.startsWith('\\')) {
      const system = CANONICAL.get(flag.toLowerCase());
      if (!system) throw new InvalidError('invalid_flag', `${flag} is not a flag that can be stored`, { flag });
      return system;
    }
    if (!KEYWORD.test(flag) || flag.length > 100) {
      throw new InvalidError('invalid_flag', `'${flag}' is not a valid keyword`, { flag });
    }
    return flag;
  });
  return [...new Set(normalized)].sort();
}
