// The bridge in front of a real Valkey Cluster (3 primaries + 3 replicas on loopback, one per file): routing to
// each key's primary, invalidations from every node, a slot migrated (ASK followed, then written on the new owner),
// a graceful failover, a killed primary and a restarted node, each without a stale cacheable read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { keySlot } from '../../bridge/cluster-slot.ts';
import { httpBase, randomPrefix, startReadyBridge, TEST_TOKEN } from '../support/bridge.ts';
import { errorText, RespWsClient, text, trackedGet, type Invalidation } from '../support/resp-ws-client.ts';
import { startValkeyCluster, type ClusterNode, type ValkeyCluster } from '../support/valkey-cluster.ts';

let cluster: ValkeyCluster;
let bridge: Bridge;
let client: RespWsClient;

beforeAll(async () => {
  cluster = await startValkeyCluster();
  bridge = await startReadyBridge(cluster.nodes[0]!.url, { cluster: true, clusterRefreshMs: 200 });
  client = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
}, 60_000);

afterAll(async () => {
  await client?.close();
  await bridge?.close();
  await cluster?.stop();
});

/** Skips pushes until one names `key` (a null push does not count); bounded. */
async function keyPush(c: RespWsClient, key: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const push = await c.nextPush(Math.max(1, deadline - Date.now()));
    if (push?.includes(key)) return;
  }
}

/** Skips pushes until one drops `key`: a null push or one naming it; bounded. */
async function dropped(c: RespWsClient, key: string, timeoutMs = 10_000): Promise<Invalidation> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const push = await c.nextPush(Math.max(1, deadline - Date.now()));
    if (push === null || push.includes(key)) return push;
  }
}

/** Discards the pushes already received. */
async function drain(c: RespWsClient): Promise<void> {
  while (c.unreadPushes > 0) await c.nextPush();
}

/** The epoch moved on and tracking is back on every primary: drains the flushes that came with it. */
async function settled(sinceEpoch: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (bridge.stats().epoch === sinceEpoch) {
    if (Date.now() > deadline) throw new Error('the bridge never noticed the topology change');
    await client.nextPush(Math.max(1, deadline - Date.now())).catch(() => undefined);
  }
  await bridge.waitUntilReady(20_000);
  await drain(client);
}

async function movedErrors(): Promise<number> {
  let total = 0;
  for (const node of cluster.running) {
    const info = String(await node.admin.info('errorstats'));
    total += Number(/errorstat_MOVED:count=(\d+)/.exec(info)?.[1] ?? 0);
  }
  return total;
}

/** Tracking works on `key`'s current primary: the read is cacheable and the second write there is pushed. */
async function expectTracked(key: string): Promise<void> {
  await cluster.set(key, 'again-1');
  // A node that tracked the key for an earlier read (an ASK read on the importing node) sends an invalidation for
  // this write, which may arrive while the next read is in flight and rightly make it uncacheable (the race rule):
  // read again, a bounded number of times; the late push went out ahead of that reply.
  let read = await trackedGet(client, key, 60_000);
  for (let attempt = 0; attempt < 3 && !read.cacheable; attempt++) read = await trackedGet(client, key, 60_000);
  expect(read).toEqual({ value: 'again-1', ttlMs: 60_000, cacheable: true });
  await drain(client);
  await cluster.set(key, 'again-2');
  await keyPush(client, key);
  expect((await trackedGet(client, key, 60_000)).value).toBe('again-2');
}

