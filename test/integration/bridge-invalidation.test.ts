// Invalidation delivery end to end: real redis-server, real bridge, real WebSockets on loopback.
import { Redis } from 'iovalkey';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { RespErrorReply, RespSimple } from '../../shared/resp/index.ts';
import { randomPrefix, startReadyBridge, TEST_TOKEN } from '../support/bridge.ts';
import { RespWsClient, trackedGet, type Arrival } from '../support/resp-ws-client.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

let server: ValkeyServer;
let bridge: Bridge;
let writer: Redis;
const clients: RespWsClient[] = [];

async function connect(target: Bridge = bridge): Promise<RespWsClient> {
  const client = await RespWsClient.connect(target.url, { token: TEST_TOKEN });
  clients.push(client);
  return client;
}

const last = (arrivals: Arrival[], n: number) => arrivals.slice(-n);

beforeAll(async () => {
  server = await startValkeyServer();
  bridge = await startReadyBridge(server.url);
  writer = new Redis({ host: server.host, port: server.port, lazyConnect: true, maxRetriesPerRequest: 0 });
  await writer.connect();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  writer?.disconnect();
  await bridge?.close();
  await server?.stop();
});

describe('bridge: invalidations from Valkey', () => {
  it('pushes a key only to the session that read it when another client writes it', async () => {
    const p = randomPrefix('inv');
    const [a, b] = [await connect(), await connect()];
    await writer.set(`${p}k`, 'v1');
    await writer.set(`${p}other`, 'o1');
    expect(await trackedGet(a, `${p}k`, 60_000)).toEqual({ value: 'v1', ttlMs: 60_000, cacheable: true });
    expect(await trackedGet(b, `${p}other`, 60_000)).toEqual({ value: 'o1', ttlMs: 60_000, cacheable: true });

    await writer.set(`${p}k`, 'v2');
    expect(await a.nextPush()).toEqual([`${p}k`]);
    // b did not read k: the first push it gets must name only the key it did read.
    await writer.set(`${p}other`, 'o2');
    expect(await b.nextPush()).toEqual([`${p}other`]);
    expect(a.unreadPushes).toBe(0);
  });

  it('caps ttlMs by the key\'s PTTL and tracks nil reads', async () => {
    const p = randomPrefix('ttl');
    const a = await connect();
    await writer.set(`${p}k`, 'v', 'PX', 50_000);
    const read = await trackedGet(a, `${p}k`, 600_000);
    expect(read.cacheable).toBe(true);
    expect(read.ttlMs).toBeGreaterThan(0);
    expect(read.ttlMs).toBeLessThanOrEqual(50_000);
    expect(await trackedGet(a, `${p}missing`, 1_000)).toEqual({ value: null, ttlMs: 1_000, cacheable: true });
    await writer.set(`${p}missing`, 'now here');
    expect(await a.nextPush()).toEqual([`${p}missing`]);
  });

  it('keeps binary keys and values intact', async () => {
    const p = randomPrefix('bin');
    const a = await connect();
    const key = Buffer.concat([Buffer.from(p), Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0xc3])]);
    const value = Buffer.from([0x00, 0x0d, 0x0a, 0xfe]);
    await writer.set(key, value);
    const reply = await a.call('TRACKED.GET', key, 5_000);
    expect(Buffer.from((reply as Uint8Array[])[0]!).equals(value)).toBe(true);
    await writer.del(key);
    await a.nextPush();
    expect(a.rawPushes.map((keys) => keys?.map((k) => Buffer.from(k).toString('hex')))).toEqual([[key.toString('hex')]]);
  });

  it('sends FLUSHALL to every session as the null push', async () => {
    const [a, b] = [await connect(), await connect()];
    await trackedGet(a, `${randomPrefix('flush')}k`, 1_000);
    await writer.flushall();
    expect(await a.nextPush()).toBeNull();
    expect(await b.nextPush()).toBeNull();
  });

  it('evicts a session\'s oldest registration past maxTrackedKeys, with a push', async () => {
    const small = await startReadyBridge(server.url, { maxTrackedKeys: 2 });
    try {
      const p = randomPrefix('evict');
      const a = await connect(small);
      await trackedGet(a, `${p}1`, 1_000);
      await trackedGet(a, `${p}2`, 1_000);
      expect(a.unreadPushes).toBe(0);
      await trackedGet(a, `${p}3`, 1_000);
      expect(await a.nextPush()).toEqual([`${p}1`]);
      expect(small.stats().trackedPairs).toBe(2);
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await small.close();
    }
  });
});

