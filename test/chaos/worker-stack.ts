// The library-level chaos harness: the chaos Worker (test/chaos/worker/chaos-worker.ts) bundled like
// test/support/miniflare.ts does and run in workerd by Miniflare, as several Workers (each its own Durable Object
// namespace) over a BridgeStack; the chaos origin its loaders fetch (it names each value and records when it was
// computed); and ChaosClient adapters, one per (Worker, coordinator family), for the workload.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Log, LogLevel, Miniflare } from 'miniflare';
import type { BridgeStack } from './bridge-stack.ts';
import { uniqueValue, type History } from './history.ts';
import type { ChaosClient, LoaderPlan } from './workload.ts';
import { bundleWorker } from '../support/miniflare.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ENTRY = `${ROOT}test/chaos/worker/chaos-worker.ts`;
const COMPATIBILITY_DATE = '2026-04-01';

export interface WorkerStack {
  readonly clients: readonly ChaosClient[];
  /** Where the origin records computed values (swap it between runs that share the stack). */
  history: History;
  /** Resolves once no coordinator of `keys` runs a get or a background refresh (bounded by `timeoutMs`). */
  waitIdle(keys: readonly string[], timeoutMs: number): Promise<void>;
  /** Resets (ctx.abort) the coordinator a client uses for `key`. */
  abortCoordinator(client: ChaosClient, key: string): Promise<void>;
  /** While on, gets' HTTP requests are cut by the test while their loader runs: the calling isolate's request dies. */
  setLoaderDeath(on: boolean): void;
  /** While on, loaders are slow and often fail. */
  setLoaderStorm(on: boolean): void;
  close(): Promise<void>;
}


