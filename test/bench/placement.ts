// Benchmark 7, coordinator placement: one coordinator per key against N shards, under a skewed (Zipf) key mix:
// the hit latency each gives once warm, and how many bridge sessions (one per coordinator) each needs.
import { Redis } from 'iovalkey';
import { randomPrefix } from '../support/bridge.ts';
import { startValkeyServer } from '../support/valkey-server.ts';
import { startBridgeChild } from './bridge-process.ts';
import {
  alternate, count, ms, pairedRatio, ratio, summarize, zipfSequence,
  type BenchContext, type BenchReport, type Benchmark, type Table, type Variant,
} from './stats.ts';
import { addOutcomes, runLoop, startBenchWorkers, type BenchWorkers } from './workerd.ts';
import type { PlacementSpec } from './worker-routes.ts';

const TTL_MS = 600_000;
const ZIPF_S = 1.1;
const VALUE = 'p'.repeat(100);

interface Layout {
  readonly name: string;
  readonly placement: PlacementSpec;
  readonly namePrefix: string;
}

async function run(ctx: BenchContext): Promise<BenchReport> {
  const server = await startValkeyServer();
  const bridge = await startBridgeChild(server.url, {}, 'placement');
  const redis = new Redis({ host: server.host, port: server.port, lazyConnect: true });
  let workers: BenchWorkers | undefined;
  try {
    await redis.connect();
    workers = await startBenchWorkers(bridge.url, 'http://127.0.0.1:9/unused', [{ name: 'main' }]);
    const w = workers;
    const universe = ctx.quick ? 200 : 1_000;
    const length = ctx.quick ? 1_000 : 4_000;
    const prefix = randomPrefix('place');
    const allKeys = Array.from({ length: universe }, (_, i) => `${prefix}${i}`);
    await redis.mset(Object.fromEntries(allKeys.map((k) => [k, VALUE])));
    const sequence = zipfSequence(universe, ZIPF_S, length, 42).map((i) => allKeys[i]!);
    const distinct = [...new Set(sequence)];
    const layouts: Layout[] = [
      { name: 'per-key', placement: { kind: 'per-key' }, namePrefix: 'pk' },
      { name: '16 shards', placement: { kind: 'shards', n: 16 }, namePrefix: 's16' },
      { name: '4 shards', placement: { kind: 'shards', n: 4 }, namePrefix: 's4' },
    ];
    // Warm each layout in turn (every distinct key read once, so it is cached), counting the sessions it opens.
    const sessions = new Map<string, number>();
    const warmMs = new Map<string, number>();
    for (const layout of layouts) {
      const before = (await bridge.stats()).sessions;
      const warm = await runLoop(w, 'main', {
        op: 'get', keys: distinct, concurrency: 8, ttlMs: TTL_MS, placement: layout.placement, namePrefix: layout.namePrefix, maxMs: 60_000, batchSize: 1_000_000,
      });
      if (warm.reply.errors.length > 0) throw new Error(`warming ${layout.name} failed: ${warm.reply.errors.join('; ')}`);
      sessions.set(layout.name, (await bridge.stats()).sessions - before);
      warmMs.set(layout.name, warm.reply.elapsedMs);
      ctx.log(`placement: ${layout.name} warm, ${sessions.get(layout.name)} sessions`);
    }
    const tables: Table[] = [];
    const figures: Record<string, unknown> = { universe, length, distinctKeys: distinct.length, zipfS: ZIPF_S, sessions: Object.fromEntries(sessions), warmMs: Object.fromEntries(warmMs) };
    const rows: Array<Array<string | number>> = [];
    for (const concurrency of [1, 32]) {
      const batchSize = concurrency === 1 ? 250 : 500;
      const outcomes = new Map<string, Record<string, number>>(layouts.map((l) => [l.name, {}]));
      const variants: Variant[] = layouts.map((layout) => ({
        name: layout.name,
        async run() {
          const result = await runLoop(w, 'main', {
            op: 'get', keys: sequence, concurrency, ttlMs: TTL_MS, placement: layout.placement, namePrefix: layout.namePrefix, maxMs: 30_000, batchSize,
          });
          addOutcomes(outcomes.get(layout.name)!, result.reply);
          return result.batchPerCallMs;
        },
      }));
      const result = await alternate(variants, { rounds: ctx.quick ? 2 : 6, budgetMs: ctx.quick ? 8_000 : 25_000, onRound: (r) => ctx.log(`placement c=${concurrency}: round ${r + 1} done`) });
      for (const layout of layouts) {
        const s = summarize(result.samples.get(layout.name)!);
        const o = outcomes.get(layout.name)!;
        const total = Object.values(o).reduce((a, b) => a + b, 0);
        rows.push([layout.name, concurrency, sessions.get(layout.name)!, ms(warmMs.get(layout.name)!), `${(((o.hit ?? 0) / total) * 100).toFixed(1)} %`, s.n, ms(s.p50), ms(s.p99), count(1000 / s.p50),
          ratio(pairedRatio(result, layout.name, 'per-key'))]);
        figures[`c${concurrency}:${layout.name}`] = { perCallMs: s, outcomes: o };
      }
    }
    tables.push({
      title: `Warm hits under a Zipf(${ZIPF_S}) mix of ${universe} keys (${distinct.length} distinct in a ${length}-get sequence); time per get from sub-batches timed in the Worker`,
      columns: ['placement', 'concurrency', 'bridge sessions', `warm-up ms (${distinct.length} cold gets, 8 lanes)`, 'local hits', 'sub-batches', 'p50 ms per get', 'p99 ms per get', 'gets/s', 'paired p50 / per-key'],
      rows,
    });
    return {
      name: 'placement',
      title: 'Coordinator placement',
      method: [
        `${universe} keys with 100-byte values; one fixed sequence of ${length} gets drawn from Zipf(s=${ZIPF_S}) (seeded, the same for every layout).`,
        'Each layout is warmed first (every distinct key read once) and the bridge\'s session count is read before and after: each coordinator holds one bridge session.',
        'Then layouts alternate, each running the whole sequence in one Worker request (1 or 32 lanes), timed per sub-batch with Date.now() as in the hit-path benchmark.',
      ],
      tables,
      targets: [],
      figures,
      notes: [],
    };
  } finally {
    redis.disconnect();
    await workers?.dispose().catch(() => undefined);
    await bridge.close();
    await server.stop();
  }
}

export const benchmark: Benchmark = { name: 'placement', aliases: [], title: 'Coordinator placement', run };
