import { PreconditionFailedError } from './errors.js';

/** A value with the revision it was read at; the API sends the revision as its ETag. */
export interface Revisioned<T> {
  value: T;
  revision: string;
}

/** Row id plus version: changes on every write and never repeats after delete and re-create. */
export function revisionOf(row: { id: number; version: number }): string {
  return `${row.id}.${row.version}`;
}

/**
 * Throws `revision_mismatch` when the caller edits a resource that changed since it read it.
 * `expected` lists the revisions the caller accepts; undefined accepts any.
 */
export function checkRevision(row: { id: number; version: number }, expected: readonly string[] | undefined): void {
  if (expected !== undefined && !expected.includes(revisionOf(row))) {
    throw new PreconditionFailedError('The resource changed since it was read; read it again and retry');
  }
}
