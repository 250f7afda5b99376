// Benchmark 1, the hit path: Worker → coordinator → local copy, at concurrency 1 and 64, against the floor (a
// Worker → DO RPC that does nothing), the same get with the coordinator's local cache off (every get is a
// TRACKED.GET through the bridge), and a direct iovalkey GET from Node.
import { Redis } from 'iovalkey';
import { performance } from 'node:perf_hooks';
import { randomPrefix } from '../support/bridge.ts';
import { startValkeyServer } from '../support/valkey-server.ts';
import { startBridgeChild } from './bridge-process.ts';
import {
  alternate, count, ms, pairedRatio, ratio, summarize,
  type BenchContext, type BenchReport, type Benchmark, type Table, type TargetCheck, type Variant,
} from './stats.ts';
import { addOutcomes, addTicks, overOneMs, runLoop, startBenchWorkers, tickPercentile, type BenchWorkers } from './workerd.ts';
import type { LoopRequest } from './worker-routes.ts';

const KEYS = 256;
const VALUE = 'v'.repeat(100);
/** Long enough that no local copy expires during the run. */
const TTL_MS = 600_000;
const COORD = 'bench-hit';

interface DirectRun {
  /** Per-call time of each sub-batch of `batchSize` completions (ms). */
  readonly batchPerCallMs: number[];
  /** Each GET's own latency (ms). */
  readonly latencies: number[];
}

/** GETs of `keys` from Node over one iovalkey connection, `concurrency` in flight, timed with performance.now(). */
async function directGets(redis: Redis, keys: readonly string[], concurrency: number, batchSize: number): Promise<DirectRun> {
  const latencies: number[] = [];
  const batchPerCallMs: number[] = [];
  let next = 0;
  let done = 0;
  let boundary = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = next++; i < keys.length; i = next++) {
      const t0 = performance.now();
      await redis.get(keys[i]!);
      const now = performance.now();
      latencies.push(now - t0);
      if (++done % batchSize === 0) {
        batchPerCallMs.push((now - boundary) / batchSize);
        boundary = now;
      }
    }
  }));
  return { batchPerCallMs, latencies };
}

interface Shape {
  readonly calls: number;
  readonly batchSize: number;
}

/** Calls per round and sub-batch size: enough calls per sub-batch that it lasts well over Date.now()'s 1 ms. */
function shape(quick: boolean, concurrency: number, slow: boolean): Shape {
  const s = concurrency === 1
    ? (slow ? { calls: 400, batchSize: 50 } : { calls: 2_000, batchSize: 250 })
    : (slow ? { calls: 2_000, batchSize: 100 } : { calls: 8_000, batchSize: 500 });
  return quick ? { calls: s.calls / 4, batchSize: s.batchSize } : s;
}

const FLOOR = 'bare RPC (floor)';
const PAYLOAD = 'bare RPC + get payload';
const HIT = 'hit';
/** The same local hit with a stale-while-revalidate window: the peek also checks the copy is still fresh. */
const HIT_SWR = 'hit, staleMs';
const STALE_MS = 60_000;
/** The same gets with `coalesce: false`: what coalescing in the caller's isolate costs a lone hit. */
const HIT_ALONE = 'hit, coalesce: false';
const UNCACHED = 'uncached get';
const DIRECT = 'iovalkey GET (Node)';
const DIY_NAIVE = 'DIY DO: naive local copy (no invalidation)';
const DIY_GET = 'DIY DO: GET over cloudflare:sockets';