describe('bridge: Valkey Cluster', () => {
  it('routes every key to its primary (no MOVED) and reports each primary in /healthz and /metrics', async () => {
    const keys = await cluster.keyOnEach(randomPrefix('route'));
    expect(keys).toHaveLength(3);
    const before = await movedErrors();
    for (const key of keys) expect(await client.call('SET', key, `v:${key}`)).toEqual(expect.objectContaining({ value: 'OK' }));
    for (const key of keys) {
      expect(await trackedGet(client, key, 60_000)).toEqual({ value: `v:${key}`, ttlMs: 60_000, cacheable: true });
      expect(await (await cluster.owner(key)).admin.get(key)).toBe(`v:${key}`);
      expect(text(await client.call('GET', key))).toBe(`v:${key}`);
    }
    expect(await movedErrors()).toBe(before);

    const health = await (await fetch(`${httpBase(bridge)}/healthz`)).json() as { ok: boolean; nodes: Array<{ node: string; slots: number; tracking: boolean }> };
    expect(health.ok).toBe(true);
    const primaries = await cluster.primaries();
    expect(health.nodes.map((n) => n.node).sort()).toEqual(primaries.map((p) => `127.0.0.1:${p.port}`).sort());
    expect(health.nodes.every((n) => n.tracking)).toBe(true);
    expect(health.nodes.reduce((sum, n) => sum + n.slots, 0)).toBe(16384);
    const metrics = await bridge.metricsText();
    for (const p of primaries) expect(metrics).toContain(`bridge_valkey_node_tracking{node="127.0.0.1:${p.port}"} 1`);
  });

  it('pushes invalidations from writes on every primary, and writes through the bridge to other sessions', async () => {
    const keys = await cluster.keyOnEach(randomPrefix('inv'));
    const other = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
    try {
      for (const key of keys) {
        await cluster.set(key, 'v1');
        expect((await trackedGet(client, key, 60_000)).cacheable).toBe(true);
        expect((await trackedGet(other, key, 60_000)).cacheable).toBe(true);
      }
      for (const key of keys) {
        await cluster.set(key, 'v2');
        await keyPush(client, key);
      }
      for (const key of keys) {
        await client.call('SET', key, 'v3');
        await keyPush(other, key);
        expect((await trackedGet(other, key, 60_000)).value).toBe('v3');
      }
    } finally {
      await other.close();
    }
  });

  it('follows ASK during a slot migration and invalidates what was read on the old owner once the slot moved', async () => {
    const tag = `{${randomPrefix('mig')}}`;
    const present = `${tag}present`;
    const absent = `${tag}absent`;
    const slot = keySlot(present);
    const source = await cluster.owner(present);
    const target = (await cluster.primaries()).find((p) => p !== source)!;
    await cluster.set(present, 'v1');
    expect(await trackedGet(client, present, 60_000)).toMatchObject({ value: 'v1', cacheable: true });
    // A cached nil: MIGRATE moves no key for it, so only the topology change can invalidate it.
    expect(await trackedGet(client, absent, 60_000)).toMatchObject({ value: null, cacheable: true });
    await drain(client);
    const epoch = bridge.stats().epoch;

    await cluster.migrateSlot(slot, target, async () => {
      // Moved off the source: it answers -ASK; the bridge reads on the importing node, and never caches that.
      await dropped(client, present);
      expect(await trackedGet(client, present, 60_000)).toEqual({ value: 'v1', ttlMs: 0, cacheable: false });
    });
    // The slot changed owner: the cached nil must be dropped (by the drop-everything push of the topology change).
    expect(await dropped(client, absent)).toBeNull();
    await settled(epoch);
    await target.admin.set(absent, 'now-here');
    expect(await trackedGet(client, absent, 60_000)).toMatchObject({ value: 'now-here', cacheable: true });
    await expectTracked(present);
  });

  it('survives CLUSTER FAILOVER: no stale read, and tracking moves to the new primary (the second write is pushed)', async () => {
    const [key] = await cluster.keyOnEach(randomPrefix('fo'));
    const primary = await cluster.owner(key!);
    await cluster.set(key!, 'before');
    expect(await trackedGet(client, key!, 60_000)).toMatchObject({ value: 'before', cacheable: true });
    await drain(client);
    const epoch = bridge.stats().epoch;

    const promoted = await cluster.failover(primary);
    await promoted.admin.set(key!, 'after-1');
    await dropped(client, key!);
    await settled(epoch);
    expect(await trackedGet(client, key!, 60_000)).toEqual({ value: 'after-1', ttlMs: 60_000, cacheable: true });
    await promoted.admin.set(key!, 'after-2');
    await keyPush(client, key!);
    expect((await trackedGet(client, key!, 60_000)).value).toBe('after-2');
  });

  let killed: ClusterNode | undefined;

  it('survives a killed primary: a drop-everything push, TRYAGAIN or uncacheable meanwhile, gets resume on the promoted replica', async () => {
    const [key] = await cluster.keyOnEach(randomPrefix('kill'));
    const primary = await cluster.owner(key!);
    await cluster.set(key!, 'before');
    expect(await trackedGet(client, key!, 60_000)).toMatchObject({ value: 'before', cacheable: true });
    await drain(client);
    const epoch = bridge.stats().epoch;

    killed = primary;
    const promotion = cluster.killPrimary(primary);
    expect(await client.nextPush(10_000)).toBeNull();
    const during = await client.call('TRACKED.GET', key!, 60_000);
    if (Array.isArray(during)) expect(during[2]).toBe(false);
    else expect(errorText(during)).toMatch(/^TRYAGAIN/);
    const promoted = await promotion;
    await settled(epoch);
    expect(await trackedGet(client, key!, 60_000)).toEqual({ value: 'before', ttlMs: 60_000, cacheable: true });
    await promoted.admin.set(key!, 'after');
    await keyPush(client, key!);
    expect((await trackedGet(client, key!, 60_000)).value).toBe('after');
  });

  it('tracks a restarted node once it is a primary again (it rejoins as a replica, then takes over)', async () => {
    expect(killed).toBeDefined();
    await cluster.restart(killed!);
    const owners = await cluster.primaries();
    // The restarted node replicates the primary that replaced it; fail back to it.
    let current: ClusterNode | undefined;
    for (const p of owners) if ((await cluster.replicaOf(p).catch(() => undefined)) === killed) current = p;
    expect(current).toBeDefined();
    const epoch = bridge.stats().epoch;
    const back = await cluster.failover(current!);
    expect(back).toBe(killed);
    await settled(epoch);
    const keys = await cluster.keyOnEach(randomPrefix('back'));
    const onBack = [];
    for (const k of keys) if ((await cluster.owner(k)) === back) onBack.push(k);
    expect(onBack).toHaveLength(1);
    await expectTracked(onBack[0]!);
  });
});
