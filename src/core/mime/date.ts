import { withoutComments } from './headers.js';

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

// RFC 5322 §4.3 obsolete zones, in minutes east of UTC. Military letters and unknown names
// carry no reliable information, so they count as UTC (-0000), as §4.3 says.
const ZONES: Record<string, number> = {
  ut: 0, gmt: 0, utc: 0, z: 0,
  edt: -240, est: -300, cdt: -300, cst: -360, mdt: -360, mst: -420, pdt: -420, pst: -480,
};

// [day-of-week ","] day month year hour ":" minute [":" second] [zone]; lenient about the
// white space, dashes and month spellings mailers really send. Anchored, so no backtracking blow-up.
const RFC5322_DATE =
  /^(?:[a-z]+\.?\s*,?\s*)?(\d{1,2})[\s-]*([a-z]{3})[a-z]*\.?[\s-]*(\d{2,4})\s+(\d{1,2})\s*:\s*(\d{1,2})(?:\s*:\s*(\d{1,2}))?(?:\.\d+)?\s*([+-]\d{4}|[a-z]+)?/i;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

// Email is younger than 1970; a date before it, or one JavaScript cannot hold, is a broken clock.
const EARLIEST = Date.UTC(1970, 0, 1);
const LATEST = Date.UTC(10000, 0, 1);

/** The Date header as a point in time; null when it does not parse or is absurd. */
export function parseMessageDate(value: string | null): Date | null {
  if (value === null) return null;
  const text = withoutComments(value.slice(0, 256)).trim();
  const time = rfc5322Time(text) ?? (ISO_DATE.test(text) ? Date.parse(text.replace(' ', 'T')) : NaN);
  return Number.isFinite(time) && time >= EARLIEST && time < LATEST ? new Date(time) : null;
}

function rfc5322Time(text: string): number | null {
  const match = RFC5322_DATE.exec(text);
  if (!match) return null;
  const [, dayText, monthText, yearText, hourText, minuteText, secondText, zoneText] = match;
  const day = Number(dayText);
  const month = MONTHS.indexOf((monthText ?? '').toLowerCase());
  let year = Number(yearText);
  // RFC 5322 §4.3: two-digit years below 50 are 20xx, others and three-digit years count from 1900.
  if ((yearText ?? '').length === 2) year += year < 50 ? 2000 : 1900;
  else if ((yearText ?? '').length === 3) year += 1900;
  const hour = Number(hourText);
  const minute = Number(minuteText);
  const second = Number(secondText ?? 0);
  if (month < 0 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return null;
  // A leap second (:60) is still that minute.
  const utc = Date.UTC(year, month, day, hour, minute, Math.min(second, 59));
  if (new Date(utc).getUTCDate() !== day) return null; // 31 Feb and the like
  return utc - zoneOffset(zoneText) * 60_000;
}

function zoneOffset(zone: string | undefined): number {
  if (zone === undefined) return 0;
  if (zone[0] === '+' || zone[0] === '-') {
    const minutes = Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5));
    return zone[0] === '-' ? -minutes : minutes;
  }
  return ZONES[zone.toLowerCase()] ?? 0;
}
