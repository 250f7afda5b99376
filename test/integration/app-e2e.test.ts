// The example app end to end: the Hono Worker (worker/app/) inside workerd via Miniflare, a real bridge, a real
// redis-server and a controllable origin. Covers the read-through behaviour the README promises.
import { Redis } from 'iovalkey';
import { Log, LogLevel, Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { ROOT, TEST_TOKEN, randomPrefix, startReadyBridge, waitFor } from '../support/bridge.ts';
import { freePort } from '../support/free-port.ts';
import { bundleWorker } from '../support/miniflare.ts';
import { startOrigin, type Origin } from '../support/origin.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

const NEGATIVE_TTL_MS = 300;

let server: ValkeyServer;
let appBundle: string;
let bridge: Bridge;
let origin: Origin;
let mf: Miniflare;
let valkey: Redis;

beforeAll(async () => {
  server = await startValkeyServer();
  bridge = await startReadyBridge(server.url);
  origin = await startOrigin();
  valkey = new Redis({ host: server.host, port: server.port, lazyConnect: true, maxRetriesPerRequest: 1 });
  await valkey.connect();
  appBundle = await bundleWorker(`${ROOT}worker/app/index.ts`);
  const contents = appBundle;
  mf = new Miniflare({
    cf: false,
    log: new Log(LogLevel.WARN),
    modules: [{ type: 'ESModule', path: `${ROOT}test/.tmp/app.mjs`, contents }],
    compatibilityDate: '2026-04-01',
    durableObjects: { CACHE_ASIDE: { className: 'CacheAsideCoordinator', useSQLite: true } },
    bindings: {
      BRIDGE_URL: bridge.url, BRIDGE_TOKEN: TEST_TOKEN, ORIGIN_URL: `${origin.url}/load`,
      CACHE_TTL_MS: '60000', NEGATIVE_TTL_MS: String(NEGATIVE_TTL_MS),
    },
  });
  await mf.ready;
});

afterAll(async () => {
  await mf?.dispose();
  valkey?.disconnect();
  await origin?.close();
  await bridge?.close();
  await server?.stop();
});

async function call(path: string, method = 'GET'): Promise<{ status: number; body: string; xCache: string | null }> {
  const res = await mf.dispatchFetch(`http://app.test${path}`, { method });
  return { status: res.status, body: await res.text(), xCache: res.headers.get('x-cache') };
}

const v = (key: string) => `/v/${encodeURIComponent(key)}`;

describe('example app: read-through cache in front of an origin', () => {
  it('misses, hits, deletes, then loads again', async () => {
    const key = randomPrefix('app') + 'page';
    expect(await call(v(key))).toEqual({ status: 200, body: 'v:1', xCache: 'loaded' });
    expect(await call(v(key))).toEqual({ status: 200, body: 'v:1', xCache: 'hit' });
    expect(await call(v(key), 'DELETE')).toEqual({ status: 204, body: '', xCache: 'del' });
    expect(await valkey.exists(key)).toBe(0);
    expect(await call(v(key))).toEqual({ status: 200, body: 'v:2', xCache: 'loaded' });
    expect(origin.loads(key)).toBe(2);
  });

  it('caches a 404 as absent for NEGATIVE_TTL_MS, then asks the origin again', async () => {
    const key = randomPrefix('app') + 'missing';
    origin.script(key, { status: 404 });
    expect(await call(v(key))).toMatchObject({ status: 404, xCache: 'loaded' });
    expect(await call(v(key))).toMatchObject({ status: 404, xCache: 'hit' });
    expect(origin.loads(key)).toBe(1);
    const pttl = await valkey.pttl(key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(NEGATIVE_TTL_MS);
    await waitFor(async () => (await call(v(key))).status === 200, 'the negative entry to expire', 10_000, 50);
    expect(origin.loads(key)).toBe(2);
  });

  it('answers 502 and caches nothing for an origin error, a network error or an origin past the deadline', async () => {
    const key = randomPrefix('app') + 'flaky';
    origin.script(key, { status: 500 }, { reset: true });
    expect(await call(v(key))).toMatchObject({ status: 502, xCache: 'error' });
    expect(await call(v(key))).toMatchObject({ status: 502, xCache: 'error' });
    expect(await valkey.exists(key)).toBe(0); // lock released, nothing stored
    expect(await call(v(key))).toEqual({ status: 200, body: 'v:3', xCache: 'loaded' });

    const slow = randomPrefix('app') + 'slow';
    origin.script(slow, { delayMs: 3_000 });
    expect(await call(`${v(slow)}?ttl=200`)).toMatchObject({ status: 502, body: 'origin slower than the deadline\n' });
    expect(await valkey.exists(slow)).toBe(0);
  });

  it('loads a cold key once for 100 concurrent requests', async () => {
    const key = randomPrefix('app') + 'cold';
    origin.script(key, { delayMs: 200 });
    const answers = await Promise.all(Array.from({ length: 100 }, () => call(v(key))));
    expect(answers.every((a) => a.status === 200 && a.body === 'v:1')).toBe(true);
    expect(origin.loads(key)).toBe(1);
    expect(answers.filter((a) => a.xCache === 'loaded')).toHaveLength(1);
  });

  it('sees a write made directly in Valkey', async () => {
    const key = randomPrefix('app') + 'direct';
    expect((await call(v(key))).body).toBe('v:1');
    expect((await call(v(key))).xCache).toBe('hit');
    await valkey.set(key, 'written by another client', 'PX', 60_000);
    // Writes outside the bridge arrive by Valkey's tracking push: eventually, within milliseconds.
    await waitFor(async () => (await call(v(key))).body === 'written by another client', 'the push for a direct write', 5_000, 10);
    expect(origin.loads(key)).toBe(1);
  });

  it('serves a plain value another client wrote (valkey-cli SET) as a 200 of exactly those bytes', async () => {
    const key = randomPrefix('app') + 'cold';
    await valkey.set(key, 'written-by-cli');
    const res = await mf.dispatchFetch(`http://app.test${v(key)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-cache')).toBe('server-hit');
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await res.text()).toBe('written-by-cli');
    expect(origin.loads(key)).toBe(0);
  });

  it('serves a binary value another client wrote byte for byte, as application/octet-stream', async () => {
    const key = randomPrefix('app') + 'bin';
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x41, 0x80]);
    await valkey.set(key, bytes);
    const res = await mf.dispatchFetch(`http://app.test${v(key)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('stores a plain origin body as its exact bytes, which other clients read as is', async () => {
    const key = randomPrefix('app') + 'plain';
    origin.script(key, { body: 'plain text from the origin' });
    expect(await call(v(key))).toMatchObject({ status: 200, body: 'plain text from the origin', xCache: 'loaded' });
    expect(await valkey.get(key)).toBe('plain text from the origin');
  });

  it('round-trips a binary origin body exactly, with its content type', async () => {
    const key = randomPrefix('app') + 'png';
    const body = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff]);
    origin.script(key, { body, contentType: 'image/png' });
    for (const xCache of ['loaded', 'hit']) {
      const res = await mf.dispatchFetch(`http://app.test${v(key)}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-cache')).toBe(xCache);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
    }
    // Stored as the documented envelope: magic, "<status> <content type>", newline, the body.
    const stored = await valkey.getBuffer(key);
    expect(stored!.equals(Buffer.concat([Buffer.from('\0VAE1\n200 image/png\n'), body]))).toBe(true);
  });

  it('answers a reserved key with 400 and x-cache, for GET and DELETE', async () => {
    for (const method of ['GET', 'DELETE']) {
      const res = await call('/v/valkeyid:x', method);
      expect(res).toMatchObject({ status: 400, xCache: 'none' });
      expect(res.body).toContain('reserved');
    }
  });

  it('rejects bad keys and ttls with 400', async () => {
    expect(await call('/v/')).toMatchObject({ status: 400, xCache: 'none' });
    expect(await call(`/v/${'k'.repeat(1025)}`)).toMatchObject({ status: 400 });
    expect(await call('/v/%E0%A4%A')).toMatchObject({ status: 400 });
    expect(await call('/v/ok?ttl=0')).toMatchObject({ status: 400 });
    expect(await call('/v/ok?ttl=abc')).toMatchObject({ status: 400 });
    expect(await call('/v/ok?ttl=86400001')).toMatchObject({ status: 400 });
  });

  it('reports health: 200 while the bridge is reachable', async () => {
    const res = await mf.dispatchFetch('http://app.test/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });
});

describe('example app: configuration and health', () => {
  /** The app with `bindings` instead of the working ones; disposed after `use`. */
  async function withApp(bindings: Record<string, string>, use: (mf: Miniflare) => Promise<void>): Promise<void> {
    const other = new Miniflare({
      cf: false,
      log: new Log(LogLevel.NONE),
      modules: [{ type: 'ESModule', path: `${ROOT}test/.tmp/app-config.mjs`, contents: appBundle }],
      compatibilityDate: '2026-04-01',
      durableObjects: { CACHE_ASIDE: { className: 'CacheAsideCoordinator', useSQLite: true } },
      bindings,
    });
    try {
      await other.ready;
      await use(other);
    } finally {
      await other.dispose();
    }
  }
  const good = () => ({
    BRIDGE_URL: bridge.url, BRIDGE_TOKEN: TEST_TOKEN, ORIGIN_URL: `${origin.url}/load`, CACHE_TTL_MS: '60000', NEGATIVE_TTL_MS: '5000',
  });

  it('answers 500 naming the variable that is missing or wrong', async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ ORIGIN_URL: 'not a url' }, /ORIGIN_URL must be an http\(s\) URL/],
      [{ CACHE_TTL_MS: '0' }, /CACHE_TTL_MS must be a whole number of milliseconds/],
      [{ NEGATIVE_TTL_MS: 'soon' }, /NEGATIVE_TTL_MS must be a whole number of milliseconds/],
      [{ BRIDGE_URL: 'redis://127.0.0.1:6379' }, /BRIDGE_URL/],
    ];
    for (const [override, message] of cases) {
      await withApp({ ...good(), ...override }, async (app) => {
        const res = await app.dispatchFetch('http://app.test/v/k');
        expect(res.status).toBe(500);
        expect(await res.text()).toMatch(message);
      });
    }
    const { ORIGIN_URL: _omitted, ...missing } = good();
    await withApp(missing, async (app) => {
      const res = await app.dispatchFetch('http://app.test/v/k');
      expect(res.status).toBe(500);
      expect(await res.text()).toMatch(/ORIGIN_URL must be an http\(s\) URL .* got null/);
    });
  });

  it('reports 503 on /healthz within seconds of Valkey stopping behind a running bridge, and 200 once it is back', async () => {
    const own = await startValkeyServer();
    const ownBridge = await startReadyBridge(own.url, { valkeyPingMs: 200 });
    try {
      await withApp({ ...good(), BRIDGE_URL: ownBridge.url }, async (app) => {
        const health = async () => {
          const res = await app.dispatchFetch('http://app.test/healthz');
          return { status: res.status, body: await res.json() as { ok: boolean; error?: string } };
        };
        expect((await health()).status).toBe(200);
        await own.kill();
        // No event reaches the app: poll /healthz (bounded) as a load balancer would.
        await waitFor(async () => (await health()).status === 503, '/healthz to answer 503 after Valkey stopped', 10_000, 100);
        expect((await health()).body.error).toMatch(/cannot reach Valkey/);
        await own.start();
        await waitFor(async () => (await health()).status === 200, '/healthz to answer 200 once Valkey is back', 10_000, 100);
      });
    } finally {
      await ownBridge.close();
      await own.stop();
    }
  });

  it('reports 503 on /healthz and /v/ when the bridge cannot be reached', async () => {
    const closedPort = await freePort();
    await withApp({ ...good(), BRIDGE_URL: `ws://127.0.0.1:${closedPort}/resp` }, async (app) => {
      const health = await app.dispatchFetch('http://app.test/healthz');
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({ ok: false });
      const res = await app.dispatchFetch('http://app.test/v/k');
      expect(res.status).toBe(503);
      expect(res.headers.get('x-cache')).toBe('error');
      await res.text();
    });
  });
});
