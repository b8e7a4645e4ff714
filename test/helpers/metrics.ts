import { isDeepStrictEqual } from 'node:util';

/** Samples of the Prometheus text format: metric name, labels, value. */
function samples(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  return text.split('\n').flatMap((line) => {
    const match = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) return [];
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map(([, key, value]) => [key!, value!]));
    return [{ name: match[1]!, labels, value: Number(match[3]) }];
  });
}

/** The value of the sample with exactly these labels; undefined when there is none. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  return samples(text).find((s) => s.name === name && isDeepStrictEqual(s.labels, labels))?.value;
}

/** Every value one label takes among a metric's samples. */
export function labelValues(text: string, name: string, label: string): string[] {
  return [...new Set(samples(text).flatMap((s) => (s.name === name && label in s.labels ? [s.labels[label]!] : [])))].sort();
}

/** Polls `check` (an asynchronous effect, like a session's end) until it holds, or gives up after about 5 s. */
export async function eventually(check: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}
