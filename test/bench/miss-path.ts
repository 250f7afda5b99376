// Benchmark 6, the miss path: a cold get with a trivial loader through the library (Worker → coordinator → bridge)
// against the raw commands it replaces (GET + SET with iovalkey), with the coordinator's raw protocol sequences (v2:
// TRACKED.GET pipelined with SET NX GET PX, then TRACKED.SETKEY; v1: those four commands one by one, with EVALSHA
// setkey and a read-back) and a plain GET + SET through the bridge, so each price shows on the same transport.
import { Redis } from 'iovalkey';
import { performance } from 'node:perf_hooks';
import { TEST_TOKEN, randomPrefix } from '../support/bridge.ts';
import { startValkeyServer } from '../support/valkey-server.ts';
import { RespErrorReply, encodeCommand } from '../../shared/resp/index.ts';
import { SCRIPT_SHA, newClientId } from '../../shared/valkeyaside.ts';
import { startBridgeChild } from './bridge-process.ts';
import { RespSession, type Command } from './resp-session.ts';
import {
  LATENCY_COLUMNS, alternate, latencyRow, ms, pairedRatio, ratio, summarize,
  type BenchContext, type BenchReport, type Benchmark, type Variant,
} from './stats.ts';
import { addOutcomes, addTicks, overOneMs, runLoop, startBenchWorkers, tickPercentile, type BenchWorkers } from './workerd.ts';

const TTL_MS = 60_000;
const LIBRARY = 'library cold get (Worker → coordinator → bridge)';
const SEQ2 = 'coordinator sequence v2 via bridge (2 round trips)';
const SEQ4 = 'coordinator sequence v1 via bridge (4 round trips)';
const SEQ3 = 'TRACKED.GET + SET NX GET + EVALSHA setkey via bridge';
const BRIDGE_GET_SET = 'GET + SET via bridge';
const DIY = 'DIY: a DO doing GET + SET over cloudflare:sockets (no bridge, no lock)';
const DIRECT = 'GET + SET via iovalkey (the raw commands)';

/** Runs `steps` for each key in turn (each command awaits the previous reply); per-key latencies and sub-batch means. */
async function perKey(keys: readonly string[], batchSize: number, steps: (key: string) => Promise<void>): Promise<{ latencies: number[]; batchMeans: number[] }> {
  const latencies: number[] = [];
  const batchMeans: number[] = [];
  let boundary = performance.now();
  for (let i = 0; i < keys.length; i++) {
    const t0 = performance.now();
    await steps(keys[i]!);
    const now = performance.now();
    latencies.push(now - t0);
    if ((i + 1) % batchSize === 0) {
      batchMeans.push((now - boundary) / batchSize);
      boundary = now;
    }
  }
  return { latencies, batchMeans };
}

