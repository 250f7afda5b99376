// Issue 13, Valkey Cluster behind the bridge, in one run: the hit and miss round trips through a bridge on one node
// against a cluster-mode bridge on 3 primaries, and pipelined throughput with one bridge process against two, on
// each (cluster-throughput.ts); the same hit and miss through CacheAside in workerd (cluster-library.ts).
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { TEST_TOKEN, randomPrefix } from '../support/bridge.ts';
import { startValkeyCluster, type ValkeyCluster } from '../support/valkey-cluster.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';
import { RespErrorReply, encodeCommand, type RespValue } from '../../shared/resp/index.ts';
import { newClientId } from '../../shared/valkeyaside.ts';
import { startBridgeChild, type BridgeChild } from './bridge-process.ts';
import { measureLibrary } from './cluster-library.ts';
import { measureThroughput, openSetups, type Backend, type ThroughputShape } from './cluster-throughput.ts';
import { RespSession } from './resp-session.ts';
import {
  LATENCY_COLUMNS, alternate, bytes, latencyRow, pairedRatio, ratio, summarize,
  type BenchContext, type BenchReport, type Benchmark, type Table, type Variant,
} from './stats.ts';

const ONE_NODE = 'one node';
const CLUSTER = 'cluster (3 primaries)';
const VALUE = 'v'.repeat(100);
const TTL_MS = 600_000;
const PRIMARIES = 3;

const check = (reply: RespValue, what: string): RespValue => {
  if (reply instanceof RespErrorReply) throw new Error(`${what}: ${reply.message}`);
  return reply;
};

/** A present key read through the bridge: what the coordinator sends when its local copy is gone. */
const hit = (s: RespSession) => async (key: string) => {
  check(await s.call('TRACKED.GET', key, TTL_MS), 'TRACKED.GET');
};

/** The coordinator's cold get (protocol v2): read and lock in one message, then the tracked compare-and-set. */
const miss = (s: RespSession, id: string) => async (key: string) => {
  const lockAndRead = Buffer.concat([encodeCommand(['TRACKED.GET', key, TTL_MS]), encodeCommand(['SET', key, id, 'NX', 'GET', 'PX', TTL_MS])]);
  const [read, lock] = await s.send(lockAndRead, 2, true);
  check(read!, 'TRACKED.GET');
  if (check(lock!, 'SET') !== null) throw new Error('the lock was taken');
  const stored = check(await s.call('TRACKED.SETKEY', key, id, `loaded:${key}`, TTL_MS, TTL_MS), 'TRACKED.SETKEY');
  if (!Array.isArray(stored) || stored[0] !== true) throw new Error('TRACKED.SETKEY did not store');
};

/** Each key in turn, one awaited at a time; per-key latencies (ms). */
async function sequential(keys: readonly string[], step: (key: string) => Promise<void>): Promise<number[]> {
  const latencies: number[] = [];
  for (const key of keys) {
    const t0 = performance.now();
    await step(key);
    latencies.push(performance.now() - t0);
  }
  return latencies;
}

/** Bridge heap per session: after two GCs, before and after opening `n` sessions (the sessions are closed again). */
async function heapPerSession(bridge: BridgeChild, n: number): Promise<number> {
  const before = await bridge.memory();
  const sessions = await Promise.all(Array.from({ length: n }, () => RespSession.bridge(bridge.url, TEST_TOKEN)));
  const after = await bridge.memory();
  for (const s of sessions) s.close();
  return (after.heapUsed - before.heapUsed) / n;
}

