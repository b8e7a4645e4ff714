/**
 * `npm run bench`: every side-by-side bench in turn (or those named: `npm run bench -- lmtp pop3`),
 * each printing its own report as it goes, then one table of all their measures with the
 * Mailroom/Dovecot ratios and the performance issue's targets. Each bench runs as a process of its
 * own, as `npm run bench:<name>` would, with the same environment (BENCH_* knobs, DATABASE_URL).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SUMMARY_FILE, type SummaryRow, summaryTable } from './summary.js';

const BENCHES = ['lmtp', 'pop3', 'imap', 'imap-large'];

function runBench(name: string, summaryFile: string): Promise<number | null> {
  const script = fileURLToPath(new URL(`${name}.ts`, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, [SUMMARY_FILE]: summaryFile },
    stdio: 'inherit',
  });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

async function main() {
  const asked = process.argv.slice(2);
  const unknown = asked.filter((name) => !BENCHES.includes(name));
  if (unknown.length > 0) {
    console.error(`unknown bench ${unknown.join(', ')}; available: ${BENCHES.join(', ')}`);
    process.exit(2);
  }
  const work = await mkdtemp(join(tmpdir(), 'mailroom-bench-all-'));
  const rows: SummaryRow[] = [];
  const failed: string[] = [];
  try {
    for (const name of asked.length > 0 ? asked : BENCHES) {
      console.log(`\n=== bench/${name}.ts ===`);
      const file = join(work, `${name}.json`);
      const code = await runBench(name, file);
      const written = await readFile(file, 'utf8').then((text) => JSON.parse(text) as SummaryRow[], () => null);
      if (code !== 0 || written === null) failed.push(`${name} (exit ${code}${written === null ? ', no summary' : ''})`);
      rows.push(...(written ?? []));
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  console.log(`\nAll benches (Mailroom/Dovecot above 1: Mailroom ahead; for KiB and ms, below 1 is):\n${summaryTable(rows)}`);
  if (failed.length > 0) {
    console.log(`\nFAILED: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

await main();
