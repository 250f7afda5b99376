// `npm run test:go`: runs the Go interop suite (test/interop/go, the real valkey-go valkeyaside) against a real
// server, a real bridge and the interop Worker's coordinators in workerd, three times: default locks, UseLuaLock on
// both sides, and default locks on a Valkey Cluster behind a cluster-mode bridge. Serves the Go tests a small control API (hold/release/count the edge loader's origin, restart workerd).
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import Valkey from 'iovalkey';
import { Log, LogLevel, Miniflare } from 'miniflare';
import { ROOT, TEST_TOKEN, startReadyBridge } from '../support/bridge.ts';
import { bundleWorker } from '../support/miniflare.ts';
import { startOrigin, type Origin } from '../support/origin.ts';
import { startValkeyCluster } from '../support/valkey-cluster.ts';
import { startValkeyServer, type ServerPackageName } from '../support/valkey-server.ts';

const GO_DIR = fileURLToPath(new URL('./go/', import.meta.url));
const ENTRY = fileURLToPath(new URL('./interop-worker.mts', import.meta.url));
/** The edge's marker ttl: short, so a dead coordinator's lock is taken over quickly. */
const EDGE_CLIENT_TTL_MS = 1_000;
/** One leg's whole `go test` run, the build included. */
const GO_TEST_TIMEOUT_MS = 300_000;

interface Leg {
  readonly name: string;
  readonly useLuaLock: boolean;
  /** A pinned server package to run the leg on; else the default binary. */
  readonly server?: ServerPackageName;
  /** A 3+3 Valkey Cluster behind a cluster-mode bridge; Go's client gets one seed and finds the rest. */
  readonly cluster?: boolean;
}

const LEGS: readonly Leg[] = [
  { name: 'default locks', useLuaLock: false },
  { name: 'UseLuaLock on both sides', useLuaLock: true, server: 'redis-6.0' },
  { name: 'cluster (default locks)', useLuaLock: false, cluster: true },
];

