// The Lua lock (VALKEYASIDE_USE_LUA_LOCK, Go's UseLuaLock) on the servers it exists for: Redis 6.0, which has client
// tracking but refuses `SET ... NX GET`. Go valkeyaside's LL test variants, ported (TestCacheFilledLL, TestCacheDelLL,
// TestClientRefreshLL, TestCloseCleanupLL, TestDisconnectLL, TestOverrideCacheTTLLL,
// TestOverrideCacheTTLNegativeCachingLL), the typed nil/del/ttl-override cases, and the error without the Lua lock.
import { Redis } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { randomPrefix, startReadyBridge, TEST_TOKEN, waitFor } from '../support/bridge.ts';
import { startTestWorkers, type WorkerHarness } from '../support/miniflare.ts';
import { startOrigin, type Origin } from '../support/origin.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

const CLIENT_TTL_MS = 1_000;

let server: ValkeyServer;
let bridge: Bridge;
/** Between the 'll' worker and the bridge, so TestDisconnectLL can cut its socket. */
let proxy: TcpProxy;
let origin: Origin;
let workers: WorkerHarness;
let redis: Redis;

beforeAll(async () => {
  server = await startValkeyServer({ server: 'redis-6.0' });
  bridge = await startReadyBridge(server.url);
  proxy = await startTcpProxy(bridge.host, bridge.port);
  origin = await startOrigin();
  const common = { BRIDGE_TOKEN: TEST_TOKEN, ORIGIN: origin.url, VALKEYASIDE_CLIENT_TTL_MS: String(CLIENT_TTL_MS) };
  workers = await startTestWorkers([
    { name: 'll', vars: { ...common, BRIDGE_URL: `ws://127.0.0.1:${proxy.port}/resp`, VALKEYASIDE_USE_LUA_LOCK: 'true' } },
    { name: 'idle', vars: { ...common, BRIDGE_URL: bridge.url, VALKEYASIDE_USE_LUA_LOCK: 'true', VALKEYASIDE_IDLE_MS: '300', VALKEYASIDE_CLIENT_TTL_MS: '60000' } },
    { name: 'nolua', vars: { ...common, BRIDGE_URL: bridge.url } },
  ]);
  redis = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 0 });
});

afterAll(async () => {
  redis?.disconnect();
  await workers?.dispose();
  await origin?.close();
  await proxy?.close();
  await bridge?.close();
  await server?.stop();
});

type Answer =
  | { ok: true; value: unknown; outcome: string }
  | { ok: false; error: { name: string; code?: string; message: string } };

type Params = Record<string, string | number | boolean | undefined>;

function query(params: Params): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== false) search.set(name, value === true ? '1' : String(value));
  }
  return search.toString();
}

const get = (params: Params, worker = 'll') => workers.getJson<Answer>(`/get?${query(params)}`, worker);
const del = (params: Params, worker = 'll') => workers.getJson<{ ok: boolean }>(`/del?${query(params)}`, worker);
const stats = (params: Params, worker = 'll') =>
  workers.getJson<{ clientId: string | null; connected: boolean; waitingGets: number; entries: number }>(`/stats?${query(params)}`, worker);

function valueOf(answer: Answer): unknown {
  if (!answer.ok) throw new Error(`expected a value, got ${answer.error.name}: ${answer.error.message}`);
  return answer.value;
}

