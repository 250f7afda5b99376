// Library half of the cluster benchmark: CacheAside gets in workerd (bench-worker.mts) against a bridge on one node and
// a cluster-mode bridge, side by side: a local hit, a get with the local copy off (a TRACKED.GET per get) and a cold
// get with a loader (the miss path), timed per sub-batch inside the Worker as hit-path.ts and miss-path.ts do.
import { alternate, ms, pairedRatio, ratio, summarize, type BenchContext, type Table, type Variant } from './stats.ts';
import { runLoop, startBenchWorkers, type BenchWorkerSpec, type BenchWorkers } from './workerd.ts';
import type { LoopRequest } from './worker-routes.ts';

const TTL_MS = 600_000;
const PATHS = ['library hit (local copy)', 'library get, local copy off (TRACKED.GET)', 'library cold get (loader)'] as const;

export interface LibraryBackend {
  readonly name: string;
  readonly bridgeUrl: string;
}

/** Worker names per backend: `<i>-cached` keeps copies, `<i>-uncached` keeps none (every get goes to the bridge). */
const worker = (i: number, cached: boolean) => `b${i}-${cached ? 'cached' : 'uncached'}`;

export async function measureLibrary(ctx: BenchContext, backends: readonly LibraryBackend[], prefix: string, baseline: string) {
  let workers: BenchWorkers | undefined;
  try {
    // One workerd, one worker pair per backend; BRIDGE_URL in the spec's vars overrides the shared one.
    workers = await startBenchWorkers(backends[0]!.bridgeUrl, 'http://127.0.0.1:9/unused', backends.flatMap((b, i): BenchWorkerSpec[] => [
      { name: worker(i, true), vars: { BRIDGE_URL: b.bridgeUrl } },
      { name: worker(i, false), vars: { BRIDGE_URL: b.bridgeUrl, VALKEYASIDE_MAX_ENTRIES: '0' } },
    ]));
    const w = workers;
    const keys = Array.from({ length: 256 }, (_, i) => `${prefix}lib:${i}`);
    const base = { ttlMs: TTL_MS, placement: { kind: 'coord', name: 'bench-cluster' }, maxMs: 30_000 } as const;
    const scale = ctx.quick ? 4 : 1;
    const loop = async (name: string, body: Omit<LoopRequest, 'ttlMs' | 'placement' | 'maxMs'>) => {
      const result = await runLoop(w, name, { ...base, ...body });
      if (result.reply.errors.length > 0) throw new Error(`${name} ${body.op}: ${result.reply.errors.slice(0, 3).join('; ')}`);
      return result;
    };
    const variants: Variant[] = [];
    for (const [i, backend] of backends.entries()) {
      // Warm-up: the first pass loads (and fills the copies), the second must be all local hits.
      await loop(worker(i, true), { op: 'get', loader: true, keys, concurrency: 1, batchSize: 1_000_000 });
      const check = await loop(worker(i, true), { op: 'get', loader: true, keys, concurrency: 1, batchSize: 1_000_000 });
      if (check.reply.outcomes.hit !== keys.length) throw new Error(`${backend.name}: warm-up did not give local hits: ${JSON.stringify(check.reply.outcomes)}`);
      await loop(worker(i, false), { op: 'get', loader: true, keys, concurrency: 1, batchSize: 1_000_000 });
      const seq = (n: number) => Array.from({ length: n / scale }, (_, k) => keys[k % keys.length]!);
      variants.push(
        { name: `${PATHS[0]}, ${backend.name}`, run: async () => (await loop(worker(i, true), { op: 'get', loader: true, keys: seq(2_000), concurrency: 1, batchSize: 250 })).batchPerCallMs },
        { name: `${PATHS[1]}, ${backend.name}`, run: async () => (await loop(worker(i, false), { op: 'get', loader: true, keys: seq(400), concurrency: 1, batchSize: 50 })).batchPerCallMs },
        {
          name: `${PATHS[2]}, ${backend.name}`,
          run: async (round) => (await loop(worker(i, true), {
            op: 'get', loader: true, concurrency: 1, batchSize: 25,
            keys: Array.from({ length: 200 / scale }, (_, k) => `${prefix}cold:${i}:${round}:${k}`),
          })).batchPerCallMs,
        },
      );
    }
    const result = await alternate(variants, {
      rounds: ctx.quick ? 2 : 6,
      budgetMs: ctx.quick ? 6_000 : 25_000,
      onRound: (r) => ctx.log(`cluster library: round ${r + 1} done`),
    });
    const table: Table = {
      title: `CacheAside in workerd, concurrency 1: time per call by sub-batches timed inside the Worker (${result.roundsRun} alternating rounds)`,
      columns: ['variant', 'sub-batches', 'mean ms', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'paired p50 / one node'],
      rows: PATHS.flatMap((path) => backends.map((b) => {
        const name = `${path}, ${b.name}`;
        const s = summarize(result.samples.get(name)!);
        return [name, s.n, ms(s.mean), ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max), b.name === baseline ? '' : ratio(pairedRatio(result, name, `${path}, ${baseline}`))];
      })),
    };
    const figures = Object.fromEntries(variants.map((v) => [v.name, summarize(result.samples.get(v.name)!)]));
    return { table, figures };
  } finally {
    await workers?.dispose();
  }
}