/** Two Workers, each with its own coordinator namespace: every key has two edge copies. */
async function startWorkers(vars: Record<string, string>): Promise<{ mf: Miniflare; urls: string[] }> {
  const contents = await bundleWorker(ENTRY);
  const names = ['edge-a', 'edge-b'];
  const mf = new Miniflare({
    cf: false,
    log: new Log(process.env.MINIFLARE_LOG ? LogLevel.DEBUG : LogLevel.WARN),
    workers: names.map((name) => ({
      name,
      modules: [{ type: 'ESModule' as const, path: `${ROOT}test/.tmp/${name}.mjs`, contents }],
      compatibilityDate: '2026-04-01',
      durableObjects: { CACHE_ASIDE: { className: 'CacheAsideCoordinator', useSQLite: true } },
      bindings: vars,
      unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }],
    })),
  });
  await mf.ready;
  const urls = [];
  for (const name of names) urls.push(String(await mf.unsafeGetDirectURL(name)).replace(/\/$/, ''));
  return { mf, urls };
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** The control API the Go tests call; `workers` is replaced by /restart-workers. */
async function startControl(origin: Origin, workers: { current: { mf: Miniflare; urls: string[] } }, vars: Record<string, string>) {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://control');
    const key = url.searchParams.get('key') ?? '';
    void (async () => {
      switch (url.pathname) {
        case '/hold': origin.script(key, { hang: true }); return answer(res, 200, { ok: true });
        case '/release': origin.release(key); return answer(res, 200, { ok: true });
        case '/loads': return answer(res, 200, { loads: origin.loads(key) });
        case '/wait-loads':
          await origin.waitForLoads(key, Number(url.searchParams.get('n') ?? 1), Number(url.searchParams.get('timeoutMs') ?? 10_000));
          return answer(res, 200, { loads: origin.loads(key) });
        case '/workers': return answer(res, 200, { urls: workers.current.urls });
        case '/restart-workers':
          // The edge's coordinators die with workerd: their locks stay until their markers expire.
          await workers.current.mf.dispose();
          workers.current = await startWorkers(vars);
          return answer(res, 200, { urls: workers.current.urls });
        default: return answer(res, 404, { error: `no route ${url.pathname}` });
      }
    })().catch((error: unknown) => answer(res, 500, { error: String(error) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function runGoTest(env: Record<string, string>): Promise<number> {
  const args = ['test', '-count=1', '-timeout', `${Math.floor(GO_TEST_TIMEOUT_MS / 1000) - 10}s`, ...(process.env.GO_TEST_ARGS ?? '-v').split(' ').filter(Boolean), './...'];
  const child = spawn('go', args, { cwd: GO_DIR, env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), GO_TEST_TIMEOUT_MS);
  return new Promise((resolve) => {
    child.once('error', (error) => { console.error(`interop: cannot run go (${error.message}); install Go >= 1.25`); resolve(1); });
    child.once('exit', (code, signal) => { clearTimeout(timer); resolve(code ?? (signal ? 1 : 0)); });
  });
}

/** `valkey 8.0.1` / `redis 6.0.16`: which server a leg really ran against. */
async function serverVersion(url: string): Promise<string> {
  const client = new Valkey(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    const info = await client.info('server');
    const valkey = /^valkey_version:(.+)$/m.exec(info)?.[1];
    return valkey ? `valkey ${valkey.trim()}` : `redis ${/^redis_version:(.+)$/m.exec(info)?.[1]?.trim()}`;
  } finally {
    client.disconnect();
  }
}

async function runLeg(leg: Leg): Promise<number> {
  // INTEROP_VALKEY_URL: a server already running (e.g. one you want checked), used as is and left running.
  const given = process.env.INTEROP_VALKEY_URL;
  const cluster = leg.cluster && given === undefined ? await startValkeyCluster() : null;
  const server = cluster
    ? { url: cluster.nodes[0]!.url, host: '127.0.0.1', port: cluster.nodes[0]!.port, stop: () => cluster.stop() }
    : given !== undefined
      ? { url: given, host: new URL(given).hostname, port: Number(new URL(given).port || 6379), stop: async () => {} }
      : await startValkeyServer({ server: leg.server });
  const cleanup: Array<() => Promise<unknown>> = [() => server.stop()];
  try {
    const bridge = await startReadyBridge(cluster ? cluster.seedUrls : server.url, leg.cluster ? { cluster: true } : {});
    cleanup.unshift(() => bridge.close());
    const origin = await startOrigin();
    cleanup.unshift(() => origin.close());
    const vars = {
      BRIDGE_URL: bridge.url, BRIDGE_TOKEN: TEST_TOKEN, ORIGIN: origin.url,
      VALKEYASIDE_CLIENT_TTL_MS: String(EDGE_CLIENT_TTL_MS), VALKEYASIDE_USE_LUA_LOCK: String(leg.useLuaLock),
    };
    const workers = { current: await startWorkers(vars) };
    cleanup.unshift(() => workers.current.mf.dispose());
    const control = await startControl(origin, workers, vars);
    cleanup.unshift(() => new Promise((resolve) => { control.server.closeAllConnections(); control.server.close(resolve); }));
    console.log(`interop: ${leg.name}: ${await serverVersion(server.url)} at ${server.url}, bridge ${bridge.url}, workers ${workers.current.urls.join(' ')}`);
    return await runGoTest({
      INTEROP_VALKEY_ADDR: `${server.host}:${server.port}`,
      INTEROP_CONTROL_URL: control.url,
      INTEROP_USE_LUA_LOCK: String(leg.useLuaLock),
      INTEROP_EDGE_CLIENT_TTL_MS: String(EDGE_CLIENT_TTL_MS),
      INTEROP_SERVER: leg.server ?? 'default',
    });
  } finally {
    for (const step of cleanup) await step().catch((error: unknown) => console.error(`interop: cleanup: ${String(error)}`));
  }
}

/** Builds the Go module once up front, so a missing Go or an unreachable module fails with one clear message. */
function buildGo(): Promise<boolean> {
  const child = spawn('go', ['build', './...'], { cwd: GO_DIR, stdio: ['ignore', 'inherit', 'inherit'] });
  return new Promise((resolve) => {
    child.once('error', (error) => { console.error(`interop: cannot run go (${error.message}): install Go >= 1.25`); resolve(false); });
    child.once('exit', (code) => {
      if (code !== 0) {
        console.error('interop: test/interop/go does not build: it needs Go >= 1.25 and the modules in its go.mod ' +
          '(github.com/valkey-io/valkey-go v1.0.55, whose valkeyaside package is the one tested) from the Go module proxy (GOPROXY)');
      }
      resolve(code === 0);
    });
  });
}

if (!(await buildGo())) process.exit(1);
const only = process.env.INTEROP_LEG;
let failed = 0;
for (const leg of LEGS) {
  if (only !== undefined && !leg.name.startsWith(only)) continue;
  const code = await runLeg(leg);
  console.log(`interop: ${leg.name}: ${code === 0 ? 'PASS' : `FAIL (go test exited ${code})`}`);
  if (code !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