describe('Lua lock on Redis 6.0', () => {
  it('runs on a server older than 7.0 (the point of the Lua lock)', async () => {
    const info = await redis.info('server');
    expect(info).toMatch(/redis_version:6\.0\./);
  });

  it('without the Lua lock, the first lock attempt fails saying to turn VALKEYASIDE_USE_LUA_LOCK on', async () => {
    const key = `${randomPrefix('nolua')}k`;
    const answer = await get({ key, ttl: 5_000 }, 'nolua');
    expect(answer.ok).toBe(false);
    if (answer.ok) return;
    expect(answer.error).toMatchObject({ name: 'ValkeyasideError', code: 'ERR_LOCK_UNSUPPORTED' });
    expect(answer.error.message).toContain('VALKEYASIDE_USE_LUA_LOCK=true');
    expect(origin.loads(key)).toBe(0);
  });

  it('fills a miss, serves the local copy, and misses after the ttl (TestCacheFilledLL)', async () => {
    const key = `${randomPrefix('filled')}k`;
    expect(await get({ key, ttl: 400 })).toMatchObject({ ok: true, value: 'v:1', outcome: 'loaded' });
    expect(await redis.get(key)).toBe('v:1');
    // Under load the store's own invalidation can overtake the read-back and drop the fresh copy (a safe extra read):
    // then the next read fills it.
    const next = await get({ key, ttl: 400, loader: '0' });
    expect(next).toMatchObject({ ok: true, value: 'v:1' });
    if (next.ok && next.outcome !== 'hit') expect(await get({ key, ttl: 400, loader: '0' })).toEqual({ ok: true, value: 'v:1', outcome: 'hit' });
    await waitFor(async () => valueOf(await get({ key, ttl: 400, loader: '0' })) === null, 'the value to expire', 5_000, 25);
    expect(origin.loads(key)).toBe(1);
  });

  it('del removes the key; another coordinator drops its copy on the push (TestCacheDelLL)', async () => {
    const prefix = randomPrefix('del');
    const key = `${prefix}k`;
    const [a, b] = [`${prefix}a`, `${prefix}b`];
    expect(await get({ key, ttl: 10_000, coord: a })).toMatchObject({ value: 'v:1', outcome: 'loaded' });
    expect(await get({ key, ttl: 10_000, coord: b, loader: '0' })).toMatchObject({ value: 'v:1', outcome: 'server-hit' });
    expect(await del({ key, coord: a })).toEqual({ ok: true });
    expect(await get({ key, ttl: 10_000, coord: a, loader: '0' })).toEqual({ ok: true, value: null, outcome: 'miss' });
    await waitFor(async () => valueOf(await get({ key, ttl: 10_000, coord: b, loader: '0' })) === null, 'coordinator b to drop its copy', 5_000, 20);
    expect(await get({ key, ttl: 10_000, coord: b })).toMatchObject({ value: 'v:2', outcome: 'loaded' });
  });

  it('refreshes the marker while a slow loader runs, past the client ttl (TestClientRefreshLL)', async () => {
    const key = `${randomPrefix('refresh')}k`;
    origin.script(key, { hang: true });
    const pending = get({ key, ttl: 8_000 });
    await origin.waitForLoads(key);
    const id = await redis.get(key);
    expect(id).toMatch(/^valkeyid:[0-9a-f]{24}$/);
    const started = Date.now();
    await waitFor(async () => {
      expect(await redis.exists(id!)).toBe(1);
      return Date.now() - started > 2.5 * CLIENT_TTL_MS;
    }, 'two and a half client ttls', 10_000, 100);
    origin.release(key);
    expect(await pending).toEqual({ ok: true, value: 'v:1', outcome: 'loaded' });
  });

  it('an idle coordinator deletes its marker and closes its socket (TestCloseCleanupLL)', async () => {
    const key = `${randomPrefix('idle')}k`;
    expect(await get({ key, ttl: 30_000 }, 'idle')).toMatchObject({ ok: true, value: 'v:1', outcome: 'loaded' });
    const { clientId } = await stats({ key }, 'idle');
    expect(clientId).toMatch(/^valkeyid:[0-9a-f]{24}$/);
    await waitFor(async () => (await redis.exists(clientId!)) === 0, 'the idle coordinator to delete its marker', 10_000, 25);
    await waitFor(async () => !(await stats({ key }, 'idle')).connected, 'the idle coordinator to close its socket', 5_000, 25);
  });

  it('a dropped socket replaces the client id; the waiter takes over and the old load is not cached (TestDisconnectLL)', async () => {
    const prefix = randomPrefix('disconnect');
    const key = `${prefix}k`;
    const coord = `${prefix}c`;
    origin.script(key, { hang: true });
    const first = get({ key, ttl: 15_000, coord });
    await origin.waitForLoads(key, 1);
    const oldId = await redis.get(key);
    const second = get({ key, ttl: 15_000, coord });
    await waitFor(async () => (await stats({ coord })).waitingGets === 1, 'the second get to wait on the lock', 10_000, 20);
    proxy.cutAll();
    expect(await second).toEqual({ ok: true, value: 'v:2', outcome: 'took-over' });
    expect((await stats({ coord })).clientId).not.toBe(oldId);
    expect(await redis.exists(oldId!)).toBe(0);
    origin.release(key);
    expect(await first).toEqual({ ok: true, value: 'v:1', outcome: 'not-cached' });
    expect(await redis.get(key)).toBe('v:2');
  });

  it('a loader lengthens the ttl of what it returns (TestOverrideCacheTTLLL)', async () => {
    const key = `${randomPrefix('override')}k`;
    expect(await get({ key, ttl: 1_000, ttlOverride: 60_000 })).toMatchObject({ ok: true, value: 'v:1', outcome: 'loaded' });
    expect(await redis.pttl(key)).toBeGreaterThan(1_000);
  });

  it('a not-found is cached briefly with a shorter ttl (TestOverrideCacheTTLNegativeCachingLL)', async () => {
    const key = `${randomPrefix('negative')}k`;
    origin.script(key, { status: 404 });
    expect(await get({ key, ttl: 60_000, negTtl: 300 })).toMatchObject({ ok: true, value: '_nil_', outcome: 'loaded' });
    const pttl = await redis.pttl(key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(300);
    expect(await get({ key, ttl: 60_000, negTtl: 300, loader: '0' })).toMatchObject({ value: '_nil_', outcome: 'hit' });
    await waitFor(async () => valueOf(await get({ key, ttl: 60_000, loader: '0' })) === null, 'the negative entry to expire', 5_000, 25);
  });
});

describe('Lua lock on Redis 6.0: typed values (Go TestTypedCacheAsideClient_*)', () => {
  it('a miss without a loader is null, not a SerializationError (typed nil)', async () => {
    const key = `${randomPrefix('typed-nil')}k`;
    expect(await get({ key, ttl: 5_000, typed: true, loader: '0' })).toEqual({ ok: true, value: null, outcome: 'miss' });
  });

  it('round-trips a typed value, and a del makes the next get load again (typed del)', async () => {
    const key = `${randomPrefix('typed-del')}k`;
    origin.script(key, { body: '{"n":1}' }, { body: '{"n":2}' });
    expect(await get({ key, ttl: 10_000, typed: true })).toEqual({ ok: true, value: { n: 1 }, outcome: 'loaded' });
    // Cached (locally, or on the server if the store's own invalidation overtook the read-back): not loaded again.
    expect(await get({ key, ttl: 10_000, typed: true })).toMatchObject({ ok: true, value: { n: 1 } });
    expect(origin.loads(key)).toBe(1);
    expect(await del({ key })).toEqual({ ok: true });
    expect(await get({ key, ttl: 10_000, typed: true })).toEqual({ ok: true, value: { n: 2 }, outcome: 'loaded' });
  });

  it('a typed loader overrides the ttl of what it stores (typed ttl override)', async () => {
    const key = `${randomPrefix('typed-ttl')}k`;
    origin.script(key, { body: '{"n":1}' });
    expect(await get({ key, ttl: 1_000, typed: true, ttlOverride: 60_000 })).toMatchObject({ ok: true, value: { n: 1 } });
    expect(await redis.pttl(key)).toBeGreaterThan(1_000);
  });
});
