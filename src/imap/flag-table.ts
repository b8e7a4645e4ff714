/**
 * Flag lists of a process, shared: a session keeps a flag list per message of its folder, and
 * nearly all of them are one of a handful ([], [\Seen], [\Answered \Seen] …), so each distinct
 * list is kept once. Bounded: past MAX_DISTINCT lists it starts afresh (lists in use stay valid).
 */
const shared = new Map<string, readonly string[]>();
const MAX_DISTINCT = 10_000;

function intern(flags: readonly string[]): readonly string[] {
  const key = flags.join(' ');
  const known = shared.get(key);
  if (known) return known;
  if (shared.size >= MAX_DISTINCT) shared.clear();
  const kept = Object.freeze([...flags]);
  shared.set(key, kept);
  return kept;
}

/** A session's flags per UID; memory per message is one map entry, the lists are shared. */
export class FlagTable {
  private readonly byUid = new Map<number, readonly string[]>();

  constructor(entries: Iterable<{ uid: number; flags: readonly string[] }> = []) {
    for (const { uid, flags } of entries) this.set(uid, flags);
  }

  get(uid: number): readonly string[] | undefined {
    return this.byUid.get(uid);
  }

  set(uid: number, flags: readonly string[]): void {
    this.byUid.set(uid, intern(flags));
  }

  delete(uid: number): void {
    this.byUid.delete(uid);
  }
}
