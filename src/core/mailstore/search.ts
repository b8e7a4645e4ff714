import { and, not, or, type SQL, sql } from 'drizzle-orm';
import { blobs, messages } from '../../db/schema/index.js';
import { normalizeFlags } from './flags.js';

/** A UID range; `to` null means "up to the highest UID" (IMAP's `*`). */
export interface UidRange {
  from: number;
  to: number | null;
}

type DateRelation = 'before' | 'on' | 'since';

/**
 * What IMAP SEARCH (RFC 3501 §6.4.4, RFC 7162 MODSEQ) asks of the store, as a tree. Strings
 * match as case-insensitive substrings; dates are days (YYYY-MM-DD) as IMAP compares them.
 */
export type SearchKey =
  | { all: true }
  | { uids: UidRange[] }
  | { flag: string; set: boolean }
  | { header: string; contains: string }
  | { body: string }
  | { text: string }
  | { internalDate: DateRelation; day: string }
  | { sentDate: DateRelation; day: string }
  | { larger: number }
  | { smaller: number }
  | { modseqAtLeast: number }
  | { not: SearchKey }
  | { or: [SearchKey, SearchKey] }
  | { and: SearchKey[] };

/** Case-insensitive byte-substring test that works whatever the charset: ASCII is folded. */
function bytesContain(haystack: SQL, needle: string): SQL {
  return sql`strpos(lower(encode(${haystack}, 'escape')), lower(encode(convert_to(${needle}, 'UTF8'), 'escape'))) > 0`;
}

function dateCondition(column: SQL, relation: DateRelation, day: string): SQL {
  // IMAP compares dates without time; days are taken in UTC.
  const date = sql`(${column} at time zone 'UTC')::date`;
  if (relation === 'before') return sql`${date} < ${day}::date`;
  if (relation === 'on') return sql`${date} = ${day}::date`;
  return sql`${date} >= ${day}::date`;
}

function headerCondition(name: string, contains: string): SQL {
  const field = name.toLowerCase();
  // An empty string matches every message that has the field at all (RFC 3501).
  if (contains === '') return sql`(${messages.headerFields} -> ${field}) is not null`;
  return sql`exists (select 1 from jsonb_array_elements_text(${messages.headerFields} -> ${field}) as value
    where strpos(lower(value), lower(${contains})) > 0)`;
}

/**
 * The SQL condition for a search key. Body and text search read the stored bytes (the raw
 * message, transfer encodings not decoded); every other key uses the columns parsed at delivery.
 */
export function searchCondition(key: SearchKey): SQL {
  if ('all' in key) return sql`true`;
  if ('uids' in key) {
    // n:* is n..highest in either order (RFC 3501 §9): above the highest UID it still holds that message.
    const highest = sql`(select max(m.uid) from ${messages} m
      where m.account_id = ${messages.accountId} and m.folder_id = ${messages.folderId})`;
    const ranges = key.uids.map(({ from, to }) =>
      to === null
        ? sql`${messages.uid} >= least(${from}::bigint, ${highest})`
        : sql`${messages.uid} between ${Math.min(from, to)} and ${Math.max(from, to)}`,
    );
    return ranges.length === 0 ? sql`false` : or(...ranges)!;
  }
  if ('flag' in key) {
    const [flag] = normalizeFlags([key.flag]);
    const has = sql`${flag} = any(${messages.flags})`;
    return key.set ? has : not(has);
  }
  if ('header' in key) return headerCondition(key.header, key.contains);
  if ('body' in key) {
    const bodyStart = sql`coalesce((${messages.bodyStructure} ->> 'bodyStart')::int, 0)`;
    return sql`exists (select 1 from ${blobs} where ${blobs.hash} = ${messages.blobHash}
      and ${bytesContain(sql`substring(${blobs.data} from ${bodyStart} + 1)`, key.body)})`;
  }
  if ('text' in key) {
    return sql`exists (select 1 from ${blobs} where ${blobs.hash} = ${messages.blobHash}
      and ${bytesContain(sql`${blobs.data}`, key.text)})`;
  }
  if ('internalDate' in key) return dateCondition(sql`${messages.internalDate}`, key.internalDate, key.day);
  // Without a usable Date header, the internal date stands in (as in Dovecot).
  if ('sentDate' in key) {
    return dateCondition(sql`coalesce(${messages.sentDate}, ${messages.internalDate})`, key.sentDate, key.day);
  }
  if ('larger' in key) return sql`${messages.size} > ${key.larger}`;
  if ('smaller' in key) return sql`${messages.size} < ${key.smaller}`;
  if ('modseqAtLeast' in key) return sql`${messages.modseq} >= ${key.modseqAtLeast}`;
  if ('not' in key) return not(searchCondition(key.not));
  if ('or' in key) return or(searchCondition(key.or[0]), searchCondition(key.or[1]))!;
  return key.and.length === 0 ? sql`true` : and(...key.and.map(searchCondition))!;
}
