// Keys and values are bytes, end to end, inside workerd against a real bridge and server: values written by another
// client come back exactly (binary through bytes(), BOM kept through the text API, invalid UTF-8 refused by name),
// pushes match the exact key bytes that were read, placeholders are released by their exact bytes, and a get parked
// while the bridge's tracking was down is still woken.
import { Redis } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { bridgeCounters, randomPrefix, startReadyBridge, TEST_TOKEN, waitFor } from '../support/bridge.ts';
import { startTestWorkers, type WorkerHarness } from '../support/miniflare.ts';
import { startOrigin, type Origin } from '../support/origin.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

let server: ValkeyServer;
let bridge: Bridge;
/** A bridge whose invalidation subscriber goes through `subProxy`, so a test can take its tracking down. */
let outageBridge: Bridge;
let subProxy: TcpProxy;
let origin: Origin;
let workers: WorkerHarness;
let redis: Redis;

beforeAll(async () => {
  server = await startValkeyServer();
  bridge = await startReadyBridge(server.url);
  subProxy = await startTcpProxy(server.host, server.port);
  outageBridge = await startReadyBridge(server.url, { subscriberUrl: subProxy.url, valkeyPingMs: 100, commandTimeoutMs: 300 });
  origin = await startOrigin();
  const common = { BRIDGE_TOKEN: TEST_TOKEN, ORIGIN: origin.url };
  workers = await startTestWorkers([
    { name: 'main', vars: { ...common, BRIDGE_URL: bridge.url } },
    // Only the bridge's drop-everything push on re-established tracking can wake its waiters.
    { name: 'outage-push', vars: { ...common, BRIDGE_URL: outageBridge.url, VALKEYASIDE_UNTRACKED_RETRY_MS: '600000' } },
    { name: 'outage-retry', vars: { ...common, BRIDGE_URL: outageBridge.url, VALKEYASIDE_UNTRACKED_RETRY_MS: '100' } },
  ]);
  redis = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 0 });
});

afterAll(async () => {
  redis?.disconnect();
  await workers?.dispose();
  await origin?.close();
  await outageBridge?.close();
  await subProxy?.close();
  await bridge?.close();
  await server?.stop();
});

const hex = (bytes: Uint8Array | Buffer): string => Buffer.from(bytes).toString('hex');
const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');

interface Answer {
  ok: boolean;
  value?: string | null;
  valueHex?: string | null;
  outcome?: string;
  error?: { name: string; code?: string; message: string; key?: unknown; isConnection: boolean };
}

function call(path: string, params: Record<string, string | number>, worker = 'main'): Promise<Answer> {
  const search = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]));
  return workers.getJson<Answer>(`${path}?${search}`, worker);
}

/** A foreign lock placeholder, as a Go client writes it: `valkeyid:` + 24 hex chars. */
function placeholder(): string {
  return `valkeyid:${randomPrefix('p').replace(/[^0-9a-f]/g, '').padEnd(24, '0').slice(0, 24)}`;
}

async function evalshaCount(of: Bridge): Promise<number> {
  return (await bridgeCounters(of)).commands.EVALSHA ?? 0;
}

