import { InvalidError } from './errors.js';

export interface Page<T> {
  items: T[];
  /** Opaque; pass back to get the next page. Null on the last page. */
  nextCursor: string | null;
}

export interface PageRequest {
  limit: number;
  cursor?: string;
}

export function encodeCursor(position: string | number): string {
  return Buffer.from(JSON.stringify({ after: position })).toString('base64url');
}

/** Reads a cursor made by encodeCursor; anything else is `invalid_cursor`. */
export function decodeCursor<T extends string | number>(cursor: string, type: 'string' | 'number'): T {
  try {
    const { after } = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after: unknown };
    // Number positions are row ids: 1.5 or 1e400 (Infinity) would reach SQL as a bigint and fail there.
    if (typeof after === type && (type === 'string' || Number.isSafeInteger(after))) return after as T;
  } catch {
    // fall through to the one error below
  }
  throw new InvalidError('invalid_cursor', 'The cursor is not one this API handed out', { field: 'cursor' });
}

/** Fetch `limit + 1` rows, then call this: the extra row only tells whether there is a next page. */
export function toPage<Row, T>(rows: Row[], limit: number, position: (row: Row) => string | number, view: (row: Row) => T): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return {
    items: items.map(view),
    nextCursor: rows.length > limit && last !== undefined ? encodeCursor(position(last)) : null,
  };
}
