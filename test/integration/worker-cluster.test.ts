// CacheAside inside workerd (Miniflare) through a cluster-mode bridge to a real Valkey Cluster (3 primaries + 3
// replicas): loads, locks, markers and both lock forms route by key; writes on every primary invalidate the
// Worker's copies; after CLUSTER FAILOVER the Worker serves the new primary's writes (the second one too).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { randomPrefix, startReadyBridge, TEST_TOKEN, waitFor } from '../support/bridge.ts';
import { startTestWorkers, type WorkerHarness } from '../support/miniflare.ts';
import { startOrigin, type Origin } from '../support/origin.ts';
import { startValkeyCluster, type ValkeyCluster } from '../support/valkey-cluster.ts';

let cluster: ValkeyCluster;
let bridge: Bridge;
let origin: Origin;
let workers: WorkerHarness;

beforeAll(async () => {
  cluster = await startValkeyCluster();
  bridge = await startReadyBridge(cluster.seedUrls, { cluster: true, clusterRefreshMs: 200 });
  origin = await startOrigin();
  const vars = { BRIDGE_URL: bridge.url, BRIDGE_TOKEN: TEST_TOKEN, ORIGIN: origin.url, VALKEYASIDE_CLIENT_TTL_MS: '1000' };
  workers = await startTestWorkers([
    { name: 'main', vars },
    { name: 'lua', vars: { ...vars, VALKEYASIDE_USE_LUA_LOCK: 'true' } },
  ]);
}, 90_000);

afterAll(async () => {
  await workers?.dispose();
  await origin?.close();
  await bridge?.close();
  await cluster?.stop();
});

type Answer = { ok: true; value: unknown; outcome: string } | { ok: false; error: { name: string; message: string } };

function get(params: Record<string, string | number>, worker = 'main'): Promise<Answer> {
  const search = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]));
  return workers.getJson<Answer>(`/get?${search}`, worker);
}

async function valueOf(key: string, coord: string): Promise<unknown> {
  const answer = await get({ key, ttl: 60_000, loader: '0', coord });
  if (!answer.ok) return `error: ${answer.error.message}`;
  return answer.value;
}

describe('worker through a cluster-mode bridge', () => {
  for (const worker of ['main', 'lua']) {
    it(`loads a key on every primary, its lock and marker on their own slots (${worker === 'lua' ? 'Lua lock' : 'SET NX GET'})`, async () => {
      const prefix = randomPrefix(`route-${worker}`);
      const keys = await cluster.keyOnEach(prefix);
      expect(new Set(await Promise.all(keys.map(async (k) => (await cluster.owner(k)).port))).size).toBe(3);
      for (const key of keys) {
        expect(await get({ key, ttl: 60_000, coord: prefix }, worker)).toMatchObject({ ok: true, value: 'v:1', outcome: 'loaded' });
        expect(await (await cluster.owner(key)).admin.get(key)).toBe('v:1');
        expect(await get({ key, ttl: 60_000, loader: '0', coord: prefix }, worker)).toMatchObject({ ok: true, value: 'v:1' });
      }
      const { clientId } = await workers.getJson<{ clientId: string | null }>(`/stats?coord=${encodeURIComponent(prefix)}`, worker);
      expect(clientId).toMatch(/^valkeyid:/);
      // The marker lives on whichever primary owns its own slot.
      expect(await (await cluster.owner(clientId!)).admin.exists(clientId!)).toBe(1);
      for (const key of keys) expect(origin.loads(key)).toBe(1);
    });
  }

  it('drops the copy when another client writes the key on any primary', async () => {
    const prefix = randomPrefix('inv');
    const keys = await cluster.keyOnEach(prefix);
    for (const key of keys) {
      expect(await get({ key, ttl: 60_000, coord: prefix })).toMatchObject({ value: 'v:1' });
      await waitFor(async () => (await get({ key, ttl: 60_000, loader: '0', coord: prefix })).ok, 'a local copy');
    }
    for (const key of keys) await cluster.set(key, `external:${key}`);
    for (const key of keys) await waitFor(async () => (await valueOf(key, prefix)) === `external:${key}`, `the write on ${key}'s primary to be seen`);
  });

  it('after CLUSTER FAILOVER serves the new primary\'s writes, the second one too, and loads there', async () => {
    const prefix = randomPrefix('fo');
    const [key] = await cluster.keyOnEach(prefix);
    expect(await get({ key: key!, ttl: 60_000, coord: prefix })).toMatchObject({ value: 'v:1' });
    expect(await get({ key: key!, ttl: 60_000, loader: '0', coord: prefix })).toMatchObject({ value: 'v:1' });

    const promoted = await cluster.failover(await cluster.owner(key!));
    await promoted.admin.set(key!, 'after-1');
    await waitFor(async () => (await valueOf(key!, prefix)) === 'after-1', 'the first write on the new primary to be seen', 15_000);
    await bridge.waitUntilReady(15_000);
    // Read it again through tracking on the new primary, then write there once more: only tracking there can tell.
    await waitFor(async () => {
      const answer = await get({ key: key!, ttl: 60_000, loader: '0', coord: prefix });
      return answer.ok && answer.outcome === 'hit';
    }, 'a local copy of after-1', 15_000);
    await promoted.admin.set(key!, 'after-2');
    await waitFor(async () => (await valueOf(key!, prefix)) === 'after-2', 'the second write on the new primary to be seen', 15_000);

    const fresh = `${prefix}fresh`;
    expect(await get({ key: fresh, ttl: 60_000, coord: prefix })).toMatchObject({ ok: true, value: 'v:1', outcome: 'loaded' });
  });
});