describe('worker bytes: values read exactly', () => {
  it('reads a binary value another client wrote, byte for byte, through bytes()', async () => {
    const key = `${randomPrefix('bin')}k`;
    const value = Buffer.from([0xff, 0xfe, 0x00, 0x41, 0x80, 0x0d, 0x0a]);
    await redis.set(key, value);
    const first = await call('/bget', { key, loader: 0 });
    expect(first).toMatchObject({ ok: true, valueHex: hex(value), outcome: 'server-hit' });
    const second = await call('/bget', { key, loader: 0 });
    expect(second).toMatchObject({ ok: true, valueHex: hex(value), outcome: 'hit' });
  });

  it('refuses that value through the text API with a SerializationError naming the key, not an altered string', async () => {
    const key = `${randomPrefix('bin')}k`;
    await redis.set(key, Buffer.from([0xff, 0xfe, 0x00, 0x41]));
    for (let i = 0; i < 2; i++) {
      const answer = await call('/get', { key, loader: 0 });
      expect(answer.ok).toBe(false);
      expect(answer.error).toMatchObject({ name: 'SerializationError', code: 'ERR_DESERIALIZE', key });
      expect(answer.error!.message).toContain(JSON.stringify(key));
      expect(answer.error!.message).toContain('not valid UTF-8');
    }
  });

  it('keeps a leading BOM through the text API', async () => {
    const key = `${randomPrefix('bom')}k`;
    await redis.set(key, utf8('\uFEFFhello'));
    expect(await call('/get', { key, loader: 0 })).toMatchObject({ ok: true, value: '\uFEFFhello', outcome: 'server-hit' });
    expect(await call('/get', { key, loader: 0 })).toMatchObject({ ok: true, value: '\uFEFFhello', outcome: 'hit' });
  });

  it('stores what a bytes loader returns exactly, and serves it back exactly', async () => {
    const key = Buffer.concat([utf8(randomPrefix('load')), Buffer.from([0xc0, 0xff, 0x00])]);
    const value = Buffer.from([0x00, 0xff, 0xef, 0xbb, 0xbf, 0xc3]);
    const loaded = await call('/bget', { keyHex: hex(key), valueHex: hex(value) });
    expect(loaded).toMatchObject({ ok: true, valueHex: hex(value), outcome: 'loaded' });
    expect(hex(await redis.getBuffer(key) as Buffer)).toBe(hex(value));
    expect(await call('/bget', { keyHex: hex(key), loader: 0 })).toMatchObject({ ok: true, valueHex: hex(value), outcome: 'hit' });
  });

  it('stores a text loader value as its UTF-8 bytes', async () => {
    // (Not a leading BOM here: the test loader reads the origin with Response.text(), which strips one by spec.)
    const key = `${randomPrefix('text')}k`;
    origin.script(key, { body: 'naïve \u2713 \uFEFF' });
    expect(await call('/get', { key })).toMatchObject({ ok: true, value: 'naïve \u2713 \uFEFF', outcome: 'loaded' });
    expect(hex(await redis.getBuffer(key) as Buffer)).toBe(hex(utf8('naïve \u2713 \uFEFF')));
  });

  it('treats a text key and its UTF-8 bytes as one key, in one coordinator', async () => {
    const key = `${randomPrefix('same')}é`;
    await redis.set(utf8(key), 'v');
    expect(await call('/get', { key, loader: 0 })).toMatchObject({ ok: true, value: 'v' });
    expect(await call('/bget', { keyHex: hex(utf8(key)), loader: 0 })).toMatchObject({ ok: true, valueHex: hex(utf8('v')), outcome: 'hit' });
  });

  it('refuses reserved keys in the bytes view and text keys with a lone surrogate, with a TypeError', async () => {
    const reserved = await call('/bget', { keyHex: hex(utf8('valkeyid:abc')), loader: 0 });
    expect(reserved.error).toMatchObject({ name: 'TypeError' });
    expect(reserved.error!.message).toContain('reserved');
    const lone = await call('/get', { keyJson: '"a\\ud800b"', loader: 0 });
    expect(lone.error).toMatchObject({ name: 'TypeError' });
    expect(lone.error!.message).toContain('lone UTF-16 surrogate');
  });
});

