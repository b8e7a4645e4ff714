/**
 * Bounds on what the indexer keeps, so a hostile message can neither exhaust the stack nor bloat
 * the stored row. The work itself is linear in the message size whatever these are.
 */
export const MIME_LIMITS = {
  /** Nesting of multipart and message/rfc822 parts; a composite part deeper than this is an opaque leaf. */
  maxDepth: 32,
  /** Parts in one message; past this, the rest of each open multipart is read as its epilogue. */
  maxParts: 10_000,
  /** Longest boundary we look for (RFC 2046 allows 70); a longer one makes the multipart invalid. */
  maxBoundaryLength: 998,
  /** The `headers` map: total characters of names and values, and of one value. */
  headerMapChars: 64 * 1024,
  headerValueChars: 16 * 1024,
  /** Fields kept per header block; the header still ends where it ends. */
  fieldsPerHeader: 10_000,
  /** Characters of one field value parsed for the envelope or a Content-* field. */
  parsedFieldChars: 64 * 1024,
  /** Addresses kept per address list (group markers included). */
  addressesPerList: 1_000,
  /** Addresses parsed for all the envelopes of enclosed (message/rfc822) messages together. */
  enclosedAddresses: 10_000,
  /** Message IDs kept of a References field for THREAD: the last ones, nearest the message. */
  referencesKept: 100,
} as const;