async function run(ctx: BenchContext): Promise<BenchReport> {
  const opened: Array<{ stop(): Promise<void> } | BridgeChild> = [];
  const sessions: RespSession[] = [];
  try {
    const server: ValkeyServer = await startValkeyServer();
    opened.push(server);
    const cluster: ValkeyCluster = await startValkeyCluster({ primaries: PRIMARIES, replicas: 0 });
    opened.push(cluster);
    const bridge = async (url: string, cluster: boolean, label: string) => {
      const child = await startBridgeChild(url, cluster ? { cluster: true } : {}, label);
      opened.push(child);
      return child;
    };
    const backends: Backend[] = [
      { name: ONE_NODE, bridges: [await bridge(server.url, false, 'cluster-node-a'), await bridge(server.url, false, 'cluster-node-b')], serverPids: [server.pid] },
      {
        name: CLUSTER,
        bridges: [await bridge(cluster.seedUrls, true, 'cluster-3p-a'), await bridge(cluster.seedUrls, true, 'cluster-3p-b')],
        serverPids: cluster.nodes.map((n) => n.server.pid),
      },
    ];
    const prefix = randomPrefix('clb');
    const id = newClientId();
    const hitKeys = Array.from({ length: 256 }, (_, i) => `${prefix}hit:${i}`);
    const tgetKeys = Array.from({ length: 1_000 }, (_, i) => `${prefix}tget:${i}`);
    // SET keys are never read with TRACKED.GET: a write to a tracked key would add a push storm to the SET figures.
    const setKeys = Array.from({ length: 1_000 }, (_, i) => `${prefix}set:${i}`);
    const latency = new Map<string, RespSession>();
    for (const backend of backends) {
      const s = await RespSession.bridge(backend.bridges[0].url, TEST_TOKEN);
      sessions.push(s);
      latency.set(backend.name, s);
      await s.send(RespSession.encode([...hitKeys, ...tgetKeys].map((k) => ['SET', k, VALUE])), hitKeys.length + tgetKeys.length);
      if (s.errors > 0) throw new Error(`preloading ${backend.name} failed: ${s.lastError}`);
    }

    // Part 1: sequential round trips, one session per backend, the four variants alternating.
    const hitsPerRound = ctx.quick ? 100 : 500;
    const missesPerRound = ctx.quick ? 40 : 200;
    const variants: Variant[] = [];
    for (const backend of backends) {
      const s = latency.get(backend.name)!;
      variants.push({ name: `hit, ${backend.name}`, run: () => sequential(Array.from({ length: hitsPerRound }, (_, i) => hitKeys[i % hitKeys.length]!), hit(s)) });
      variants.push({
        name: `miss, ${backend.name}`,
        run: (round) => sequential(Array.from({ length: missesPerRound }, (_, i) => `${prefix}miss:${round}:${i}`), miss(s, id)),
      });
    }
    // Warm-up: JIT and the cluster bridge's slot map, untimed.
    for (const v of variants) await v.run(-1);
    const result = await alternate(variants, {
      rounds: ctx.quick ? 2 : 8,
      budgetMs: ctx.quick ? 3_000 : 20_000,
      onRound: (r) => ctx.log(`cluster latency: round ${r + 1} done`),
    });
    const latencyTable: Table = {
      title: `Hit (TRACKED.GET) and miss (TRACKED.GET + SET NX GET PX, then TRACKED.SETKEY) round trips, 1 session (${result.roundsRun} alternating rounds)`,
      columns: [...LATENCY_COLUMNS, 'paired p50 / one node', 'paired p99 / one node'],
      rows: variants.map((v) => {
        const [path] = v.name.split(',');
        const base = `${path}, ${ONE_NODE}`;
        const isBase = v.name === base;
        return latencyRow(v.name, summarize(result.samples.get(v.name)!),
          isBase ? '' : ratio(pairedRatio(result, v.name, base)), isBase ? '' : ratio(pairedRatio(result, v.name, base, (s) => s.p99)));
      }),
    };
    for (const s of sessions.splice(0)) s.close();

    // Part 1b: the same paths through CacheAside in workerd.
    const library = await measureLibrary(ctx, backends.map((b) => ({ name: b.name, bridgeUrl: b.bridges[0].url })), prefix, ONE_NODE);

    // Part 2: throughput, one bridge vs two, one node vs the cluster.
    const shape: ThroughputShape = {
      sessions: 32, depth: 32, windowMs: ctx.quick ? 300 : 800, rounds: ctx.quick ? 2 : 6, budgetMs: ctx.quick ? 6_000 : 30_000,
    };
    const heap = new Map(await Promise.all(backends.map(async (b) => [b.name, await heapPerSession(b.bridges[0], 200)] as const)));
    const idle = await Promise.all(backends.flatMap((b) => b.bridges.map((br) => br.memory())));
    const setups = await openSetups(backends, shape);
    for (const setup of setups) sessions.push(...setup.sessions);
    const tget = await measureThroughput(ctx, 'TRACKED.GET', setups, tgetKeys, shape);
    const set = await measureThroughput(ctx, 'SET', setups, setKeys, shape);
    const costTable: Table = {
      title: 'Memory per bridge and per session (bridge process, after two forced GCs)',
      columns: ['backend', 'bridge RSS (idle, MiB)', 'bridge heap (idle, MiB)', 'heap per session (200 opened)'],
      rows: backends.map((b, i) => [b.name, (idle[i * 2]!.rss / 2 ** 20).toFixed(1), (idle[i * 2]!.heapUsed / 2 ** 20).toFixed(1), bytes(heap.get(b.name)!)]),
    };
    return {
      name: 'cluster',
      title: 'Valkey Cluster behind the bridge',
      method: [
        `Backends: one valkey-server, and a ${PRIMARIES}-primary cluster (no replicas, so no replication traffic in the figures) behind cluster-mode bridges (cluster: true).`,
        'Two bridge processes per backend (each its own Node child process); the load generator is this process. Everything shares the machine\'s cores.',
        'Hit = TRACKED.GET of a present key (the bridge hop of a get whose local copy is gone; a CacheAside hit is served in workerd and never reaches the bridge, ' +
          'so it costs the same on both backends by construction). Miss = the coordinator\'s v2 cold get: TRACKED.GET + SET NX GET PX in one message, then TRACKED.SETKEY.',
        `Throughput: ${shape.sessions} sessions, each sending ${shape.depth} commands per message in a closed loop; with 2 bridges the same sessions are split 16 + 16. ` +
          'CPU per command = the process\'s user + system time (/proc/<pid>/stat, 10 ms ticks) over the commands it served; "cores busy" = all three over wall time.',
        'All variants alternate in rotating order; "paired" = median over rounds of the per-round ratio.',
      ],
      tables: [latencyTable, library.table, tget.table, set.table, costTable],
      targets: [],
      figures: {
        latencyMs: Object.fromEntries(variants.map((v) => [v.name, summarize(result.samples.get(v.name)!)])),
        libraryMs: library.figures,
        trackedGet: tget.figures,
        set: set.figures,
        heapPerSessionBytes: Object.fromEntries(heap),
        idleBridges: idle,
      },
      // Other work on the machine takes cores from this run: the 1-minute load average says how much.
      notes: [`load average at the end (1, 5, 15 min): ${loadavg().map((l) => l.toFixed(2)).join(', ')} on this machine's cores`],
    };
  } finally {
    for (const s of sessions) s.close();
    for (const thing of opened.reverse()) await ('stop' in thing ? thing.stop() : thing.close()).catch(() => undefined);
  }
}

export const benchmark: Benchmark = { name: 'cluster', aliases: ['valkey-cluster', 'cluster-bench'], title: 'Valkey Cluster behind the bridge', run };