describe('bridge: writes through the bridge', () => {
  let subProxy: TcpProxy;
  let quiet: Bridge;

  beforeAll(async () => {
    // Valkey's own invalidations travel on the subscriber; black-holing it proves a push came from the write path.
    // The PING check is far out so that the black hole is not noticed within a test.
    subProxy = await startTcpProxy(server.host, server.port);
    quiet = await startReadyBridge(server.url, { subscriberUrl: subProxy.url, valkeyPingMs: 600_000 });
  });

  afterAll(async () => {
    await quiet?.close();
    await subProxy?.close();
  });

  it('pushes to every reader, writer included, before the writer\'s reply', async () => {
    const p = randomPrefix('wt');
    const [a, b] = [await connect(quiet), await connect(quiet)];
    await writer.set(`${p}k`, 'v1');
    expect((await trackedGet(a, `${p}k`, 60_000)).cacheable).toBe(true);
    expect((await trackedGet(b, `${p}k`, 60_000)).cacheable).toBe(true);
    subProxy.blackhole(true);
    try {
      expect(await b.call('DEL', `${p}k`)).toBe(1);
      // The writer: its own push precedes its reply on its socket.
      expect(last(b.arrivals, 2)).toEqual([{ kind: 'push', keys: [`${p}k`] }, { kind: 'reply', value: 1 }]);
      // The other reader: its push was sent before b's reply, so it precedes any reply a asks for afterwards.
      await a.call('PING');
      expect(last(a.arrivals, 2)).toEqual([{ kind: 'push', keys: [`${p}k`] }, { kind: 'reply', value: new RespSimple('PONG') }]);

      // Nothing changed (DEL of a missing key, SET NX on an existing key): no push.
      expect(await trackedGet(a, `${p}k`, 60_000)).toEqual({ value: null, ttlMs: 60_000, cacheable: true });
      expect(await b.call('DEL', `${p}k`)).toBe(0);
      await a.call('PING');
      expect(last(a.arrivals, 2).map((x) => x.kind)).toEqual(['reply', 'reply']);
      expect(await b.call('SET', `${p}k`, 'v2', 'NX')).toEqual(new RespSimple('OK'));
      await a.call('PING');
      expect(last(a.arrivals, 2)).toEqual([{ kind: 'push', keys: [`${p}k`] }, { kind: 'reply', value: new RespSimple('PONG') }]);
      expect((await trackedGet(a, `${p}k`, 60_000)).value).toBe('v2');
      expect(await b.call('SET', `${p}k`, 'v3', 'NX')).toBeNull();
      await a.call('PING');
      expect(last(a.arrivals, 2).map((x) => x.kind)).toEqual(['reply', 'reply']);
    } finally {
      subProxy.blackhole(false);
    }
  });

  it('answers SET ... GET with a plain value, never a tracked (cacheable) read (before 6.2: the server\'s own error)', async () => {
    const p = randomPrefix('setget');
    const a = await connect();
    await writer.set(`${p}k`, 'old');
    const [, major, minor] = /redis_version:(\d+)\.(\d+)/.exec(await writer.info('server'))!.map(Number) as [number, number, number];
    const reply = await a.call('SET', `${p}k`, 'new', 'GET');
    if (major > 6 || (major === 6 && minor >= 2)) {
      expect(Buffer.from(reply as Uint8Array).toString()).toBe('old');
    } else {
      // SET ... GET is new in 6.2: the bridge passes the server's refusal through, and nothing was written.
      expect(reply).toBeInstanceOf(RespErrorReply);
      expect((reply as RespErrorReply).message).toMatch(/^ERR syntax error/);
      expect(await writer.get(`${p}k`)).toBe('old');
    }
  });
});

describe('bridge: two bridges on one server', () => {
  it('a DEL through bridge A reaches a session on bridge B that read the key', async () => {
    const other = await startReadyBridge(server.url);
    try {
      const p = randomPrefix('two');
      await writer.set(`${p}k`, 'v');
      const onB = await connect(other);
      const onA = await connect(bridge);
      expect((await trackedGet(onB, `${p}k`, 60_000)).cacheable).toBe(true);
      expect(await onA.call('DEL', `${p}k`)).toBe(1);
      expect(await onB.nextPush()).toEqual([`${p}k`]);
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await other.close();
    }
  });
});
