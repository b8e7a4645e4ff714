/** A LIKE pattern matching values that start with `prefix` literally (%, _ and \ escaped). */
export function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}
