import type { SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';

const dialect = new PgDialect();

/** What binary COPY output starts with: a signature, 32 bits of flags, a 32-bit extension length (0). */
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEADER_LENGTH = SIGNATURE.length + 8;

/** One row: each field's raw bytes in Postgres's binary format; null for SQL NULL. */
export type BinaryRow = (Buffer | null)[];

/**
 * A query's rows through `COPY (query) TO STDOUT (FORMAT binary)` on a Postgres server. In an
 * ordinary result node-postgres decodes every field as UTF-8 text, so a bytea travels as hex at
 * twice its size and is decoded twice (to a string, then to bytes); for message bodies that cost
 * three to four times the CPU of the copy, and a large message was held as a string twice its
 * size. Fields arrive raw: the caller decodes them (an int8 is 8 bytes big-endian).
 *
 * COPY takes no parameters, so the query's are written into its text; only numbers and arrays
 * of numbers are accepted, which cannot smuggle SQL in.
 */
export async function copyRows(pool: pg.Pool, query: SQL): Promise<BinaryRow[]> {
  const { sql: text, params } = dialect.sqlToQuery(query);
  const inlined = text.replace(/\$(\d+)\b/g, (_, index: string) => literal(params[Number(index) - 1]));
  const client = await pool.connect();
  try {
    const parser = new BinaryCopyParser();
    for await (const chunk of client.query(copyTo(`copy (${inlined}) to stdout (format binary)`))) {
      parser.write(chunk as Buffer);
    }
    client.release();
    return parser.finish();
  } catch (error) {
    // The session may be mid-copy: it is closed rather than handed to the next query.
    client.release(error as Error);
    throw error;
  }
}

function literal(value: unknown): string {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (Array.isArray(value) && value.every((item) => typeof item === 'number' && Number.isFinite(item))) {
    return `'{${value.join(',')}}'`;
  }
  throw new TypeError('copyRows inlines only numbers and arrays of numbers');
}

/**
 * Reads the binary COPY format as it streams in: a field's bytes are copied once, into a buffer
 * of their own, so a large message is never held twice and no chunk outlives its turn.
 */
class BinaryCopyParser {
  private readonly rows: BinaryRow[] = [];
  /** Bytes of a header, count or length that arrived split across chunks. */
  private carry: Buffer = Buffer.alloc(0);
  private step: 'header' | 'count' | 'length' | 'data' | 'trailer' = 'header';
  private row: BinaryRow = [];
  private fieldsLeft = 0;
  private field: Buffer = Buffer.alloc(0);
  private filled = 0;

  write(chunk: Buffer): void {
    const data = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = Buffer.alloc(0);
    let at = 0;
    const need = (n: number) => {
      if (data.length - at >= n) return true;
      this.carry = data.subarray(at);
      return false;
    };
    while (at < data.length) {
      if (this.step === 'header') {
        if (!need(HEADER_LENGTH)) return;
        if (!data.subarray(at, at + SIGNATURE.length).equals(SIGNATURE)) throw new Error('COPY output is not in binary format');
        at += HEADER_LENGTH;
        this.step = 'count';
      } else if (this.step === 'count') {
        if (!need(2)) return;
        const count = data.readInt16BE(at);
        at += 2;
        if (count === -1) this.step = 'trailer';
        else this.startRow(count);
      } else if (this.step === 'length') {
        if (!need(4)) return;
        const length = data.readInt32BE(at);
        at += 4;
        if (length === -1) this.endField(null);
        else this.startField(length);
      } else if (this.step === 'data') {
        const n = Math.min(data.length - at, this.field.length - this.filled);
        data.copy(this.field, this.filled, at, at + n);
        this.filled += n;
        at += n;
        if (this.filled === this.field.length) this.endField(this.field);
      } else {
        throw new Error('COPY output continues after its trailer');
      }
    }
  }

  finish(): BinaryRow[] {
    if (this.step !== 'trailer') throw new Error('COPY output ended early');
    return this.rows;
  }

  private startRow(count: number): void {
    this.row = [];
    this.fieldsLeft = count;
    if (count === 0) this.rows.push(this.row);
    else this.step = 'length';
  }

  private startField(length: number): void {
    this.field = Buffer.allocUnsafe(length);
    this.filled = 0;
    if (length === 0) this.endField(this.field);
    else this.step = 'data';
  }

  private endField(value: Buffer | null): void {
    this.row.push(value);
    this.fieldsLeft -= 1;
    if (this.fieldsLeft > 0) {
      this.step = 'length';
      return;
    }
    this.rows.push(this.row);
    this.step = 'count';
  }
}
