// The read/invalidation race (notes §2.1): the data connection goes through a proxy that holds Valkey's replies
// until the test releases them, while the subscriber connects directly, so an invalidation provably reaches the
// bridge while the read's reply is still on its way. No timing is involved: every step waits on an event.
// TRACKED.SETKEY (protocol v2) on the same stand: Go's compare-and-set bytes in the server, a reply the client may
// keep only when no other change overtook it, and tracking of the stored value. The subscriber goes through a proxy
// of its own, so a test can hold Valkey's invalidations back.
import { Redis } from 'iovalkey';
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { RESP_SUBPROTOCOL_V2 } from '../../shared/protocol.ts';
import { SCRIPT_SHA } from '../../shared/valkeyaside.ts';
import { randomPrefix, startReadyBridge, TEST_TOKEN, waitFor } from '../support/bridge.ts';
import { RespWsClient, errorText, text, trackedGet } from '../support/resp-ws-client.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

let server: ValkeyServer;
let proxy: TcpProxy;
let subProxy: TcpProxy;
let bridge: Bridge;
let writer: Redis;
let client: RespWsClient;

beforeAll(async () => {
  server = await startValkeyServer();
  proxy = await startTcpProxy(server.host, server.port);
  subProxy = await startTcpProxy(server.host, server.port);
  bridge = await startReadyBridge(proxy.url, { subscriberUrl: subProxy.url });
  writer = new Redis({ host: server.host, port: server.port, lazyConnect: true, maxRetriesPerRequest: 0 });
  await writer.connect();
});

beforeEach(async () => {
  client = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
});

afterEach(async () => {
  proxy.release('fromServer');
  subProxy.release('fromServer');
  await client.close();
});

afterAll(async () => {
  writer?.disconnect();
  await bridge?.close();
  await proxy?.close();
  await subProxy?.close();
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

type SetkeyReply = { stored: boolean; value: string | null; ttlMs: number; cacheable: boolean };

function parse(reply: unknown): SetkeyReply {
  expect(Array.isArray(reply) && reply.length === 4, `a 4-element reply, got ${String(reply)}`).toBe(true);
  const [stored, value, ttlMs, cacheable] = reply as [boolean, Uint8Array | null, number, boolean];
  return { stored, value: value === null ? null : text(value), ttlMs: Number(ttlMs), cacheable };
}

const setkey = async (key: string, id: string, value: string, ttlMs = 60_000, capMs = 30_000): Promise<SetkeyReply> =>
  parse(await client.call('TRACKED.SETKEY', key, id, value, ttlMs, capMs));

describe('bridge: TRACKED.SETKEY', () => {
  it('is offered as protocol v2 and selected when the client offers it', async () => {
    const ws = new WebSocket(bridge.url, [RESP_SUBPROTOCOL_V2, 'valkeyaside.v1'], { headers: { Authorization: `Bearer ${TEST_TOKEN}` } });
    await new Promise<void>((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    expect(ws.protocol).toBe(RESP_SUBPROTOCOL_V2);
    ws.close();
  });

  it('stores over our placeholder with Go\'s bytes, answers cacheable, and tracks the stored value', async () => {
    const p = randomPrefix('setkey');
    const [k, id] = [`${p}k`, `valkeyid:${p.replace(/[^0-9a-f]/g, '').padEnd(24, '0').slice(0, 24)}`];
    await writer.set(k, id, 'PX', 60_000);
    expect(await setkey(k, id, 'loaded', 60_000, 30_000)).toEqual({ stored: true, value: null, ttlMs: 30_000, cacheable: true });
    expect(await writer.get(k)).toBe('loaded');
    const pttl = await writer.pttl(k);
    expect(pttl).toBeGreaterThan(30_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
    // The session is a reader of the stored value: a later write elsewhere is pushed to it.
    await writer.set(k, 'changed');
    expect(await client.nextPush()).toEqual([k]);
    // Deliveries are counted per frame and added to the counter on scrape.
    expect(Number(/^bridge_invalidations_delivered_total (\d+)/m.exec(await bridge.metricsText())?.[1])).toBeGreaterThan(0);
  });

  it('does not store over another holder, and answers what the key holds, cacheable', async () => {
    const k = `${randomPrefix('setkey-other')}k`;
    await writer.set(k, 'someone-else');
    expect(await setkey(k, 'valkeyid:000000000000000000000000', 'mine')).toEqual({ stored: false, value: 'someone-else', ttlMs: 30_000, cacheable: true });
    expect(await writer.get(k)).toBe('someone-else');
  });

  it('never reports a stored value overtaken by another client\'s write as cacheable', async () => {
    const k = `${randomPrefix('setkey-race')}k`;
    const id = 'valkeyid:111111111111111111111111';
    await writer.set(k, id, 'PX', 60_000);
    const before = bridge.stats().invalidationsReceived;
    proxy.hold('fromServer');
    const reply = client.call('TRACKED.SETKEY', k, id, 'loaded-value', 60_000, 30_000);
    // The transaction has run once its reply (holding the stored value) is in the proxy; its own invalidation comes
    // directly to the subscriber.
    await proxy.waitForHeld('fromServer', (t) => t.includes('loaded-value'));
    await waitFor(() => bridge.stats().invalidationsReceived > before, 'our own write\'s invalidation');
    await writer.set(k, 'newer-value');
    await waitFor(() => bridge.stats().invalidationsReceived > before + 1, 'the other write\'s invalidation');
    proxy.release('fromServer');
    expect(parse(await reply)).toEqual({ stored: true, value: null, ttlMs: 0, cacheable: false });
  });

  it('never leaves a client holding a stored value that a later write through the bridge removed, with Valkey\'s invalidations held back', async () => {
    // Found by the library chaos run (sub-blackhole): the DEL's write-through poisoning was counted as the one
    // invalidation the store itself causes, so the stored value went out cacheable after the DEL had removed it,
    // and no push followed while the subscriber's invalidations were lost.
    const k = `${randomPrefix('setkey-del')}k`;
    const id = 'valkeyid:222222222222222222222222';
    await writer.set(k, id, 'PX', 60_000);
    subProxy.hold('fromServer');
    const from = client.arrivals.length;
    const [set, del] = await client.pipeline([['TRACKED.SETKEY', k, id, 'loaded-value', 60_000, 30_000], ['DEL', k]]);
    expect(parse(set!).stored).toBe(true);
    expect(del).toBe(1);
    // What a client keeps, replayed in arrival order: a copy from a cacheable reply, dropped by a push naming the key.
    let copy = false;
    for (const arrival of client.arrivals.slice(from)) {
      if (arrival.kind === 'push') copy &&= arrival.keys !== null && !arrival.keys.includes(k);
      else if (Array.isArray(arrival.value) && arrival.value.length === 4) copy = arrival.value[3] === true;
    }
    expect(copy, 'a copy of the deleted value outlived the DEL reply').toBe(false);
  });

  it('refuses bad arguments with a clear error and keeps the session', async () => {
    const k = `${randomPrefix('setkey-bad')}k`;
    expect(errorText(await client.call('TRACKED.SETKEY', k, 'id', 'v', 60_000))).toMatch(/wrong number of arguments/);
    expect(errorText(await client.call('TRACKED.SETKEY', k, 'id', 'v', 0, 10))).toMatch(/ttlMs must be a positive integer/);
    expect(errorText(await client.call('TRACKED.SETKEY', k, 'id', 'v', 10, 'x'))).toMatch(/capMs must be a positive integer/);
    expect(await client.call('PING')).toBeTruthy();
  });
});
