import { ImapSyntaxError } from './parser/tokens.js';
import type { SelectedFolder } from './session.js';

const SET = /^(\d+|\*)(:(\d+|\*))?(,(\d+|\*)(:(\d+|\*))?)*$/;

/** A sequence set (RFC 3501 §9 sequence-set) as ranges; `*` is null. */
export function parseSequenceSet(value: string): { from: number | null; to: number | null }[] {
  if (!SET.test(value)) throw new ImapSyntaxError(`'${value.slice(0, 50)}' is not a sequence set`);
  return value.split(',').map((item) => {
    const [from = '', to = from] = item.split(':');
    const parse = (n: string) => {
      if (n === '*') return null;
      const number = Number(n);
      if (number === 0 || number > 4294967295) throw new ImapSyntaxError('Sequence numbers and UIDs start at 1');
      return number;
    };
    return { from: parse(from), to: parse(to) };
  });
}

/** SEARCHRES (RFC 5182): `$` as the whole set names the messages the last SEARCH saved. */
export const SAVED = '$';

/**
 * The UIDs of the selected folder a set names, ascending: by sequence number, or by UID when
 * `byUid` (where `*` is the highest UID, and a range names only UIDs that exist); `$`, those saved.
 */
export function resolveSet(folder: SelectedFolder, value: string, byUid: boolean): number[] {
  if (value === SAVED) {
    const inView = new Set(folder.uids);
    return folder.saved.filter((uid) => inView.has(uid));
  }
  const ranges = parseSequenceSet(value);
  const { uids } = folder;
  const chosen = new Set<number>();
  if (byUid) {
    const highest = uids.at(-1) ?? 0;
    for (const { from, to } of ranges) {
      const a = from ?? highest;
      const b = to ?? highest;
      const [low, high] = a <= b ? [a, b] : [b, a];
      for (const uid of uids) if (uid >= low && uid <= high) chosen.add(uid);
    }
  } else {
    for (const { from, to } of ranges) {
      const a = from ?? uids.length;
      const b = to ?? uids.length;
      const [low, high] = a <= b ? [a, b] : [b, a];
      if (high > uids.length) throw new ImapSyntaxError('No such message');
      for (let seq = low; seq <= high; seq++) chosen.add(uids[seq - 1]!);
    }
  }
  return [...chosen].sort((x, y) => x - y);
}

/** Ascending numbers as a compact set (RFC 3501 sequence-set): 1,2,3,7 -> 1:3,7. */
export function compactSet(numbers: readonly number[]): string {
  const pieces: string[] = [];
  for (let i = 0; i < numbers.length; ) {
    let j = i;
    while (j + 1 < numbers.length && numbers[j + 1] === numbers[j]! + 1) j += 1;
    pieces.push(i === j ? `${numbers[i]}` : `${numbers[i]}:${numbers[j]}`);
    i = j + 1;
  }
  return pieces.join(',');
}

/** Whether `n` is in a parsed set, `*` standing for `highest` (RFC 3501 §9: a range in either order). */
export function inSet(ranges: readonly { from: number | null; to: number | null }[], n: number, highest: number): boolean {
  return ranges.some(({ from, to }) => {
    const a = from ?? highest;
    const b = to ?? highest;
    return n >= Math.min(a, b) && n <= Math.max(a, b);
  });
}
