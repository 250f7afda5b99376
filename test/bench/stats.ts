// The benchmark suite's arithmetic and output: percentiles, the alternating runner (baselines interleaved with
// what they are compared with, so machine noise lands in both), ratios, and the tables `npm run bench` prints.

/** Percentiles of a set of samples (milliseconds unless a table says otherwise). */
export interface Summary {
  readonly n: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly min: number;
  readonly max: number;
}

/** One printed table; the same rows go to the JSON file. */
export interface Table {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: ReadonlyArray<ReadonlyArray<string | number>>;
}

/** A figure set against its target. `met` is reported only: nothing fails on it. */
export interface TargetCheck {
  readonly target: string;
  readonly actual: string;
  readonly met: boolean | null;
}

/** What one benchmark hands back to run.ts. */
export interface BenchReport {
  readonly name: string;
  readonly title: string;
  /** How it was measured, one line per point; printed above the tables and kept in the JSON. */
  readonly method: readonly string[];
  readonly tables: readonly Table[];
  readonly targets: readonly TargetCheck[];
  /** Everything else worth keeping (raw summaries, counts), JSON-serialisable. */
  readonly figures: Record<string, unknown>;
  readonly notes: readonly string[];
}

/** Settings every benchmark receives. */
export interface BenchContext {
  /** BENCH_QUICK=1: a smoke run with small counts. */
  readonly quick: boolean;
  /** Progress line on stderr. */
  log(message: string): void;
}

export interface Benchmark {
  /** Selection name: `npm run bench -- <name>`. */
  readonly name: string;
  /** Other accepted names (e.g. the file name). */
  readonly aliases: readonly string[];
  readonly title: string;
  run(ctx: BenchContext): Promise<BenchReport>;
}

/** Linear-interpolated percentile of an ascending array (`p` in 0..100). NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  if (sorted.length === 1) return sorted[0]!;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  let sum = 0;
  for (const s of sorted) sum += s;
  return {
    n: sorted.length,
    mean: sorted.length === 0 ? NaN : sum / sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    min: sorted.length === 0 ? NaN : sorted[0]!,
    max: sorted.length === 0 ? NaN : sorted[sorted.length - 1]!,
  };
}

export function median(values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/** One contender of an alternating run: `run` does one round's worth of work and returns its samples. */
export interface Variant {
  readonly name: string;
  run(round: number): Promise<number[]>;
}

export interface AlternatingResult {
  /** Every sample of each variant, all rounds pooled. */
  readonly samples: ReadonlyMap<string, number[]>;
  /** Per variant, each round's samples (same round index across variants). */
  readonly rounds: ReadonlyMap<string, number[][]>;
  readonly roundsRun: number;
}

/**
 * Runs `variants` in rounds, rotating their order each round (A B C, B C A, C A B, ...), so a slow spell of the
 * machine hits every variant alike and cancels in their ratios. Stops after `rounds` rounds or, once at least
 * `minRounds` have run, when `budgetMs` has passed.
 */
export async function alternate(
  variants: readonly Variant[],
  options: { rounds: number; budgetMs: number; minRounds?: number; onRound?: (round: number) => void },
): Promise<AlternatingResult> {
  const samples = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  const rounds = new Map<string, number[][]>(variants.map((v) => [v.name, []]));
  const deadline = Date.now() + options.budgetMs;
  const minRounds = Math.min(options.minRounds ?? 2, options.rounds);
  let round = 0;
  for (; round < options.rounds; round++) {
    if (round >= minRounds && Date.now() > deadline) break;
    for (let i = 0; i < variants.length; i++) {
      const variant = variants[(i + round) % variants.length]!;
      const got = await variant.run(round);
      samples.get(variant.name)!.push(...got);
      rounds.get(variant.name)!.push(got);
    }
    options.onRound?.(round);
  }
  return { samples, rounds, roundsRun: round };
}

/**
 * Median over rounds of (statistic of A in the round) / (statistic of B in the same round): the noise-cancelling
 * ratio an alternating run exists for.
 */
export function pairedRatio(result: AlternatingResult, a: string, b: string, stat: (s: Summary) => number = (s) => s.p50): number {
  const ra = result.rounds.get(a) ?? [];
  const rb = result.rounds.get(b) ?? [];
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(ra.length, rb.length); i++) {
    if (ra[i]!.length === 0 || rb[i]!.length === 0) continue;
    ratios.push(stat(summarize(ra[i]!)) / stat(summarize(rb[i]!)));
  }
  return median(ratios);
}

/** Milliseconds, three significant decimals below 10, fewer above. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return '–';
  if (value < 10) return value.toFixed(3);
  if (value < 100) return value.toFixed(2);
  return value.toFixed(1);
}

export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}x` : '–';
}

/** 12345.6 → "12,346". */
export function count(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–';
}

export function bytes(value: number): string {
  if (!Number.isFinite(value)) return '–';
  if (Math.abs(value) < 10 * 1024) return `${Math.round(value)} B`;
  if (Math.abs(value) < 10 * 1024 * 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${(value / 1024 / 1024).toFixed(1)} MiB`;
}

/** The standard row of a latency table: name, n, mean, p50, p90, p99, max. */
export function latencyRow(name: string, s: Summary, ...extra: Array<string | number>): Array<string | number> {
  return [name, s.n, ms(s.mean), ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max), ...extra];
}

export const LATENCY_COLUMNS = ['variant', 'n', 'mean ms', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'] as const;

/** A plain-text table, columns padded, numbers right-aligned. */
export function formatTable(table: Table): string {
  const cells = [table.columns.map(String), ...table.rows.map((row) => row.map(String))];
  const widths = table.columns.map((_, c) => Math.max(...cells.map((row) => (row[c] ?? '').length)));
  const numeric = table.columns.map((_, c) => table.rows.every((row) => /^[-–\d.,x% ]+(B|KiB|MiB|ms|\/s)?$/.test(String(row[c] ?? ''))));
  const line = (row: string[]) =>
    '| ' + row.map((cell, c) => (numeric[c] && c > 0 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join(' | ') + ' |';
  const rule = '|' + widths.map((w, c) => (numeric[c] && c > 0 ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|') + '|';
  return [`**${table.title}**`, '', line(cells[0]!), rule, ...cells.slice(1).map(line)].join('\n');
}

/** Resolves after `delayMs` (for pacing only; never used to wait for an event). */
export function pause(delayMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, delayMs));
}

/** Awaits `promise`, rejecting with `what` in the message after `timeoutMs`. */
export async function bounded<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/** Deterministic PRNG (mulberry32) so every variant sees the same key sequence. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `length` indices in [0, universe) drawn from a Zipf(s) distribution, rank 0 the most frequent. */
export function zipfSequence(universe: number, s: number, length: number, seed: number): number[] {
  const weights = Array.from({ length: universe }, (_, k) => 1 / (k + 1) ** s);
  const total = weights.reduce((a, b) => a + b, 0);
  const cdf: number[] = [];
  let acc = 0;
  for (const w of weights) cdf.push((acc += w / total));
  const random = seededRandom(seed);
  const out: number[] = [];
  for (let i = 0; i < length; i++) {
    const u = random();
    let lo = 0;
    let hi = universe - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    out.push(lo);
  }
  return out;
}
