// The coordinator's life around its bridge socket, inside workerd: idle close (marker deleted), a dropped socket
// (Go's TestDisconnect: new client id, the waiter takes over, the old loader's compare-and-set fails), the bridge
// restarting under traffic (no stale reads after a completed del, every get settles), and connection errors.
import { Redis } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { randomPrefix, startReadyBridge, TEST_TOKEN, waitFor } from '../support/bridge.ts';
import { freePort } from '../support/free-port.ts';
import { startTestWorkers, type WorkerHarness } from '../support/miniflare.ts';
import { startOrigin, type Origin } from '../support/origin.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

const BRIDGE_OPTIONS = { shutdownGraceMs: 200 };

let server: ValkeyServer;
let bridge: Bridge;
let proxy: TcpProxy;
/** A second proxy for the half-open test, so black-holing it leaves the other workers alone. */
let halfOpenProxy: TcpProxy;
let origin: Origin;
let workers: WorkerHarness;
let redis: Redis;

beforeAll(async () => {
  server = await startValkeyServer();
  bridge = await startReadyBridge(server.url, BRIDGE_OPTIONS);
  proxy = await startTcpProxy(bridge.host, bridge.port);
  halfOpenProxy = await startTcpProxy(bridge.host, bridge.port);
  origin = await startOrigin();
  const common = { BRIDGE_TOKEN: TEST_TOKEN, ORIGIN: origin.url };
  workers = await startTestWorkers([
    // Through the proxy, so a test can cut its sockets; the default 10 s client ttl, so only a DEL removes a marker.
    { name: 'main', vars: { ...common, BRIDGE_URL: `ws://127.0.0.1:${proxy.port}/resp` } },
    { name: 'idle', vars: { ...common, BRIDGE_URL: bridge.url, VALKEYASIDE_IDLE_MS: '300', VALKEYASIDE_CLIENT_TTL_MS: '60000' } },
    { name: 'down', vars: { ...common, BRIDGE_URL: `ws://127.0.0.1:${await freePort()}/resp` } },
    { name: 'badtoken', vars: { ...common, BRIDGE_URL: bridge.url, BRIDGE_TOKEN: 'wrong-token-0123456789abcdef' } },
    { name: 'broken', vars: { ...common, BRIDGE_URL: 'redis://127.0.0.1:6379' } },
    { name: 'halfopen', vars: { ...common, BRIDGE_URL: `ws://127.0.0.1:${halfOpenProxy.port}/resp`,
      VALKEYASIDE_REPLY_TIMEOUT_MS: '300', VALKEYASIDE_CONNECT_TIMEOUT_MS: '300' } },
  ]);
  redis = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 0 });
});

afterAll(async () => {
  redis?.disconnect();
  await workers?.dispose();
  await origin?.close();
  await proxy?.close();
  await halfOpenProxy?.close();
  await bridge?.close();
  await server?.stop();
});

interface ErrorReport {
  name: string;
  message: string;
  code?: string;
  isTimeout: boolean;
}

type Answer = { ok: true; value: string | null; outcome: string } | { ok: false; error: ErrorReport };

function query(params: Record<string, string | number | boolean | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== false) search.set(name, value === true ? '1' : String(value));
  }
  return search.toString();
}

const get = (params: Record<string, string | number | boolean | undefined>, worker = 'main') =>
  workers.getJson<Answer>(`/get?${query(params)}`, worker);
const del = (params: Record<string, string | number | undefined>, worker = 'main') =>
  workers.getJson<{ ok: boolean; error?: ErrorReport }>(`/del?${query(params)}`, worker);
const ping = (params: Record<string, string | number | boolean | undefined>, worker: string) =>
  workers.getJson<{ ok: boolean; error?: ErrorReport }>(`/ping?${query(params)}`, worker);
const stats = (params: Record<string, string | undefined>, worker = 'main') =>
  workers.getJson<{ clientId: string | null; connected: boolean; waitingGets: number; entries: number }>(`/stats?${query(params)}`, worker);

describe('worker lifecycle: idle close (Go TestCloseCleanup)', () => {
  it('an idle coordinator deletes its marker, closes its socket, and comes back on the next get', async () => {
    const key = randomPrefix('idle') + 'k';
    expect(await get({ key, ttl: 30_000 }, 'idle')).toMatchObject({ ok: true, value: 'v:1', outcome: 'loaded' });
    const { clientId } = await stats({ key }, 'idle');
    expect(clientId).toMatch(/^valkeyid:[0-9a-f]{24}$/);
    // The marker's ttl is 60 s: only the idle close can remove it this soon.
    await waitFor(async () => (await redis.exists(clientId!)) === 0, 'the idle coordinator to delete its marker', 10_000, 25);
    await waitFor(async () => !(await stats({ key }, 'idle')).connected, 'the idle coordinator to close its socket', 5_000, 25);
    expect((await stats({ key }, 'idle')).entries).toBe(0);
    expect(await get({ key, ttl: 30_000, loader: '0' }, 'idle')).toEqual({ ok: true, value: 'v:1', outcome: 'server-hit' });
  });
});

