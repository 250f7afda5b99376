// Runs the test Worker (test/workers/test-worker.ts, bundled with esbuild in memory) inside workerd via the plain
// Miniflare API: one or more copies with their own vars (bridge, origin, VALKEYASIDE_*), each with its own DO.
import { build } from 'esbuild';
import { Log, LogLevel, Miniflare } from 'miniflare';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ENTRY = `${ROOT}test/workers/test-worker.ts`;
/** workerd 1.20260426 accepts compatibility dates up to 2026-05-03. */
const COMPATIBILITY_DATE = '2026-04-01';

export interface TestWorker {
  /** Worker name; the first one also answers `mf.dispatchFetch`. */
  readonly name: string;
  /** Bindings: BRIDGE_URL, BRIDGE_TOKEN, ORIGIN and any VALKEYASIDE_* setting. */
  readonly vars: Readonly<Record<string, string>>;
}

export interface WorkerHarness {
  readonly mf: Miniflare;
  /** GETs `path` (e.g. `/get?key=k`) on worker `name` (default: the first) and parses the JSON answer. */
  getJson<T = any>(path: string, name?: string): Promise<T>;
  dispose(): Promise<void>;
}

const bundles = new Map<string, Promise<string>>();

/** A Worker entry (absolute path) bundled as one ES module in memory, once per test process. */
export function bundleWorker(entry: string): Promise<string> {
  let bundled = bundles.get(entry);
  if (bundled === undefined) {
    bundled = build({
      entryPoints: [entry],
      bundle: true,
      format: 'esm',
      target: 'es2022',
      platform: 'neutral',
      external: ['cloudflare:*'],
      write: false,
      logLevel: 'silent',
    }).then((result) => result.outputFiles[0]!.text);
    bundles.set(entry, bundled);
  }
  return bundled;
}

/** The test Worker as one ES module, built once per test process. */
export function bundleTestWorker(): Promise<string> {
  return bundleWorker(ENTRY);
}

/** Starts Miniflare with each worker bound to its own CacheAsideCoordinator class as CACHE_ASIDE. */
export async function startTestWorkers(workers: readonly TestWorker[]): Promise<WorkerHarness> {
  if (workers.length === 0) throw new Error('startTestWorkers needs at least one worker');
  const contents = await bundleTestWorker();
  const mf = new Miniflare({
    cf: false,
    log: new Log(process.env.MINIFLARE_LOG ? LogLevel.DEBUG : LogLevel.WARN),
    workers: workers.map((worker) => ({
      name: worker.name,
      modules: [{ type: 'ESModule' as const, path: `${ROOT}test/.tmp/${worker.name}.mjs`, contents }],
      compatibilityDate: COMPATIBILITY_DATE,
      durableObjects: { CACHE_ASIDE: { className: 'CacheAsideCoordinator', useSQLite: true } },
      bindings: { ...worker.vars },
      // A loopback socket per worker, so Node can fetch any of them directly (dispatchFetch reaches the first only).
      unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }],
    })),
  });
  await mf.ready;
  const urls = new Map<string, URL>();
  for (const worker of workers) urls.set(worker.name, await mf.unsafeGetDirectURL(worker.name));
  return {
    mf,
    async getJson(path, name = workers[0]!.name) {
      const base = urls.get(name);
      if (base === undefined) throw new Error(`no test worker named ${name}`);
      const res = await fetch(new URL(path, base));
      const text = await res.text();
      try {
        return JSON.parse(text);
      } catch {
        throw new Error(`worker ${name} answered ${res.status} with non-JSON for ${path}: ${text.slice(0, 500)}`);
      }
    },
    dispose: () => mf.dispose(),
  };
}
