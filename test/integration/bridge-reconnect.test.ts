// Losing Valkey: a server restart, a cut data connection and a half-open subscriber each start a new epoch (null
// push to every session, /healthz 503) and tracking comes back by itself.
import { Redis } from 'iovalkey';
import { afterEach, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { httpBase, randomPrefix, startBridge, startReadyBridge, TEST_TOKEN, waitFor } from '../support/bridge.ts';
import { freePort } from '../support/free-port.ts';
import { errorText, RespWsClient, trackedGet, type Invalidation } from '../support/resp-ws-client.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(options: { dataViaProxy?: boolean; subViaProxy?: boolean; valkeyPingMs?: number; commandTimeoutMs?: number } = {}) {
  const server = await startValkeyServer();
  cleanups.push(() => server.stop());
  let proxy: TcpProxy | undefined;
  if (options.dataViaProxy || options.subViaProxy) {
    proxy = await startTcpProxy(server.host, server.port);
    cleanups.push(() => proxy!.close());
  }
  const bridge = await startReadyBridge(options.dataViaProxy ? proxy!.url : server.url, {
    subscriberUrl: options.subViaProxy ? proxy!.url : server.url,
    valkeyPingMs: options.valkeyPingMs,
    commandTimeoutMs: options.commandTimeoutMs,
  });
  cleanups.push(() => bridge.close());
  const writer = new Redis({ host: server.host, port: server.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
  writer.on('error', () => undefined);
  cleanups.push(() => writer.disconnect());
  const connect = async () => {
    const client = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
    cleanups.push(() => client.close());
    return client;
  };
  return { server, proxy, bridge, writer, connect };
}

async function healthStatus(bridge: Bridge): Promise<number> {
  const res = await fetch(`${httpBase(bridge)}/healthz`);
  await res.body?.cancel();
  return res.status;
}

/** Skips null pushes (a lost connection may cause more than one) until a key push arrives; bounded. */
async function nextKeyPush(client: RespWsClient): Promise<Invalidation> {
  for (let i = 0; i < 10; i++) {
    const push = await client.nextPush();
    if (push !== null) return push;
  }
  throw new Error('only null pushes arrived');
}

/** Tracking works: a fresh read is cacheable and another client's write to it is pushed. */
async function expectTrackingWorks(client: RespWsClient, writer: Redis): Promise<void> {
  const k = `${randomPrefix('again')}k`;
  await writer.set(k, 'v1');
  expect(await trackedGet(client, k, 60_000)).toEqual({ value: 'v1', ttlMs: 60_000, cacheable: true });
  await writer.set(k, 'v2');
  expect(await nextKeyPush(client)).toEqual([k]);
}

describe('bridge: losing Valkey', () => {
  it('survives a server restart: null push to every session, /healthz 503 then 200, tracking again', async () => {
    const { server, bridge, writer, connect } = await setup();
    await writer.connect();
    const [a, b] = [await connect(), await connect()];
    const k = `${randomPrefix('restart')}k`;
    await writer.set(k, 'v');
    expect((await trackedGet(a, k, 60_000)).cacheable).toBe(true);
    expect(await healthStatus(bridge)).toBe(200);

    await server.kill();
    expect(await a.nextPush(10_000)).toBeNull();
    expect(await b.nextPush(10_000)).toBeNull();
    // The epoch changed and the server is gone: tracking cannot be back.
    expect(await healthStatus(bridge)).toBe(503);
    const body = await (await fetch(`${httpBase(bridge)}/healthz`)).json();
    expect(body).toMatchObject({ ok: false, tracking: false, sessions: 2 });
    expect(errorText(await a.call('GET', k))).toBe('TRYAGAIN valkey is unavailable');
    expect(errorText(await a.call('TRACKED.GET', k, 1000))).toBe('TRYAGAIN valkey is unavailable');

    await server.start();
    await waitFor(async () => (await healthStatus(bridge)) === 200, '/healthz to answer 200 again', 15_000);
    await waitFor(() => writer.status === 'ready', 'the test\'s own client to reconnect', 15_000);
    await expectTrackingWorks(a, writer);
    await expectTrackingWorks(b, writer);
    expect(bridge.stats().epoch).toBeGreaterThan(1);
  });

  it('starts a new epoch when the data connection is cut', async () => {
    const { proxy, bridge, writer, connect } = await setup({ dataViaProxy: true });
    await writer.connect();
    const a = await connect();
    const epoch = bridge.stats().epoch;
    proxy!.cutAll();
    expect(await a.nextPush()).toBeNull();
    expect(bridge.stats().epoch).toBeGreaterThan(epoch);
    await bridge.waitUntilReady(10_000);
    await expectTrackingWorks(a, writer);
  });

  it('detects a half-open subscriber with PING, starts a new epoch and recovers', async () => {
    const { proxy, bridge, writer, connect } = await setup({ subViaProxy: true, valkeyPingMs: 100, commandTimeoutMs: 1000 });
    await writer.connect();
    const a = await connect();
    const k = `${randomPrefix('halfopen')}k`;
    await writer.set(k, 'v');
    expect((await trackedGet(a, k, 60_000)).cacheable).toBe(true);
    proxy!.blackhole(true);
    expect(await a.nextPush()).toBeNull();
    expect(bridge.health().ok).toBe(false);
    // Reads while tracking is down are served, never cacheable.
    expect(await trackedGet(a, k, 60_000)).toEqual({ value: 'v', ttlMs: 0, cacheable: false });
    proxy!.blackhole(false);
    await bridge.waitUntilReady(10_000);
    await expectTrackingWorks(a, writer);
  });

  it('accepts sessions while Valkey is down, answers -TRYAGAIN, and closes promptly', async () => {
    const bridge = await startBridge(`redis://127.0.0.1:${await freePort()}`);
    let closed = false;
    try {
      expect(bridge.health()).toMatchObject({ ok: false, tracking: false });
      const client = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
      cleanups.push(() => client.close());
      expect(errorText(await client.call('SET', 'k', 'v'))).toBe('TRYAGAIN valkey is unavailable');
      expect(errorText(await client.call('TRACKED.GET', 'k', 1000))).toBe('TRYAGAIN valkey is unavailable');
      const closing = bridge.close().then(() => { closed = true; });
      expect((await client.waitClosed()).code).toBe(1001);
      await closing;
    } finally {
      if (!closed) await bridge.close();
    }
  });
});