/** `/load?key&op&delay&fail&ttl`: computes (records) a unique value for op at once and answers it after `delay` ms, or 500. */
async function startOrigin(recorder: () => History): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://origin');
    const key = url.searchParams.get('key') ?? '';
    const op = Number(url.searchParams.get('op'));
    const delayMs = Number(url.searchParams.get('delay') || 0);
    // The value is read ("computed") at once; the delay is the rest of the loader's work (transfer, processing).
    const fail = url.searchParams.get('fail') === '1';
    const value = uniqueValue(key, 'L', op);
    if (!fail) recorder().recordLoad(key, value, op, Number(url.searchParams.get('ttl') || 5_000));
    const answer = () => {
      if (res.destroyed) return;
      if (fail) res.writeHead(500).end('loader failure');
      else res.writeHead(200, { 'content-type': 'text/plain' }).end(value);
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export async function startWorkerStack(stack: BridgeStack, history: History, options: { workers?: number; families?: readonly string[] } = {}): Promise<WorkerStack> {
  let current = history;
  const origin = await startOrigin(() => current);
  const names = Array.from({ length: options.workers ?? 2 }, (_, i) => `w${i}`);
  const families = options.families ?? ['a', 'b'];
  const contents = await bundleWorker(ENTRY);
  const mf = new Miniflare({
    cf: false,
    log: new Log(process.env.MINIFLARE_LOG ? LogLevel.DEBUG : LogLevel.NONE),
    workers: names.map((name) => ({
      name,
      modules: [{ type: 'ESModule' as const, path: `${ROOT}test/.tmp/chaos-${name}.mjs`, contents }],
      compatibilityDate: COMPATIBILITY_DATE,
      durableObjects: { CACHE_ASIDE: { className: 'ChaosCoordinator', useSQLite: true } },
      bindings: {
        BRIDGE_URL: stack.clientUrl, BRIDGE_TOKEN: stack.token, ORIGIN: origin.url,
        VALKEYASIDE_CLIENT_TTL_MS: '500', VALKEYASIDE_REPLY_TIMEOUT_MS: '1000', VALKEYASIDE_HEARTBEAT_MS: '250', VALKEYASIDE_CONNECT_TIMEOUT_MS: '1000',
      },
      unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }],
    })),
  });
  await mf.ready;
  const bases = new Map<string, URL>();
  for (const name of names) bases.set(name, await mf.unsafeGetDirectURL(name));
  const modes = { death: false, storm: false };

  const call = async (worker: string, path: string, params: Record<string, string | number>, signal?: AbortSignal) => {
    const url = new URL(path, bases.get(worker));
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, String(v));
    const res = await fetch(url, { signal });
    return (await res.json()) as { ok: boolean; value?: string | null; outcome?: string; error?: { name: string; code?: string; message: string } };
  };
  const failure = (error: { name: string; code?: string; message: string }) =>
    Object.assign(new Error(error.message), { name: error.name, code: error.code });

  const clients: ChaosClient[] = [];
  const homes = new Map<ChaosClient, { worker: string; prefix: string }>();
  for (const worker of names) {
    for (const prefix of families) {
      const client: ChaosClient = {
        name: `${worker}/${prefix}`,
        swr: true,
        async get(op, ttlMs, plan, timeoutMs, staleMs) {
          let effective: LoaderPlan | null = plan;
          if (plan && modes.storm) effective = { delayMs: plan.delayMs + 150, fail: plan.fail || Math.random() < 0.3 };
          const kill = plan !== null && modes.death && Math.random() < 0.5;
          if (kill) effective = { delayMs: 300, fail: false };
          const controller = new AbortController();
          const timer = kill ? setTimeout(() => controller.abort(new Error('loader isolate killed')), 100) : undefined;
          try {
            const answer = await call(worker, '/get', {
              key: op.key, ttl: ttlMs, timeout: timeoutMs, op: op.id, prefix,
              // Half the stale-while-revalidate gets refresh under waitUntil, half before answering (no ctx).
              ...(staleMs ? { stale: staleMs, ...(op.id % 2 === 0 ? { noCtx: 1 } : {}) } : {}),
              ...(effective ? { delay: effective.delayMs, fail: effective.fail ? 1 : 0 } : { loader: 0 }),
            }, controller.signal);
            if (!answer.ok) throw failure(answer.error!);
            return { value: answer.value ?? null, outcome: answer.outcome! };
          } finally {
            clearTimeout(timer);
          }
        },
        async getMany(ops, ttlMs, plan, timeoutMs) {
          const effective = modes.storm ? { delayMs: plan.delayMs + 150, fail: plan.fail || Math.random() < 0.3 } : plan;
          const answer = await call(worker, '/many', {
            keys: JSON.stringify(ops.map((op) => op.key)), ops: JSON.stringify(ops.map((op) => op.id)), ttl: ttlMs, timeout: timeoutMs, prefix,
            delay: effective.delayMs, fail: effective.fail ? 1 : 0,
          }) as { ok: boolean; results?: Array<{ value: string | null; outcome: string }>; error?: { name: string; code?: string; message: string } };
          if (!answer.ok) throw failure(answer.error!);
          return answer.results!;
        },
        async del(key, timeoutMs) {
          const answer = await call(worker, '/del', { key, timeout: timeoutMs, prefix });
          if (!answer.ok) throw failure(answer.error!);
        },
      };
      clients.push(client);
      homes.set(client, { worker, prefix });
    }
  }
  return {
    clients,
    get history() { return current; },
    set history(next: History) { current = next; },
    async waitIdle(keys, timeoutMs) {
      const until = performance.now() + timeoutMs;
      for (;;) {
        const answers = await Promise.all([...homes.values()].flatMap((home) =>
          keys.map((key) => call(home.worker, '/busy', { key, prefix: home.prefix }) as Promise<{ ok: boolean; activeGets?: number }>)));
        if (answers.every((a) => a.ok && a.activeGets === 0)) return;
        if (performance.now() > until) throw new Error(`coordinators still busy after ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async abortCoordinator(client, key) {
      const home = homes.get(client)!;
      await call(home.worker, '/abort', { key, prefix: home.prefix });
    },
    setLoaderDeath(on) { modes.death = on; },
    setLoaderStorm(on) { modes.storm = on; },
    async close() {
      await mf.dispose();
      await origin.close();
    },
  };
}
