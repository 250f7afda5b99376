// The read/invalidation race (notes §2.1): the data connection goes through a proxy that holds Valkey's replies
// until the test releases them, while the subscriber connects directly, so an invalidation provably reaches the
// bridge while the read's reply is still on its way. No timing is involved: every step waits on an event.
import { Redis } from 'iovalkey';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { SCRIPT_SHA } from '../../shared/valkeyaside.ts';
import { randomPrefix, startReadyBridge, TEST_TOKEN, waitFor } from '../support/bridge.ts';
import { RespWsClient, text, trackedGet } from '../support/resp-ws-client.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

let server: ValkeyServer;
let proxy: TcpProxy;
let bridge: Bridge;
let writer: Redis;
let client: RespWsClient;

beforeAll(async () => {
  server = await startValkeyServer();
  proxy = await startTcpProxy(server.host, server.port);
  bridge = await startReadyBridge(proxy.url, { subscriberUrl: server.url });
  writer = new Redis({ host: server.host, port: server.port, lazyConnect: true, maxRetriesPerRequest: 0 });
  await writer.connect();
});

beforeEach(async () => {
  client = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
});

afterEach(async () => {
  proxy.release('fromServer');
  await client.close();
});

afterAll(async () => {
  writer?.disconnect();
  await bridge?.close();
  await proxy?.close();
  await server?.stop();
});

/** Writes `key` from another client and waits until the bridge has received Valkey's invalidation. */
async function overtake(key: string, value: string): Promise<void> {
  const before = bridge.stats().invalidationsReceived;
  await writer.set(key, value);
  await waitFor(() => bridge.stats().invalidationsReceived > before, 'the invalidation to reach the bridge');
}

describe('bridge: read/invalidation race', () => {
  it('never reports a TRACKED.GET overtaken by another client\'s write as cacheable', async () => {
    const k = `${randomPrefix('race')}k`;
    await writer.set(k, 'old-value');
    proxy.hold('fromServer');
    const reply = trackedGet(client, k, 60_000);
    // The read has executed on the server once its reply (holding the old value) is in the proxy.
    await proxy.waitForHeld('fromServer', (t) => t.includes('old-value'));
    await overtake(k, 'new-value');
    expect(bridge.stats().pendingReads).toBe(1);
    proxy.release('fromServer');
    expect(await reply).toEqual({ value: 'old-value', ttlMs: 0, cacheable: false });
    // The session was not yet a reader when the write's push went out, so it gets the key's push ahead of the
    // poisoned reply: a client waiting on the key wakes and reads again instead of waiting for a push gone by.
    const arrivals = client.arrivals.map((a) => (a.kind === 'push' ? `push:${a.keys?.join(',')}` : 'reply'));
    expect(arrivals).toEqual([`push:${k}`, 'reply']);
    expect(await client.nextPush()).toEqual([k]);
    // Read again with nothing in the way: fresh and cacheable.
    expect(await trackedGet(client, k, 60_000)).toEqual({ value: 'new-value', ttlMs: 60_000, cacheable: true });
    expect(bridge.stats().pendingReads).toBe(0);
  });

  it('poisons a tracked read whose reply waits behind an earlier, slower reply', async () => {
    const p = randomPrefix('queued');
    const [lock, k] = [`${p}lock`, `${p}k`];
    const holder = `valkeyid:${p.replace(/[^0-9a-f]/g, '')}`;
    await writer.set(lock, holder);
    await writer.set(k, 'old-value');
    // With the script cache empty, the EVALSHA comes back NOSCRIPT, and is retried after SCRIPT LOAD: its reply then
    // arrives after the TRACKED.GET's, which must wait in the session's reply order.
    await writer.script('FLUSH');
    proxy.hold('fromServer');
    const replies = client.pipeline([
      ['EVALSHA', SCRIPT_SHA.acquireLock, 1, lock, 'valkeyid:me', 10_000],
      ['TRACKED.GET', k, 60_000],
    ]);
    await proxy.waitForHeld('fromServer', (t) => t.includes('NOSCRIPT') && t.includes('old-value'));
    proxy.release('fromServer', true);
    await proxy.waitForHeld('fromServer', (t) => t.includes(SCRIPT_SHA.acquireLock));
    proxy.release('fromServer', true);
    await proxy.waitForHeld('fromServer', (t) => t.includes(holder));
    // The read's reply is at the bridge (unpoisoned, unwritten) while the script's reply is held.
    expect(bridge.stats().pendingReads).toBe(1);
    await overtake(k, 'new-value');
    proxy.release('fromServer');
    const [script, read] = await replies;
    expect(text(script!)).toBe(holder);
    expect(read).toHaveLength(3);
    const [value, ttlMs, cacheable] = read as [Uint8Array, number, boolean];
    expect([text(value), ttlMs, cacheable]).toEqual(['old-value', 0, false]);
  });

  it('keeps a read cacheable when the invalidation comes after its reply, and pushes it then', async () => {
    const k = `${randomPrefix('after')}k`;
    await writer.set(k, 'v1');
    expect(await trackedGet(client, k, 60_000)).toEqual({ value: 'v1', ttlMs: 60_000, cacheable: true });
    await writer.set(k, 'v2');
    expect(await client.nextPush()).toEqual([k]);
  });
});
