// The library-level chaos run: CacheAside and its coordinators in workerd (Miniflare), over the same fault-injectable
// bridge stack, the same workload and checker as the protocol-level run, plus coordinator aborts (ctx.abort), loader
// isolate death and, optionally, real Go valkeyaside clients on the same keys. Its mix has no bridge writes (no API).
import { quiesce, type ChaosRunConfig } from './bridge-chaos.ts';
import { startBridgeStack, type BridgeStack } from './bridge-stack.ts';
import { checkHistory, DEFAULT_CHECK_OPTIONS } from './checker.ts';
import { makeFault, runFaultLoop, type BridgeFault } from './faults.ts';
import { History } from './history.ts';
import { seededRandom } from './random.ts';
import { memorySnapshot, type ChaosReport } from './report.ts';
import { startGoClients, type GoClients } from './go-client.ts';
import { startWorkerStack, type WorkerStack } from './worker-stack.ts';
import { runWorkload } from './workload.ts';

export interface LibraryChaosConfig extends ChaosRunConfig {
  /** Share (0–1) of loader gets and dels run by real Go valkeyaside clients on the same keys. Default 0. */
  readonly goShare?: number;
}

const TTL_MS = 5_000;
const GET_TIMEOUT_MS = 2_000;
const DEFAULT_LANES = 8;
/**
 * Stale-while-revalidate gets: ttl + staleMs = TTL_MS, with a ttl so short that most values (dels and writes replace
 * each one within a few hundred ms here) are in a window when read, and dels and writes keep ending windows.
 */
const STALE_TTL_MS = 60;
const STALE_MS = TTL_MS - STALE_TTL_MS;
/** Go clients the environment starts: one per lane (see WorkloadConfig.goClients), for up to this many lanes. */
const GO_CLIENTS = 12;
/** The Go clients' marker ttl (the edge coordinators use 500 ms, worker-stack.ts). */
const GO_CLIENT_TTL_MS = 1_000;

/** A bridge stack and the Workers over it, shared by several runs (each with its own keys and History). */
export interface LibraryChaosEnv {
  readonly stack: BridgeStack;
  readonly workers: WorkerStack;
  /** Real Go valkeyaside clients on the stack's server, recording into `workers.history`. */
  readonly go: GoClients;
  close(): Promise<void>;
}

export async function startLibraryChaosEnv(): Promise<LibraryChaosEnv> {
  const stack = await startBridgeStack();
  let workers: WorkerStack | undefined;
  try {
    workers = await startWorkerStack(stack, new History());
    const w = workers;
    const go = await startGoClients(`${stack.server.host}:${stack.server.port}`, GO_CLIENTS, GO_CLIENT_TTL_MS, () => w.history);
    return { stack, workers, go, close: async () => { await go.close(); await w.close(); await stack.close(); } };
  } catch (error) {
    await workers?.close();
    await stack.close();
    throw error;
  }
}

/** One run; on its own environment unless `shared` is given. */
export async function runLibraryChaos(config: LibraryChaosConfig, shared?: LibraryChaosEnv): Promise<ChaosReport> {
  const seed = config.seed ?? Math.floor(Math.random() * 2 ** 31);
  const random = seededRandom(seed);
  const memoryBefore = memorySnapshot();
  const env = shared ?? (await startLibraryChaosEnv());
  const { stack, workers: w } = env;
  const history = new History();
  w.history = history;
  try {
    if (config.dataDelayMs) stack.dataProxy.setDelay('fromServer', config.dataDelayMs);
    const prefix = `lchaos:${seed.toString(36)}:`;
    const keys = Array.from({ length: config.keys ?? 4 }, (_, i) => `${prefix}k${i}`);
    const faults = config.faults.map((name) => makeFault(name, stack, history, {
      crashCoordinator: () => w.abortCoordinator(w.clients[Math.floor(random() * w.clients.length)]!, keys[Math.floor(random() * keys.length)]!),
      setLoaderStorm: (on) => w.setLoaderStorm(on),
      setLoaderDeath: (on) => w.setLoaderDeath(on),
    }, random));
    const startedAt = performance.now();
    const workload = runWorkload(history, {
      keys, clients: w.clients, direct: stack.direct, lanes: config.lanes ?? DEFAULT_LANES, goClients: env.go.clients, goShare: config.goShare, durationMs: config.durationMs, maxOps: config.maxOps,
      ttlMs: TTL_MS, getTimeoutMs: GET_TIMEOUT_MS, hungGraceMs: DEFAULT_CHECK_OPTIONS.hungGraceMs, random,
      mix: config.mix ?? { get: 30, many: 6, peek: 10, del: 14, bridgeWrite: 0, outsideWrite: 11, outsideDel: 5, swr: 24 },
      stale: { ttlMs: STALE_TTL_MS, staleMs: STALE_MS },
      loaders: { slow: 0.1, fail: 0.08, hang: 0.02 },
    });
    const injected = await runFaultLoop(history, {
      faults, untilAt: startedAt + config.durationMs * 0.8, holdMs: [100, 500], gapMs: [100, 400], random,
      waitRecovered: () => stack.waitReady(15_000),
    });
    await workload;
    stack.dataProxy.setDelay('fromServer', 0);
    w.setLoaderDeath(false);
    w.setLoaderStorm(false);
    await stack.waitReady(15_000);
    // Background refreshes may still be storing: the sweep compares coordinators with the server, so let them end.
    await w.waitIdle(keys, 15_000).catch(() => {});
    const quiescence = await quiesce(history, keys, w.clients, async (key) => stack.direct.get(key));
    const check = checkHistory(history, { ...DEFAULT_CHECK_OPTIONS, ...config.check });
    return {
      name: config.name, seed, durationMs: Math.round(performance.now() - startedAt), summary: history.summary(),
      faultsInjected: injected.length, check, quiescence, memoryBefore, memoryAfter: memorySnapshot(),
      extra: { epoch: stack.bridge.stats().epoch, bridgeSessions: stack.bridge.stats().sessions, ...opsByOrigin(history) },
    };
  } finally {
    if (!shared) await env.close();
  }
}

/** Gets and dels run by Go clients and by edge coordinators (the quiescence sweep is edge-only), and getMany keys answered. */
function opsByOrigin(history: History): { goOps: number; edgeOps: number; manyReads: number } {
  let goOps = 0;
  let edgeOps = 0;
  let manyReads = 0;
  for (const op of history.ops) {
    if (op.many && op.ok) manyReads++;
    if (op.kind !== 'get' && op.kind !== 'del') continue;
    if (op.client.startsWith('go/')) goOps++;
    else edgeOps++;
  }
  return { goOps, edgeOps, manyReads };
}
