// The cache being unable to serve, inside workerd against a real bridge whose Valkey is stopped: one catchable class
// (ConnectionError, with the bridge's TRYAGAIN as cause) for gets and pings alike, and the opt-in degraded mode that
// runs loaders uncached, bounded per isolate.
import { Redis } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { randomPrefix, startReadyBridge, TEST_TOKEN, waitFor } from '../support/bridge.ts';
import { startTestWorkers, type WorkerHarness } from '../support/miniflare.ts';
import { startOrigin, type Origin } from '../support/origin.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

let server: ValkeyServer;
let bridge: Bridge;
let origin: Origin;
let workers: WorkerHarness;

interface Answer {
  ok: boolean;
  value?: string | null;
  outcome?: string;
  error?: { name: string; code?: string; message: string; isConnection: boolean; cause?: { name: string; message: string } };
}

beforeAll(async () => {
  server = await startValkeyServer();
  bridge = await startReadyBridge(server.url, { valkeyPingMs: 200 });
  origin = await startOrigin();
  workers = await startTestWorkers([{ name: 'main', vars: { BRIDGE_URL: bridge.url, BRIDGE_TOKEN: TEST_TOKEN, ORIGIN: origin.url } }]);
  // One get while all is well, so the coordinator's socket is open when Valkey goes.
  expect(await workers.getJson<Answer>(`/get?key=${randomPrefix('warm')}k`)).toMatchObject({ ok: true });
  await server.kill();
  await waitFor(() => !bridge.health().ok, 'the bridge to notice Valkey is gone', 10_000);
});

afterAll(async () => {
  await workers?.dispose();
  await origin?.close();
  await bridge?.close();
  await server?.stop();
});

const get = (params: string) => workers.getJson<Answer>(`/get?${params}`);

describe('worker: the cache cannot serve', () => {
  it('fails ping with a ConnectionError (ERR_UNAVAILABLE) whose cause is the bridge\'s TRYAGAIN', async () => {
    const answer = await workers.getJson<Answer>('/ping');
    expect(answer.ok).toBe(false);
    expect(answer.error).toMatchObject({ name: 'ConnectionError', code: 'ERR_UNAVAILABLE', isConnection: true });
    expect(answer.error!.cause).toMatchObject({ name: 'ReplyError' });
    expect(answer.error!.cause!.message).toMatch(/^TRYAGAIN /);
  });

  it('fails a get the same way by default, without running the loader', async () => {
    const key = `${randomPrefix('down')}k`;
    const answer = await get(`key=${key}`);
    expect(answer.error).toMatchObject({ name: 'ConnectionError', code: 'ERR_UNAVAILABLE', isConnection: true });
    expect(origin.loads(key)).toBe(0);
  });

  it('with onUnavailable "load", runs the loader uncached and answers with outcome bypass', async () => {
    const key = `${randomPrefix('bypass')}k`;
    expect(await get(`key=${key}&onUnavailable=load`)).toMatchObject({ ok: true, value: 'v:1', outcome: 'bypass' });
    expect(await get(`key=${key}&onUnavailable=load`)).toMatchObject({ ok: true, value: 'v:2', outcome: 'bypass' });
  });

  it('bounds bypassing loads per isolate: past maxBypassLoads a get throws the ConnectionError', async () => {
    const key = `${randomPrefix('bound')}k`;
    origin.script(key, { hang: true });
    const first = get(`key=${key}&onUnavailable=load&maxBypass=1`);
    await origin.waitForLoads(key, 1);
    const second = await get(`key=${key}&onUnavailable=load&maxBypass=1`);
    expect(second.error).toMatchObject({ name: 'ConnectionError', code: 'ERR_UNAVAILABLE' });
    origin.release(key);
    expect(await first).toMatchObject({ ok: true, value: 'v:1', outcome: 'bypass' });
    expect(origin.loads(key)).toBe(1);
  });

  it('caches again once Valkey is back, and stored nothing while bypassing', async () => {
    const key = `${randomPrefix('back')}k`;
    expect(await get(`key=${key}&onUnavailable=load`)).toMatchObject({ outcome: 'bypass' });
    await server.start();
    await bridge.waitUntilReady(10_000);
    const redis = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 0 });
    try {
      expect(await redis.exists(key)).toBe(0);
      expect(await get(`key=${key}&onUnavailable=load`)).toMatchObject({ ok: true, value: 'v:2', outcome: 'loaded' });
      expect(await get(`key=${key}`)).toMatchObject({ ok: true, value: 'v:2', outcome: 'hit' });
      expect(await workers.getJson<Answer>('/ping')).toEqual({ ok: true });
    } finally {
      redis.disconnect();
    }
  });
});