describe('worker lifecycle: a dropped bridge connection (Go TestDisconnect)', () => {
  it('replaces the client id; the waiter takes over the abandoned lock and the old loader is not cached', async () => {
    const prefix = randomPrefix('disconnect');
    const key = `${prefix}k`;
    const coord = `${prefix}c`;
    origin.script(key, { hang: true });
    const first = get({ key, ttl: 15_000, coord });
    await origin.waitForLoads(key, 1);
    const oldId = await redis.get(key);
    expect(oldId).toMatch(/^valkeyid:[0-9a-f]{24}$/);
    expect(await redis.exists(oldId!)).toBe(1);

    const second = get({ key, ttl: 15_000, coord });
    await waitFor(async () => (await stats({ coord })).waitingGets === 1, 'the second get to wait on the lock', 10_000, 20);
    proxy.cutAll();

    // The new socket deletes the old marker, so the waiter sees the holder gone and loads v:2 under the new id.
    expect(await second).toEqual({ ok: true, value: 'v:2', outcome: 'took-over' });
    const newId = (await stats({ coord })).clientId;
    expect(newId).toMatch(/^valkeyid:[0-9a-f]{24}$/);
    expect(newId).not.toBe(oldId);
    expect(await redis.exists(oldId!)).toBe(0);
    expect(await redis.exists(newId!)).toBe(1);

    origin.release(key);
    expect(await first).toEqual({ ok: true, value: 'v:1', outcome: 'not-cached' });
    expect(await get({ key, ttl: 15_000, coord, loader: '0' })).toMatchObject({ ok: true, value: 'v:2' });
    expect(await redis.get(key)).toBe('v:2');
  });
});

describe('worker lifecycle: a null push (FLUSHALL)', () => {
  it('empties the local cache, wakes every waiter and replaces the client id', async () => {
    const prefix = randomPrefix('flush');
    const [key, locked, coord] = [`${prefix}k`, `${prefix}locked`, `${prefix}c`];
    expect(await get({ key, ttl: 30_000, coord })).toMatchObject({ ok: true, value: 'v:1', outcome: 'loaded' });
    expect(await get({ key, ttl: 30_000, coord, loader: '0' })).toMatchObject({ ok: true, value: 'v:1', outcome: 'hit' });
    const before = await stats({ coord });
    expect(before.clientId).toMatch(/^valkeyid:[0-9a-f]{24}$/);

    // A get parked on a lock held by some other client (placeholder and live marker written directly).
    const marker = `valkeyid:${'ab'.repeat(12)}`;
    await redis.set(marker, '', 'PX', 30_000);
    await redis.set(locked, marker, 'PX', 30_000);
    const parked = get({ key: locked, ttl: 30_000, coord });
    await waitFor(async () => (await stats({ coord })).waitingGets === 1, 'a get to wait on the lock', 10_000, 20);

    await redis.flushall();
    expect(await parked).toEqual({ ok: true, value: 'v:1', outcome: 'loaded' });
    expect(await get({ key, ttl: 30_000, coord, loader: '0' })).toEqual({ ok: true, value: null, outcome: 'miss' });
    expect(await get({ key, ttl: 30_000, coord })).toMatchObject({ ok: true, value: 'v:2', outcome: 'loaded' });
    const after = await stats({ coord });
    expect(after.clientId).toMatch(/^valkeyid:[0-9a-f]{24}$/);
    expect(after.clientId).not.toBe(before.clientId);
  });
});

