/**
 * What each bench hands to `npm run bench` (bench/all.ts) for the combined table: one row per
 * measure, Mailroom beside Dovecot. A bench run alone prints its own report and writes nothing.
 */
import { writeFile } from 'node:fs/promises';

export interface SummaryRow {
  name: string;
  mailroom: number;
  dovecot: number;
  unit: string;
  /** The performance issue's target for this measure, as text (e.g. `ratio ≥ 0.70`), and whether it was met. */
  target?: { text: string; met: boolean };
}

/** The file bench/all.ts asks a bench to write its rows to. */
export const SUMMARY_FILE = 'BENCH_SUMMARY_FILE';

/** Writes the rows where bench/all.ts asked for them; nothing when the bench runs alone. */
export async function writeSummary(rows: SummaryRow[]): Promise<void> {
  const path = process.env[SUMMARY_FILE];
  if (path) await writeFile(path, JSON.stringify(rows));
}

const figure = (value: number) => (Number.isFinite(value) ? (Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(1)) : 'n/a');

/** The rows as one plain-text table: name, Mailroom, Dovecot, unit, Mailroom/Dovecot, target. */
export function summaryTable(rows: SummaryRow[]): string {
  const lines = [
    ['measure', 'Mailroom', 'Dovecot', 'unit', 'Mailroom/Dovecot', 'target'],
    ...rows.map((row) => [
      row.name,
      figure(row.mailroom),
      figure(row.dovecot),
      row.unit,
      row.dovecot > 0 ? (row.mailroom / row.dovecot).toFixed(2) : 'n/a',
      row.target ? `${row.target.text}: ${row.target.met ? 'met' : 'NOT met'}` : '',
    ]),
  ];
  const widths = lines[0]!.map((_, column) => Math.max(...lines.map((line) => line[column]!.length)));
  // Names and units to the left, numbers to the right.
  const numeric = [false, true, true, false, true, false];
  return lines
    .map((line) => line.map((cell, column) => (numeric[column] ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))).join('  ').trimEnd())
    .join('\n');
}