describe('worker bytes: pushes match the exact key bytes', () => {
  it('drops the copy of a key beginning with a BOM when another client writes it', async () => {
    const key = `\uFEFF${randomPrefix('bomkey')}k`;
    await redis.set(utf8(key), 'old');
    expect(await call('/get', { key, loader: 0, ttl: 60_000 })).toMatchObject({ value: 'old', outcome: 'server-hit' });
    expect(await call('/get', { key, loader: 0, ttl: 60_000 })).toMatchObject({ value: 'old', outcome: 'hit' });
    await redis.set(utf8(key), 'new');
    // No event reaches the test from the coordinator: poll, bounded, far below the 60 s the stale copy would live.
    await waitFor(async () => (await call('/get', { key, loader: 0, ttl: 60_000 })).value === 'new', 'the BOM key to be invalidated', 5_000);
  });

  it('drops the copy of a key that is not valid UTF-8 when another client writes it', async () => {
    const key = Buffer.concat([utf8(randomPrefix('rawkey')), Buffer.from([0xff, 0x80])]);
    await redis.set(key, 'old');
    expect(await call('/bget', { keyHex: hex(key), loader: 0, ttl: 60_000 })).toMatchObject({ valueHex: hex(utf8('old')) });
    expect(await call('/bget', { keyHex: hex(key), loader: 0, ttl: 60_000 })).toMatchObject({ outcome: 'hit' });
    await redis.set(key, 'new');
    await waitFor(async () => (await call('/bget', { keyHex: hex(key), loader: 0, ttl: 60_000 })).valueHex === hex(utf8('new')),
      'the non-UTF-8 key to be invalidated', 5_000);
  });

  it('a bytes del drops every copy of the key', async () => {
    const key = Buffer.concat([utf8(randomPrefix('del')), Buffer.from([0xfe])]);
    await redis.set(key, 'v');
    await call('/bget', { keyHex: hex(key), loader: 0 });
    expect(await call('/bdel', { keyHex: hex(key) })).toEqual({ ok: true });
    expect(await redis.exists(key)).toBe(0);
    expect(await call('/bget', { keyHex: hex(key), loader: 0 })).toMatchObject({ ok: true, valueHex: null });
  });
});

describe('worker bytes: placeholders by their exact bytes', () => {
  it('takes over a placeholder that is not valid UTF-8 and has no marker, in a bounded number of commands', async () => {
    const key = `${randomPrefix('badph')}k`;
    await redis.set(key, Buffer.concat([utf8('valkeyid:'), Buffer.from([0xff, 0xfe, 0x80, 0x00])]));
    const before = await evalshaCount(bridge);
    const answer = await call('/get', { key, ttl: 5_000 });
    expect(answer).toMatchObject({ ok: true, outcome: 'took-over' });
    // One compare-and-delete of the abandoned lock and one compare-and-set of ours: not a spin until the deadline.
    expect(await evalshaCount(bridge) - before).toBeLessThanOrEqual(3);
    expect(await redis.get(key)).toBe(answer.value);
  });
});

describe('worker bytes: a get parked while the bridge tracked nothing', () => {
  /** Takes the outage bridge's tracking down (its subscriber half-open), and waits until it knows. */
  async function trackingDown(): Promise<void> {
    subProxy.halfOpen(true);
    await waitFor(() => !outageBridge.health().tracking, 'the bridge to lose tracking', 10_000);
  }

  async function trackingUp(): Promise<void> {
    subProxy.halfOpen(false);
    subProxy.cutAll();
    await outageBridge.waitUntilReady(10_000);
  }

  async function parkOnForeignLock(worker: string): Promise<{ key: string; answer: Promise<Answer> }> {
    const key = `${randomPrefix(worker)}k`;
    const holder = placeholder();
    await redis.set(holder, '', 'PX', 60_000);
    await redis.set(key, holder, 'PX', 60_000);
    const answer = call('/get', { key, ttl: 8_000 }, worker);
    await waitFor(async () => (await workers.getJson<{ waitingGets: number }>(`/stats?key=${encodeURIComponent(key)}`, worker)).waitingGets === 1,
      'the get to park on the foreign lock', 5_000);
    return { key, answer };
  }

  it('is woken by the drop-everything push once tracking is back, and returns the holder\'s value', async () => {
    await trackingDown();
    try {
      const { key, answer } = await parkOnForeignLock('outage-push');
      await redis.set(key, 'stored-by-the-holder', 'PX', 60_000);
      await trackingUp();
      expect(await answer).toMatchObject({ ok: true, value: 'stored-by-the-holder', outcome: 'waited' });
      expect(origin.loads(key)).toBe(0);
    } finally {
      await trackingUp();
    }
  });

  it('reads again on its own while tracking stays down, and returns the holder\'s value', async () => {
    await trackingDown();
    try {
      const { key, answer } = await parkOnForeignLock('outage-retry');
      await redis.set(key, 'stored-while-untracked', 'PX', 60_000);
      expect(await answer).toMatchObject({ ok: true, value: 'stored-while-untracked', outcome: 'waited' });
      expect(outageBridge.health().tracking).toBe(false);
      expect(origin.loads(key)).toBe(0);
    } finally {
      await trackingUp();
    }
  });
});
