// TRACKED.SETKEY (protocol v2) against a real Valkey: Go's compare-and-set bytes in the server, a reply the client
// may keep only when no other change overtook it, and tracking of the stored value. The race runs through a proxy
// that holds Valkey's replies to the bridge while the subscriber connects directly, so every step waits on an event.
import { Redis } from 'iovalkey';
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { RESP_SUBPROTOCOL_V2 } from '../../shared/protocol.ts';
import { randomPrefix, startReadyBridge, TEST_TOKEN, waitFor } from '../support/bridge.ts';
import { RespWsClient, errorText, text } from '../support/resp-ws-client.ts';
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

  it('refuses bad arguments with a clear error and keeps the session', async () => {
    const k = `${randomPrefix('setkey-bad')}k`;
    expect(errorText(await client.call('TRACKED.SETKEY', k, 'id', 'v', 60_000))).toMatch(/wrong number of arguments/);
    expect(errorText(await client.call('TRACKED.SETKEY', k, 'id', 'v', 0, 10))).toMatch(/ttlMs must be a positive integer/);
    expect(errorText(await client.call('TRACKED.SETKEY', k, 'id', 'v', 10, 'x'))).toMatch(/capMs must be a positive integer/);
    expect(await client.call('PING')).toBeTruthy();
  });
});