async function run(ctx: BenchContext): Promise<BenchReport> {
  const server = await startValkeyServer();
  const bridge = await startBridgeChild(server.url, {}, 'hit');
  const redis = new Redis({ host: server.host, port: server.port, lazyConnect: true });
  let workers: BenchWorkers | undefined;
  try {
    await redis.connect();
    // No markers here: a sub-0.1 ms RPC completes before workerd flushes a marker sent ahead of it.
    workers = await startBenchWorkers(bridge.url, 'http://127.0.0.1:9/unused', [
      { name: 'cached', vars: { VALKEY_HOST: server.host, VALKEY_PORT: String(server.port) } },
      { name: 'uncached', vars: { VALKEYASIDE_MAX_ENTRIES: '0' } },
    ]);
    const w = workers;
    const prefix = randomPrefix('hit');
    const keys = Array.from({ length: KEYS }, (_, i) => `${prefix}${i}`);
    await redis.mset(Object.fromEntries(keys.map((k) => [k, VALUE])));
    const base = { ttlMs: TTL_MS, placement: { kind: 'coord', name: COORD }, maxMs: 30_000, batchSize: 1_000_000 } as const;

    // Warm up: the first pass fills the coordinator's copies (server-hit), the second must be all local hits.
    await runLoop(w, 'cached', { ...base, op: 'get', keys, concurrency: 1 });
    const check = await runLoop(w, 'cached', { ...base, op: 'get', keys, concurrency: 1 });
    if (check.reply.outcomes.hit !== KEYS) throw new Error(`warm-up did not give local hits: ${JSON.stringify(check.reply.outcomes)}`);
    await runLoop(w, 'uncached', { ...base, op: 'get', keys, concurrency: 8 });
    await runLoop(w, 'cached', { ...base, op: 'bare', keys, concurrency: 1 });
    await runLoop(w, 'cached', { ...base, op: 'bare-payload', keys, concurrency: 1 });
    await runLoop(w, 'cached', { ...base, op: 'direct-naive', keys, concurrency: 1 });

    const tables: Table[] = [];
    const targets: TargetCheck[] = [];
    const figures: Record<string, unknown> = {};
    const notes: string[] = [];
    for (const concurrency of [1, 64]) {
      const outcomes: Record<string, Record<string, number>> = {};
      const ticks = new Map<string, number[]>();
      const directLatencies: number[] = [];
      const workerVariant = (name: string, worker: string, op: LoopRequest['op'], slow: boolean, staleMs?: number, coalesce = true): Variant => {
        const { calls, batchSize } = shape(ctx.quick, concurrency, slow);
        const seq = Array.from({ length: calls }, (_, i) => keys[i % KEYS]!);
        outcomes[name] = {};
        ticks.set(name, []);
        return {
          name,
          async run() {
            const result = await runLoop(w, worker, { ...base, op, keys: seq, concurrency, batchSize, coalesce, ...(staleMs === undefined ? {} : { staleMs }) });
            addOutcomes(outcomes[name]!, result.reply);
            addTicks(ticks.get(name)!, result.reply.ticks);
            if (result.reply.errors.length > 0) notes.push(`${name} c=${concurrency}: ${result.reply.errors.join('; ')}`);
            return result.batchPerCallMs;
          },
        };
      };
      const direct = shape(ctx.quick, concurrency, false);
      const directKeys = Array.from({ length: direct.calls }, (_, i) => keys[i % KEYS]!);
      const variants: Variant[] = [
        workerVariant(FLOOR, 'cached', 'bare', false),
        workerVariant(PAYLOAD, 'cached', 'bare-payload', false),
        workerVariant(HIT, 'cached', 'get', false),
        workerVariant(HIT_SWR, 'cached', 'get', false, STALE_MS),
        workerVariant(HIT_ALONE, 'cached', 'get', false, undefined, false),
        workerVariant(UNCACHED, 'uncached', 'get', true),
        workerVariant(DIY_NAIVE, 'cached', 'direct-naive', false),
        workerVariant(DIY_GET, 'cached', 'direct', true),
        {
          name: DIRECT,
          async run() {
            const result = await directGets(redis, directKeys, concurrency, direct.batchSize);
            directLatencies.push(...result.latencies);
            return result.batchPerCallMs;
          },
        },
      ];
      const result = await alternate(variants, {
        rounds: ctx.quick ? 2 : 8,
        budgetMs: ctx.quick ? 8_000 : 30_000,
        onRound: (r) => ctx.log(`hit c=${concurrency}: round ${r + 1} done`),
      });
      const summary = (name: string) => summarize(result.samples.get(name)!);
      const floor = summary(FLOOR);
      tables.push({
        title: `Time per call, concurrency ${concurrency}: sub-batches of calls timed inside the Worker (${result.roundsRun} alternating rounds)`,
        columns: ['variant', 'sub-batches', 'mean ms', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'calls/s', 'p50 / floor', 'paired p50 / floor'],
        rows: [FLOOR, PAYLOAD, HIT, HIT_SWR, HIT_ALONE, UNCACHED, DIY_NAIVE, DIY_GET, DIRECT].map((name) => {
          const s = summary(name);
          return [name, s.n, ms(s.mean), ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max), count(1000 / s.p50),
            ratio(s.p50 / floor.p50), ratio(pairedRatio(result, name, FLOOR))];
        }),
      });
      const direct1 = summarize(directLatencies);
      tables.push({
        title: `Per-call latency, concurrency ${concurrency}: workerd calls by their Date.now() difference (whole ms), iovalkey by performance.now()`,
        columns: ['variant', 'calls', 'p50', 'p99', 'max', 'calls > 1 ms', "mean latency ms (Little's law)"],
        rows: [
          ...[FLOOR, PAYLOAD, HIT, HIT_SWR, HIT_ALONE, UNCACHED, DIY_NAIVE, DIY_GET].map((name) => {
            const t = ticks.get(name)!;
            return [name, t.reduce((a, b) => a + b, 0), `≤ ${tickPercentile(t, 50) + 1} ms`, `≤ ${tickPercentile(t, 99) + 1} ms`,
              `≤ ${tickPercentile(t, 100) + 1} ms`, `${(overOneMs(t) * 100).toFixed(2)} %`, ms(summary(name).mean * concurrency)];
          }),
          [DIRECT, direct1.n, `${ms(direct1.p50)} ms`, `${ms(direct1.p99)} ms`, `${ms(direct1.max)} ms`,
            `${((directLatencies.filter((l) => l > 1).length / direct1.n) * 100).toFixed(2)} %`, ms(direct1.mean)],
        ],
      });
      const hit = summary(HIT);
      const uncached = summary(UNCACHED);
      const hitOverFloor = pairedRatio(result, HIT, FLOOR);
      const uncachedOverHit = pairedRatio(result, UNCACHED, HIT);
      notes.push(`c=${concurrency}: hit / hit with coalesce: false (paired p50): ${ratio(pairedRatio(result, HIT, HIT_ALONE))}`);
      targets.push(
        { target: `c=${concurrency}: hit p50 ≤ 1.2x bare RPC p50`, actual: `${ms(hit.p50)} vs ${ms(floor.p50)} ms per call: ${ratio(hitOverFloor)} (paired)`, met: hitOverFloor <= 1.2 },
        { target: `c=${concurrency}: uncached get ≥ 3x slower than hit (p50)`, actual: `${ms(uncached.p50)} vs ${ms(hit.p50)} ms per call: ${ratio(uncachedOverHit)} (paired)`, met: uncachedOverHit >= 3 },
        { target: `report c=${concurrency}: hit vs a DIY DO's naive local copy / its GET over cloudflare:sockets (p50)`,
          actual: `${ratio(pairedRatio(result, HIT, DIY_NAIVE))} / ${ratio(pairedRatio(result, HIT, DIY_GET))} (${ms(summary(DIY_NAIVE).p50)} / ${ms(summary(DIY_GET).p50)} ms)`, met: null },
      );
      figures[`c${concurrency}`] = {
        rounds: result.roundsRun,
        perCallMs: Object.fromEntries([...result.samples.keys()].map((k) => [k, summary(k)])),
        pairedRatios: {
          hitOverFloor,
          hitOverPayloadFloor: pairedRatio(result, HIT, PAYLOAD),
          staleHitOverHit: pairedRatio(result, HIT_SWR, HIT),
          payloadOverFloor: pairedRatio(result, PAYLOAD, FLOOR),
          uncachedOverHit,
          uncachedOverFloor: pairedRatio(result, UNCACHED, FLOOR),
          hitOverDirect: pairedRatio(result, HIT, DIRECT),
          hitOverUncoalescedHit: pairedRatio(result, HIT, HIT_ALONE),
        },
        ticks: Object.fromEntries(ticks),
        directLatencyMs: direct1,
        outcomes,
      };
      const all = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
      if ((outcomes[HIT_SWR]!.hit ?? 0) !== all(outcomes[HIT_SWR]!)) notes.push(`c=${concurrency}: not every staleMs get was a local hit: ${JSON.stringify(outcomes[HIT_SWR])}`);
      if ((outcomes[HIT]!.hit ?? 0) !== all(outcomes[HIT]!)) notes.push(`c=${concurrency}: not every measured get was a local hit: ${JSON.stringify(outcomes[HIT])}`);
      if ((outcomes[UNCACHED]!['server-hit'] ?? 0) !== all(outcomes[UNCACHED]!)) {
        notes.push(`c=${concurrency}: not every uncached get went to the bridge: ${JSON.stringify(outcomes[UNCACHED])}`);
      }
    }
    return {
      name: 'hit',
      title: 'Hit path',
      method: [
        `One coordinator holds ${KEYS} keys (100-byte values, ttl ${TTL_MS / 1000} s); the measured gets cycle through them. ` +
          'Worker "uncached" is the same Worker with VALKEYASIDE_MAX_ENTRIES=0, so every get is a TRACKED.GET through the bridge (its own process).',
        'Each Worker request runs a whole loop (c lanes of sequential calls), so the Node→workerd dispatch (~3 ms) is paid once per loop. ' +
          'The loop records Date.now() at every k-th completion: time per call = sub-batch time / k, with k chosen so a sub-batch lasts 15–60 ms.',
        'Date.now() in workerd is ms-granular and sub-0.1 ms RPCs finish before workerd flushes a WebSocket marker sent ahead of them, so per-call ' +
          'percentiles come from each call\'s Date.now() difference: whole ms only (a difference ≥ 2 means the call took > 1 ms).',
        "At c=64, time per call is the inverse throughput; mean latency follows by Little's law (time per call × 64).",
        '"bare RPC + get payload" carries a get\'s request and reply objects and does nothing else: it separates the RPC payload from the library\'s work.',
        'Variants alternate in rotating order each round; "paired" = median over rounds of the per-round p50 ratio. iovalkey is timed in Node the same way.',
      ],
      tables,
      targets,
      figures,
      notes,
    };
  } finally {
    redis.disconnect();
    await workers?.dispose().catch(() => undefined);
    await bridge.close();
    await server.stop();
  }
}

export const benchmark: Benchmark = { name: 'hit', aliases: ['hit-path'], title: 'Hit path', run };
