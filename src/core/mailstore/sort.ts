import { asc, desc, type SQL, sql } from 'drizzle-orm';
import { messages } from '../../db/schema/index.js';

/** The SORT keys of RFC 5256 §3. */
export type SortKey = 'arrival' | 'cc' | 'date' | 'from' | 'size' | 'subject' | 'to';

export interface SortCriterion {
  key: SortKey;
  reverse: boolean;
}

// The sort columns hold casemapped text: compared byte by byte (code point order), whatever the database's collation.
const COLUMNS: Record<SortKey, SQL> = {
  arrival: sql`${messages.internalDate}`,
  cc: sql`${messages.sortCc} collate "C"`,
  date: sql`${messages.sortDate}`,
  from: sql`${messages.sortFrom} collate "C"`,
  size: sql`${messages.size}`,
  subject: sql`${messages.sortSubject} collate "C"`,
  to: sql`${messages.sortTo} collate "C"`,
};

/** ORDER BY for the criteria; messages that compare equal keep mailbox order (UID, so sequence number). */
export function sortOrder(criteria: readonly SortCriterion[]): SQL[] {
  return [...criteria.map(({ key, reverse }) => (reverse ? desc(COLUMNS[key]) : asc(COLUMNS[key]))), asc(messages.uid)];
}