describe('worker lifecycle: the bridge restarting during traffic', () => {
  it('never serves a value older than a completed del, and every get settles with a value or a typed error', async () => {
    const prefix = randomPrefix('restart');
    const keys = [0, 1, 2, 3].map((i) => `${prefix}k${i}`);
    let seq = 0;
    /** Per key: [completion sequence, origin loads when the del started]; a later get must see a newer version. */
    const dels = new Map<string, Array<[number, number]>>(keys.map((k) => [k, []]));
    const violations: string[] = [];
    const errors = new Map<string, number>();
    let completed = 0;
    let phase: 'up' | 'down' | 'back' | 'done' = 'up';
    let completedWhileDown = 0;

    const floorAt = (key: string, startedAt: number) =>
      Math.max(0, ...dels.get(key)!.filter(([doneAt]) => doneAt < startedAt).map(([, loads]) => loads));

    const loop = async (worker: number) => {
      let random = worker + 1;
      for (let i = 0; i < 400 && phase !== 'done'; i++) {
        random = (random * 1103515245 + 12345) % 2147483648;
        const key = keys[(random >>> 16) % keys.length]!;
        if ((random >>> 24) % 4 === 0) {
          const loadsAtStart = origin.loads(key);
          const answer = await del({ key });
          if (answer.ok) dels.get(key)!.push([++seq, loadsAtStart]);
          else errors.set(answer.error!.name, (errors.get(answer.error!.name) ?? 0) + 1);
        } else {
          const startedAt = ++seq;
          const answer = await get({ key, ttl: 2_000 });
          if (answer.ok && answer.value !== null) {
            const version = Number(answer.value.slice(2));
            const floor = floorAt(key, startedAt);
            if (version <= floor) violations.push(`${key}: got ${answer.value} (${answer.outcome}) after a del that saw ${floor} loads`);
          } else if (!answer.ok) {
            errors.set(answer.error.name, (errors.get(answer.error.name) ?? 0) + 1);
          }
        }
        completed++;
        if (phase === 'down') completedWhileDown++;
      }
    };

    const restart = async () => {
      await waitFor(() => completed >= 40, 'some traffic before the restart', 20_000, 10);
      const port = bridge.port;
      phase = 'down';
      await bridge.close();
      await waitFor(() => completedWhileDown >= 20, 'traffic while the bridge is down', 20_000, 10);
      bridge = await startReadyBridge(server.url, { ...BRIDGE_OPTIONS, port });
      phase = 'back';
      const resumedAt = completed;
      await waitFor(() => completed >= resumedAt + 60, 'traffic after the restart', 20_000, 10);
      phase = 'done';
    };

    await Promise.all([restart(), ...[0, 1, 2, 3, 4, 5].map(loop)]);
    expect(violations).toEqual([]);
    expect(errors.get('ConnectionError') ?? 0).toBeGreaterThan(0);
    for (const name of errors.keys()) expect(['ConnectionError', 'TimeoutError']).toContain(name);
    // After the restart the cache works again for every key.
    for (const key of keys) expect(await get({ key, ttl: 2_000 })).toMatchObject({ ok: true });
  });
});

describe('worker lifecycle: connection and configuration errors', () => {
  it('an unreachable bridge fails gets and pings with a ConnectionError', async () => {
    const key = randomPrefix('down') + 'k';
    const answer = await get({ key, ttl: 5_000 }, 'down');
    expect(answer).toMatchObject({ ok: false, error: { name: 'ConnectionError', code: 'ERR_CONNECTION' } });
    expect(!answer.ok && answer.error.message).toMatch(/cannot reach the bridge at http:\/\/127\.0\.0\.1:\d+\/resp|bridge unavailable/);
    expect(await ping({ coord: 'down' }, 'down')).toMatchObject({ ok: false, error: { name: 'ConnectionError' } });
    expect(origin.loads(key)).toBe(0);
  });

  it('a wrong token is a ConnectionError that says to check BRIDGE_TOKEN', async () => {
    const answer = await ping({ coord: 'badtoken' }, 'badtoken');
    expect(answer).toMatchObject({ ok: false, error: { name: 'ConnectionError' } });
    expect(answer.error!.message).toMatch(/refused the WebSocket upgrade with HTTP 401 \(check BRIDGE_TOKEN\)/);
  });

  it('invalid env vars are reported with the variable name, by fromEnv and by the coordinator', async () => {
    const message = 'BRIDGE_URL must start with ws://, wss://, http:// or https://; got "redis://127.0.0.1:6379"';
    expect(await get({ key: 'k', ttl: 1_000 }, 'broken')).toEqual({ ok: false, error: expect.objectContaining({ name: 'TypeError', message }) });
    const raw = await ping({ raw: true }, 'broken');
    expect(raw.ok).toBe(false);
    expect(raw.error!.message).toContain(message);
  });

  it('a half-open socket (no replies, no close) is replaced, and gets work again once the bridge answers', async () => {
    const prefix = randomPrefix('half-open');
    const [key, other, coord] = [`${prefix}k`, `${prefix}other`, `${prefix}c`];
    expect(await get({ key, coord, ttl: 10_000 }, 'halfopen')).toMatchObject({ ok: true, value: 'v:1', outcome: 'loaded' });
    halfOpenProxy.blackhole(true);
    // Nothing says the socket is dead yet, so the local copy is still served.
    expect(await get({ key, coord, ttl: 10_000, loader: '0' }, 'halfopen')).toMatchObject({ ok: true, value: 'v:1', outcome: 'hit' });
    // A read gets no reply: the watchdog drops the socket, the retry cannot connect through the black hole.
    const answer = await get({ key: other, coord, ttl: 5_000 }, 'halfopen');
    expect(answer).toMatchObject({ ok: false, error: { name: 'ConnectionError' } });
    expect(await stats({ coord }, 'halfopen')).toMatchObject({ connected: false, entries: 0 });
    halfOpenProxy.blackhole(false);
    halfOpenProxy.cutAll();
    await waitFor(async () => (await ping({ coord }, 'halfopen')).ok, 'the coordinator to reconnect', 10_000, 50);
    expect(await get({ key, coord, ttl: 10_000, loader: '0' }, 'halfopen')).toMatchObject({ ok: true, value: 'v:1', outcome: 'server-hit' });
    expect(origin.loads(other)).toBe(0);
  });

  it('the bridge being reachable again makes ping succeed', async () => {
    expect(await ping({}, 'main')).toEqual({ ok: true });
  });
});
