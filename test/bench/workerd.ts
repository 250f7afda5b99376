// Runs the bench Worker (bench-worker.mts, bundled with esbuild in memory) inside workerd via the plain Miniflare
// API: one or more copies with their own vars (e.g. one with the local cache off), each with its own coordinator
// class and the do-nothing BareObject. Requests go straight to each worker's loopback socket.
import { Log, LogLevel, Miniflare } from 'miniflare';
import { fileURLToPath } from 'node:url';
import { TEST_TOKEN } from '../support/bridge.ts';
import type { LoopReply, LoopRequest } from './worker-routes.ts';
import { bundleWorker } from '../support/miniflare.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ENTRY = `${ROOT}test/bench/bench-worker.mts`;
/** workerd 1.20260426 accepts compatibility dates up to 2026-05-03. */
const COMPATIBILITY_DATE = '2026-04-01';

export interface BenchWorkerSpec {
  readonly name: string;
  /** Extra vars, e.g. VALKEYASIDE_MAX_ENTRIES. */
  readonly vars?: Readonly<Record<string, string>>;
}

export interface BenchWorkers {
  /** POSTs `body` as JSON to `path` on worker `name`; bounded by `timeoutMs`. @throws on a non-2xx answer. */
  post<T>(name: string, path: string, body: unknown, timeoutMs?: number): Promise<T>;
  /** The DevTools protocol WebSocket of worker `name`'s isolate (its Durable Objects run in it too); needs `inspect`. */
  inspectorUrl(name: string): Promise<string>;
  dispose(): Promise<void>;
}

export interface BenchWorkersOptions {
  /** Open workerd's inspector (through Miniflare's proxy) for `inspectorUrl`, e.g. to take a CPU profile. */
  readonly inspect?: boolean;
}


/** Starts Miniflare with each spec as a worker bound to `bridgeUrl` and reporting markers to `markerUrl`. */
export async function startBenchWorkers(bridgeUrl: string, markerUrl: string, specs: readonly BenchWorkerSpec[], options: BenchWorkersOptions = {}): Promise<BenchWorkers> {
  const contents = await bundleWorker(ENTRY);
  const mf = new Miniflare({
    cf: false,
    ...(options.inspect === true ? { inspectorPort: 0 } : {}),
    log: new Log(process.env.MINIFLARE_LOG ? LogLevel.DEBUG : LogLevel.WARN),
    workers: specs.map((spec) => ({
      name: spec.name,
      modules: [{ type: 'ESModule' as const, path: `${ROOT}test/.tmp/bench-${spec.name}.mjs`, contents }],
      compatibilityDate: COMPATIBILITY_DATE,
      durableObjects: {
        CACHE_ASIDE: { className: 'CacheAsideCoordinator', useSQLite: true },
        BARE: { className: 'BareObject', useSQLite: true },
        DIRECT: { className: 'DirectObject', useSQLite: true },
      },
      bindings: { BRIDGE_URL: bridgeUrl, BRIDGE_TOKEN: TEST_TOKEN, MARKER_URL: markerUrl, ...spec.vars },
      unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }],
      unsafeInspectorProxy: options.inspect === true,
    })),
  });
  try {
    await mf.ready;
  } catch (err) {
    await mf.dispose().catch(() => undefined);
    throw err;
  }
  const urls = new Map<string, URL>();
  for (const spec of specs) urls.set(spec.name, await mf.unsafeGetDirectURL(spec.name));
  return {
    async post<T>(name: string, path: string, body: unknown, timeoutMs = 60_000): Promise<T> {
      const base = urls.get(name);
      if (base === undefined) throw new Error(`no bench worker named ${name}`);
      const res = await fetch(new URL(path, base), {
        method: 'POST',
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`bench worker ${name} answered ${res.status} for ${path}: ${text.slice(0, 500)}`);
      return JSON.parse(text) as T;
    },
    async inspectorUrl(name: string): Promise<string> {
      if (options.inspect !== true) throw new Error('startBenchWorkers: pass { inspect: true } to use the inspector');
      return `${String(await mf.getInspectorURL()).replace(/\/$/, '')}/${name}`;
    },
    dispose: () => mf.dispose(),
  };
}

/** What one `/loop` round gave, in per-call terms. */
export interface LoopRun {
  readonly reply: LoopReply;
  /** Loop wall time / calls (ms): the latency at concurrency 1, the inverse throughput above it. */
  readonly perCallMs: number;
  /** The same for each sub-batch of `batchSize` completions. */
  readonly batchPerCallMs: number[];
}

/** Posts one `/loop`. */
export async function runLoop(workers: BenchWorkers, worker: string, body: LoopRequest): Promise<LoopRun> {
  const reply = await workers.post<LoopReply>(worker, '/loop', body, body.maxMs + 30_000);
  return {
    reply,
    perCallMs: reply.calls > 0 ? reply.elapsedMs / reply.calls : NaN,
    batchPerCallMs: reply.batchMs.map((ms) => ms / body.batchSize),
  };
}

/** Adds `reply`'s outcome counts into `into`. */
export function addOutcomes(into: Record<string, number>, reply: LoopReply): void {
  for (const [outcome, n] of Object.entries(reply.outcomes)) into[outcome] = (into[outcome] ?? 0) + n;
}

/** Adds tick histogram `from` into `into`. */
export function addTicks(into: number[], from: readonly number[]): void {
  from.forEach((n, ms) => { into[ms] = (into[ms] ?? 0) + n; });
}

/** Percentile (0..100) of a tick histogram, in whole ms. */
export function tickPercentile(ticks: readonly number[], p: number): number {
  const total = ticks.reduce((a, b) => a + b, 0);
  if (total === 0) return NaN;
  const rank = Math.ceil((p / 100) * total);
  let seen = 0;
  for (let ms = 0; ms < ticks.length; ms++) {
    seen += ticks[ms] ?? 0;
    if (seen >= rank) return ms;
  }
  return ticks.length - 1;
}

/** Share of calls whose tick difference was ≥ 2 ms, i.e. that certainly took more than 1 ms. */
export function overOneMs(ticks: readonly number[]): number {
  const total = ticks.reduce((a, b) => a + b, 0);
  return total === 0 ? NaN : ticks.slice(2).reduce((a, b) => a + b, 0) / total;
}