async function run(ctx: BenchContext): Promise<BenchReport> {
  const server = await startValkeyServer();
  const bridge = await startBridgeChild(server.url, {}, 'miss');
  const redis = new Redis({ host: server.host, port: server.port, lazyConnect: true });
  let session: RespSession | undefined;
  let workers: BenchWorkers | undefined;
  try {
    await redis.connect();
    session = await RespSession.bridge(bridge.url, TEST_TOKEN);
    const s = session;
    workers = await startBenchWorkers(bridge.url, 'http://127.0.0.1:9/unused', [{ name: 'main', vars: { VALKEY_HOST: server.host, VALKEY_PORT: String(server.port) } }]);
    const w = workers;
    const prefix = randomPrefix('miss');
    const calls = ctx.quick ? 50 : 250;
    const batchSize = 25;
    const keysFor = (variant: string, round: number) => Array.from({ length: calls }, (_, i) => `${prefix}${variant}:${round}:${i}`);
    const id = newClientId();
    const value = (key: string) => `loaded:${key}`;
    const check = (reply: unknown, what: string) => {
      if (reply instanceof RespErrorReply) throw new Error(`${what}: ${reply.message}`);
      return reply;
    };
    const call = async (...command: Command) => check(await s.call(...command), String(command[0]));
    const coordinatorSteps = (readBack: boolean) => async (key: string) => {
      await call('TRACKED.GET', key, TTL_MS);
      if ((await call('SET', key, id, 'NX', 'GET', 'PX', TTL_MS)) !== null) throw new Error('the lock was taken');
      await call('EVALSHA', SCRIPT_SHA.setkey, 1, key, id, value(key), TTL_MS);
      if (readBack) await call('TRACKED.GET', key, TTL_MS);
    };
    // Protocol v2, as the coordinator sends it: read and lock in one message, then the tracked compare-and-set.
    const coordinatorV2 = async (key: string) => {
      const lockAndRead = new Uint8Array([...encodeCommand(['TRACKED.GET', key, TTL_MS]), ...encodeCommand(['SET', key, id, 'NX', 'GET', 'PX', TTL_MS])]);
      const [read, lock] = await s.send(lockAndRead, 2, true);
      check(read, 'TRACKED.GET');
      if (check(lock, 'SET') !== null) throw new Error('the lock was taken');
      const stored = check(await s.call('TRACKED.SETKEY', key, id, value(key), TTL_MS, TTL_MS), 'TRACKED.SETKEY');
      if (!Array.isArray(stored) || stored[0] !== true) throw new Error('TRACKED.SETKEY did not store');
    };
    const outcomes: Record<string, number> = {};
    const ticks: number[] = [];
    const latencies = new Map<string, number[]>();
    const nodeVariant = (name: string, tag: string, steps: (key: string) => Promise<void>): Variant => ({
      name,
      async run(round) {
        const result = await perKey(keysFor(tag, round), batchSize, steps);
        latencies.set(name, [...(latencies.get(name) ?? []), ...result.latencies]);
        return result.batchMeans;
      },
    });
    const variants: Variant[] = [
      {
        name: LIBRARY,
        async run(round) {
          const result = await runLoop(w, 'main', {
            op: 'get', loader: true, keys: keysFor('lib', round), concurrency: 1, ttlMs: TTL_MS,
            placement: { kind: 'coord', name: 'bench-miss' }, maxMs: 30_000, batchSize,
          });
          addOutcomes(outcomes, result.reply);
          addTicks(ticks, result.reply.ticks);
          if (result.reply.errors.length > 0) throw new Error(`library gets failed: ${result.reply.errors.join('; ')}`);
          return result.batchPerCallMs;
        },
      },
      {
        name: DIY,
        async run(round) {
          const result = await runLoop(w, 'main', {
            op: 'direct', loader: true, keys: keysFor('diy', round), concurrency: 1, ttlMs: TTL_MS,
            placement: { kind: 'coord', name: 'unused' }, namePrefix: 'bench-diy', maxMs: 30_000, batchSize,
          });
          if (result.reply.errors.length > 0) throw new Error(`DIY gets failed: ${result.reply.errors.join('; ')}`);
          return result.batchPerCallMs;
        },
      },
      nodeVariant(SEQ2, 'seq2', coordinatorV2),
      nodeVariant(SEQ4, 'seq4', coordinatorSteps(true)),
      nodeVariant(SEQ3, 'seq3', coordinatorSteps(false)),
      nodeVariant(BRIDGE_GET_SET, 'bgs', async (key) => {
        await call('GET', key);
        await call('SET', key, value(key), 'PX', TTL_MS);
      }),
      nodeVariant(DIRECT, 'direct', async (key) => {
        await redis.get(key);
        await redis.set(key, value(key), 'PX', TTL_MS);
      }),
    ];
    // Warm-up (untimed): the coordinator's socket and client id, the scripts, JIT.
    for (const v of variants) await v.run(1_000_000);
    for (const key of Object.keys(outcomes)) delete outcomes[key];
    ticks.length = 0;
    latencies.clear();
    const result = await alternate(variants, { rounds: ctx.quick ? 2 : 8, budgetMs: ctx.quick ? 8_000 : 30_000, onRound: (r) => ctx.log(`miss: round ${r + 1} done`) });
    const names = [LIBRARY, DIY, SEQ2, SEQ4, SEQ3, BRIDGE_GET_SET, DIRECT];
    const summary = (name: string) => summarize(result.samples.get(name)!);
    const lockPrice = pairedRatio(result, SEQ3, BRIDGE_GET_SET, (x) => x.mean);
    const libraryVsRaw = pairedRatio(result, LIBRARY, DIRECT, (x) => x.mean);
    return {
      name: 'miss',
      title: 'Miss path',
      method: [
        `Each round every variant fills ${calls} fresh keys one after another (100-byte-ish values, ttl ${TTL_MS / 1000} s); variants alternate in rotating order.`,
        'The library variant runs inside one Worker request (loop timed with Date.now() per sub-batch of 25 gets, ms-granular, so per-get time = sub-batch / 25). ' +
          'It pays: the RPC to the coordinator, TRACKED.GET with SET NX GET PX (the lock) in one message, the loader called back over RPC in the caller, and TRACKED.SETKEY (protocol v2: two bridge round trips).',
        'The Node variants send the same commands on one bridge session (or iovalkey connection), each awaiting the previous reply, timed with performance.now().',
        'Ratios are of mean time per key, median over rounds ("paired"). The price of the lock and compare-and-set = (TRACKED.GET + SET NX GET + EVALSHA) / (GET + SET), both through the bridge.',
      ],
      tables: [
        {
          title: 'Time per cold key (ms; sub-batches of 25 keys)',
          columns: [...LATENCY_COLUMNS, 'mean / iovalkey GET+SET', 'paired'],
          rows: names.map((name) => latencyRow(name, summary(name), ratio(summary(name).mean / summary(DIRECT).mean), ratio(pairedRatio(result, name, DIRECT, (x) => x.mean)))),
        },
        {
          title: 'Per-key latency (Node variants: performance.now(); library: Date.now() difference, whole ms)',
          columns: ['variant', 'keys', 'p50', 'p99', 'max', '> 1 ms'],
          rows: [
            [LIBRARY, ticks.reduce((a, b) => a + b, 0), `≤ ${tickPercentile(ticks, 50) + 1} ms`, `≤ ${tickPercentile(ticks, 99) + 1} ms`, `≤ ${tickPercentile(ticks, 100) + 1} ms`, `${(overOneMs(ticks) * 100).toFixed(1)} %`],
            ...[SEQ2, SEQ4, SEQ3, BRIDGE_GET_SET, DIRECT].map((name) => {
              const l = latencies.get(name) ?? [];
              const t = summarize(l);
              return [name, t.n, `${ms(t.p50)} ms`, `${ms(t.p99)} ms`, `${ms(t.max)} ms`, `${((l.filter((x) => x > 1).length / t.n) * 100).toFixed(1)} %`];
            }),
          ],
        },
      ],
      targets: [
        { target: 'report: price of the lock + compare-and-set (through the bridge) as a ratio', actual: `${ratio(lockPrice)} of GET + SET through the bridge`, met: null },
        { target: 'library cold get ≤ 8x raw GET + SET (iovalkey)', actual: `${ratio(libraryVsRaw)} (${ms(summary(LIBRARY).mean)} vs ${ms(summary(DIRECT).mean)} ms)`, met: libraryVsRaw <= 8 },
        { target: 'report: library cold get vs the DIY Durable Object (GET + SET over cloudflare:sockets)', actual: `${ratio(pairedRatio(result, LIBRARY, DIY, (x) => x.mean))} (${ms(summary(LIBRARY).mean)} vs ${ms(summary(DIY).mean)} ms)`, met: null },
        { target: 'report: protocol v2 sequence vs v1 (same commands\' work, 2 vs 4 round trips)', actual: `${ratio(pairedRatio(result, SEQ2, SEQ4, (x) => x.mean))}`, met: null },
      ],
      figures: {
        rounds: result.roundsRun,
        perKeyMs: Object.fromEntries(names.map((n) => [n, summary(n)])),
        nodeLatencyMs: Object.fromEntries([...latencies].map(([n, l]) => [n, summarize(l)])),
        libraryTicks: ticks,
        outcomes,
        pairedMeanRatios: {
          lockAndCasOverBridgeGetSet: lockPrice,
          sequence4OverBridgeGetSet: pairedRatio(result, SEQ4, BRIDGE_GET_SET, (x) => x.mean),
          sequence2OverSequence4: pairedRatio(result, SEQ2, SEQ4, (x) => x.mean),
          libraryOverSequence2: pairedRatio(result, LIBRARY, SEQ2, (x) => x.mean),
          bridgeGetSetOverDirect: pairedRatio(result, BRIDGE_GET_SET, DIRECT, (x) => x.mean),
          libraryOverSequence4: pairedRatio(result, LIBRARY, SEQ4, (x) => x.mean),
          libraryOverDirect: libraryVsRaw,
          libraryOverDiy: pairedRatio(result, LIBRARY, DIY, (x) => x.mean),
        },
      },
      notes: (outcomes.loaded ?? 0) === Object.values(outcomes).reduce((a, b) => a + b, 0) ? [] : [`not every library get loaded: ${JSON.stringify(outcomes)}`],
    };
  } finally {
    session?.close();
    redis.disconnect();
    await workers?.dispose().catch(() => undefined);
    await bridge.close();
    await server.stop();
  }
}

export const benchmark: Benchmark = { name: 'miss', aliases: ['miss-path'], title: 'Miss path', run };
