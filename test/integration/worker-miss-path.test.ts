// The miss path's round trips, counted at the bridge (its message and command counters), not timed: a cold get inside
// workerd sends its tracked read, marker and lock in one message and stores with TRACKED.SETKEY in a second, and the
// stored value is then a local hit with no read-back. The same holds with the Lua lock. Through a proxy that hides
// protocol v2 from the bridge (as an older bridge would not select it), the coordinator stores the v1 way.
import { createServer, connect, type Server } from 'node:net';
import { Redis } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { bridgeCounters, countDelta, randomPrefix, startReadyBridge, TEST_TOKEN } from '../support/bridge.ts';
import { startTestWorkers, type WorkerHarness } from '../support/miniflare.ts';
import { startOrigin, type Origin } from '../support/origin.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

let server: ValkeyServer;
let bridge: Bridge;
let origin: Origin;
let workers: WorkerHarness;
let redis: Redis;
let oldBridge: Server;

/** Forwards to the bridge, offering it only v1 in the upgrade request: the bridge answers like a version-1 bridge. */
async function startV1Proxy(target: URL): Promise<{ server: Server; url: string }> {
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    let first = true;
    client.on('data', (chunk: Buffer) => {
      if (first) {
        first = false;
        chunk = Buffer.from(chunk.toString('latin1').replace('valkeyaside.v2, ', ''), 'latin1');
      }
      upstream.write(chunk);
    });
    upstream.pipe(client);
    const end = () => { client.destroy(); upstream.destroy(); };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { server, url: `${target.protocol}//127.0.0.1:${port}${target.pathname}` };
}

beforeAll(async () => {
  server = await startValkeyServer();
  bridge = await startReadyBridge(server.url);
  origin = await startOrigin();
  // No heartbeat PING and no marker refresh inside a test: every message the bridge counts is the get's own.
  const vars = { BRIDGE_URL: bridge.url, BRIDGE_TOKEN: TEST_TOKEN, ORIGIN: origin.url, VALKEYASIDE_HEARTBEAT_MS: '600000', VALKEYASIDE_CLIENT_TTL_MS: '600000' };
  const v1 = await startV1Proxy(new URL(bridge.url));
  oldBridge = v1.server;
  workers = await startTestWorkers([
    { name: 'main', vars },
    { name: 'lua', vars: { ...vars, VALKEYASIDE_USE_LUA_LOCK: 'true' } },
    { name: 'v1', vars: { ...vars, BRIDGE_URL: v1.url } },
  ]);
  redis = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 0 });
});

afterAll(async () => {
  redis?.disconnect();
  await workers?.dispose();
  oldBridge?.close();
  await origin?.close();
  await bridge?.close();
  await server?.stop();
});

const counters = () => bridgeCounters(bridge);

async function get(key: string, worker: string): Promise<{ value: unknown; outcome: string }> {
  const answer = await workers.getJson<{ ok: boolean; value: unknown; outcome: string; error?: { message: string } }>(`/get?key=${encodeURIComponent(key)}&ttl=60000`, worker);
  if (!answer.ok) throw new Error(`get failed: ${answer.error?.message}`);
  return answer;
}

describe('worker: the miss path in round trips', () => {
  for (const [worker, lock] of [['main', 'SET'], ['lua', 'EVALSHA']] as const) {
    it(`a cold get makes two bridge round trips and leaves a local copy (${worker})`, async () => {
      const key = `${randomPrefix(`cold-${worker}`)}k`;
      const before = await counters();
      const first = await get(key, worker);
      const after = await counters();
      expect(first.outcome).toBe('loaded');
      expect(await redis.get(key)).toBe(first.value);
      expect(after.messages - before.messages).toBeLessThanOrEqual(2);
      // One tracked read, the lock (the marker too on the coordinator's first lock), one TRACKED.SETKEY, no read-back.
      const sent = countDelta(after.commands, before.commands);
      expect(sent['TRACKED.GET']).toBe(1);
      expect(sent['TRACKED.SETKEY']).toBe(1);
      expect(sent[lock]).toBeGreaterThanOrEqual(1);

      const second = await get(key, worker);
      expect(second).toEqual({ ...second, value: first.value, outcome: 'hit' });
      expect((await counters()).messages).toBe(after.messages);
    });
  }

  it('stores with the setkey script and a tracked read-back when the bridge speaks only v1', async () => {
    const key = `${randomPrefix('cold-v1')}k`;
    const before = await counters();
    const first = await get(key, 'v1');
    const after = await counters();
    expect(first.outcome).toBe('loaded');
    expect(await redis.get(key)).toBe(first.value);
    const sent = countDelta(after.commands, before.commands);
    expect(sent['TRACKED.SETKEY']).toBeUndefined();
    expect(sent['EVALSHA']).toBe(1);
    // The first read and the read-back after the store.
    expect(sent['TRACKED.GET']).toBe(2);
    expect(await get(key, 'v1')).toEqual({ ...first, outcome: 'hit' });
  });

  it('drops the stored copy when another client writes the key', async () => {
    const key = `${randomPrefix('cold-write')}k`;
    const first = await get(key, 'main');
    expect(first.outcome).toBe('loaded');
    await redis.set(key, 'written-elsewhere');
    let latest = await get(key, 'main');
    for (let i = 0; i < 200 && latest.value !== 'written-elsewhere'; i++) latest = await get(key, 'main');
    expect(latest).toEqual({ ...latest, value: 'written-elsewhere', outcome: 'server-hit' });
  });
});
