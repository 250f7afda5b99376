// CacheAside inside workerd (Miniflare) against a real bridge and Valkey: Go valkeyaside's test behaviours
// (filled, expired, del, marker refresh, cancel, nested timeout, many clients, Lua lock), the stampede across
// coordinators, interop with locks written the way a Go client writes them, failures, deadlines and typed values.
import { Redis } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { randomPrefix, startReadyBridge, TEST_TOKEN, waitFor } from '../support/bridge.ts';
import { startTestWorkers, type WorkerHarness } from '../support/miniflare.ts';
import { startOrigin, type Origin } from '../support/origin.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

const CLIENT_TTL_MS = 1_000;

let server: ValkeyServer;
let bridge: Bridge;
let origin: Origin;
let workers: WorkerHarness;
let redis: Redis;

beforeAll(async () => {
  server = await startValkeyServer();
  bridge = await startReadyBridge(server.url);
  origin = await startOrigin();
  const vars = { BRIDGE_URL: bridge.url, BRIDGE_TOKEN: TEST_TOKEN, ORIGIN: origin.url, VALKEYASIDE_CLIENT_TTL_MS: String(CLIENT_TTL_MS) };
  workers = await startTestWorkers([
    { name: 'main', vars },
    { name: 'lua', vars: { ...vars, VALKEYASIDE_USE_LUA_LOCK: 'true' } },
    { name: 'bounded', vars: { ...vars, VALKEYASIDE_LOCAL_TTL_CAP_MS: '200', VALKEYASIDE_MAX_ENTRIES: '2', VALKEYASIDE_MAX_PENDING_GETS: '1' } },
  ]);
  redis = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 0 });
});

afterAll(async () => {
  redis?.disconnect();
  await workers?.dispose();
  await origin?.close();
  await bridge?.close();
  await server?.stop();
});

interface ErrorReport {
  name: string;
  message: string;
  code?: string;
  value?: unknown;
  status?: number;
  isTimeout: boolean;
  isValkeyaside: boolean;
  sameObject?: boolean;
}

type Answer =
  | { ok: true; value: unknown; outcome: string; inner?: { value?: string; error?: ErrorReport } }
  | { ok: false; error: ErrorReport; inner?: { value?: string; error?: ErrorReport } };

type Params = Record<string, string | number | boolean | undefined>;

function query(params: Params): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === false) continue;
    search.set(name, value === true ? '1' : String(value));
  }
  return search.toString();
}

function get(params: Params, worker = 'main'): Promise<Answer> {
  return workers.getJson<Answer>(`/get?${query(params)}`, worker);
}

function del(params: Params, worker = 'main'): Promise<{ ok: boolean; error?: ErrorReport }> {
  return workers.getJson(`/del?${query(params)}`, worker);
}

function stats(params: Params, worker = 'main'): Promise<{ clientId: string | null; activeGets: number; waitingGets: number; connected: boolean }> {
  return workers.getJson(`/stats?${query(params)}`, worker);
}

function value(answer: Answer): unknown {
  if (!answer.ok) throw new Error(`expected a value, got ${answer.error.name}: ${answer.error.message}`);
  return answer.value;
}

function failure(answer: Answer): ErrorReport {
  if (answer.ok) throw new Error(`expected an error, got ${JSON.stringify(answer.value)} (${answer.outcome})`);
  return answer.error;
}

/** An id shaped like Go's: `valkeyid:` + 24 lowercase hex characters. */
function goClientId(): string {
  return `valkeyid:${randomPrefix('x').split(':')[1]}${'0'.repeat(12)}`;
}

describe('worker cache-aside: filled, served locally, expired (Go TestCacheFilled)', () => {
  for (const worker of ['main', 'lua']) {
    it(`fills a miss, serves the local copy, and misses after the ttl (${worker === 'lua' ? 'Lua lock' : 'SET NX GET'})`, async () => {
      const key = randomPrefix('filled') + 'k';
      for (let round = 1; round <= 2; round++) {
        expect(await get({ key, ttl: 400 }, worker)).toMatchObject({ ok: true, value: `v:${round}`, outcome: 'loaded' });
        expect(await redis.get(key)).toBe(`v:${round}`);
        const pttl = await redis.pttl(key);
        expect(pttl).toBeGreaterThan(0);
        expect(pttl).toBeLessThanOrEqual(400);
        // Under load the store's own invalidation can overtake the read-back and drop the fresh copy (a safe extra
        // read); the read after that is local.
        const next = await get({ key, ttl: 400, loader: '0' }, worker);
        expect(next).toMatchObject({ ok: true, value: `v:${round}` });
        if (next.ok && next.outcome !== 'hit') expect(await get({ key, ttl: 400, loader: '0' }, worker)).toEqual({ ok: true, value: `v:${round}`, outcome: 'hit' });
        await waitFor(async () => value(await get({ key, ttl: 400, loader: '0' }, worker)) === null, 'the value to expire', 5_000, 25);
        expect(await get({ key, ttl: 400, loader: '0' }, worker)).toEqual({ ok: true, value: null, outcome: 'miss' });
        expect(origin.loads(key)).toBe(round);
      }
    });
  }
});

describe('worker cache-aside: del (Go TestCacheDel)', () => {
  it('removes the key; the same coordinator never serves the old value again, others drop it on the push', async () => {
    const prefix = randomPrefix('del');
    const key = `${prefix}k`;
    const [a, b] = [`${prefix}coord-a`, `${prefix}coord-b`];
    expect(await get({ key, ttl: 10_000, coord: a })).toMatchObject({ value: 'v:1', outcome: 'loaded' });
    expect(await get({ key, ttl: 10_000, coord: a, loader: '0' })).toMatchObject({ value: 'v:1', outcome: 'hit' });
    expect(await get({ key, ttl: 10_000, coord: b, loader: '0' })).toMatchObject({ value: 'v:1', outcome: 'server-hit' });
    expect(await get({ key, ttl: 10_000, coord: b, loader: '0' })).toMatchObject({ value: 'v:1', outcome: 'hit' });

    expect(await del({ key, coord: a })).toEqual({ ok: true });
    expect(await get({ key, ttl: 10_000, coord: a, loader: '0' })).toEqual({ ok: true, value: null, outcome: 'miss' });
    expect(await redis.exists(key)).toBe(0);
    await waitFor(async () => value(await get({ key, ttl: 10_000, coord: b, loader: '0' })) === null, 'coordinator b to drop its copy', 5_000, 20);
    expect(await get({ key, ttl: 10_000, coord: b })).toMatchObject({ value: 'v:2', outcome: 'loaded' });
  });

  it('a del during a load: the loader value is returned, not cached', async () => {
    const key = randomPrefix('del-during-load') + 'k';
    origin.script(key, { hang: true });
    const pending = get({ key, ttl: 5_000 });
    await origin.waitForLoads(key);
    expect(await redis.get(key)).toMatch(/^valkeyid:[0-9a-f]{24}$/);
    expect(await del({ key })).toEqual({ ok: true });
    origin.release(key);
    expect(await pending).toEqual({ ok: true, value: 'v:1', outcome: 'not-cached' });
    expect(await redis.exists(key)).toBe(0);
  });
});

describe('worker cache-aside: lock and liveness marker', () => {
  it('refreshes the marker while a slow loader runs, past the client ttl (Go TestClientRefresh)', async () => {
    const key = randomPrefix('refresh') + 'k';
    origin.script(key, { hang: true });
    const pending = get({ key, ttl: 8_000 });
    await origin.waitForLoads(key);
    const id = await redis.get(key);
    expect(id).toMatch(/^valkeyid:[0-9a-f]{24}$/);
    expect((await stats({ key })).clientId).toBe(id);
    const started = Date.now();
    // Wait for 2.5 client ttls to pass, checking on the way that the marker never lapses.
    await waitFor(async () => {
      expect(await redis.exists(id!)).toBe(1);
      return Date.now() - started > 2.5 * CLIENT_TTL_MS;
    }, 'two and a half client ttls', 10_000, 100);
    expect(await redis.get(id!)).toBe('');
    expect(await redis.pttl(id!)).toBeLessThanOrEqual(CLIENT_TTL_MS);
    origin.release(key);
    expect(await pending).toEqual({ ok: true, value: 'v:1', outcome: 'loaded' });
  });

  it('makes gets wait on a placeholder and marker written by a Go client; its SET wakes them with its value', async () => {
    const prefix = randomPrefix('go-lock');
    const key = `${prefix}k`;
    const marker = goClientId();
    await redis.set(marker, '', 'PX', 20_000);
    await redis.set(key, marker, 'PX', 20_000);
    const coords = [`${prefix}a`, `${prefix}b`];
    // coalesce=0: five gets reach each coordinator (coalesced, the isolate would send one per coordinator).
    const bursts = coords.map((coord) => workers.getJson<{ results: Answer[] }>(`/burst?${query({ key, coord, n: 5, ttl: 10_000, coalesce: '0' })}`));
    await waitFor(async () => {
      const all = await Promise.all(coords.map((coord) => stats({ coord })));
      return all.every((s) => s.waitingGets === 5);
    }, 'ten gets waiting on the Go lock', 10_000, 20);
    await redis.set(key, 'from-go', 'PX', 20_000);
    const results = (await Promise.all(bursts)).flatMap((b) => b.results);
    expect(results).toHaveLength(10);
    for (const result of results) expect(result).toEqual({ ok: true, value: 'from-go', outcome: 'waited' });
    expect(origin.loads(key)).toBe(0);
    await redis.del(marker);
  });

  it('takes over a placeholder whose marker is absent', async () => {
    const key = randomPrefix('takeover') + 'k';
    await redis.set(key, goClientId(), 'PX', 20_000);
    expect(await get({ key, ttl: 5_000 })).toEqual({ ok: true, value: 'v:1', outcome: 'took-over' });
    expect(await redis.get(key)).toBe('v:1');
  });

  it('takes over once the holder marker expires, woken by its push (nobody polls)', async () => {
    const key = randomPrefix('expired-holder') + 'k';
    const marker = goClientId();
    await redis.set(marker, '', 'PX', 300);
    await redis.set(key, marker, 'PX', 20_000);
    expect(await get({ key, ttl: 10_000 })).toEqual({ ok: true, value: 'v:1', outcome: 'took-over' });
    expect(await redis.exists(marker)).toBe(0);
  });
});

describe('worker cache-aside: loader failures and deadlines', () => {
  it('a loader that throws: the caller gets that very error, the lock is released, the next get loads', async () => {
    const key = randomPrefix('throws') + 'k';
    origin.script(key, { status: 503, body: 'down' });
    const error = failure(await get({ key, ttl: 5_000 }));
    expect(error).toMatchObject({ name: 'OriginError', status: 503, message: 'origin answered 503: down', sameObject: true, isValkeyaside: false });
    await waitFor(async () => (await redis.exists(key)) === 0, 'the lock to be released', 3_000, 10);
    expect(await get({ key, ttl: 5_000 })).toEqual({ ok: true, value: 'v:2', outcome: 'loaded' });
  });

  it('a loader whose fetch fails on the network: the same error object reaches the caller', async () => {
    const key = randomPrefix('reset') + 'k';
    origin.script(key, { reset: true });
    const error = failure(await get({ key, ttl: 5_000 }));
    expect(error.sameObject).toBe(true);
    expect(error.isValkeyaside).toBe(false);
    await waitFor(async () => (await redis.exists(key)) === 0, 'the lock to be released', 3_000, 10);
  });

  it('a loader that hangs past the deadline: TimeoutError, lock released at once', async () => {
    const key = randomPrefix('hangs') + 'k';
    origin.script(key, { hang: true });
    const error = failure(await get({ key, ttl: 20_000, timeout: 300 }));
    expect(error).toMatchObject({ name: 'TimeoutError', code: 'ERR_TIMEOUT', isTimeout: true, message: `get(${JSON.stringify(key)}) timed out after 300 ms` });
    expect(error.value).toBeUndefined();
    // The lock's PX is the 20 s ttl: only an explicit release frees the key this soon.
    await waitFor(async () => (await redis.exists(key)) === 0, 'the lock to be released', 3_000, 10);
    origin.release(key);
    expect(await get({ key, ttl: 5_000 })).toMatchObject({ ok: true, value: 'v:2', outcome: 'loaded' });
  });

  it('cancel during load: the value comes with the TimeoutError and nothing is stored (Go TestWriteCancel)', async () => {
    for (const worker of ['main', 'lua']) {
      const key = randomPrefix('cancel') + 'k';
      const error = failure(await get({ key, ttl: 5_000, abortInLoader: true }, worker));
      expect(error).toMatchObject({ name: 'TimeoutError', isTimeout: true, value: 'v:1' });
      expect(error.message).toBe(`get(${JSON.stringify(key)}) was aborted by the caller's signal`);
      await waitFor(async () => (await redis.exists(key)) === 0, 'the lock to be released', 3_000, 10);
    }
  });

  it('a nested get for the key its own loader is loading times out instead of hanging (Go TestTimeout)', async () => {
    for (const worker of ['main', 'lua']) {
      const key = randomPrefix('nested') + 'k';
      const answer = await get({ key, ttl: 500, nested: true }, worker);
      expect(failure(answer)).toMatchObject({ name: 'TimeoutError', isTimeout: true });
      expect(answer.inner?.error).toMatchObject({ name: 'TimeoutError', isTimeout: true });
    }
  });

  it('a tighter caller deadline (timeoutMs or AbortSignal) wins over the ttl', async () => {
    const key = randomPrefix('tighter') + 'k';
    const marker = goClientId();
    await redis.set(marker, '', 'PX', 20_000);
    await redis.set(key, marker, 'PX', 20_000);
    const timedOut = failure(await get({ key, ttl: 20_000, timeout: 200 }));
    expect(timedOut).toMatchObject({ name: 'TimeoutError', message: `get(${JSON.stringify(key)}) timed out after 200 ms` });
    const aborted = failure(await get({ key, ttl: 20_000, signalMs: 200 }));
    expect(aborted).toMatchObject({ name: 'TimeoutError', message: `get(${JSON.stringify(key)}) was aborted by the caller's signal` });
    expect(origin.loads(key)).toBe(0);
    expect(await redis.get(key)).toBe(marker);
    await redis.del(key, marker);
  });
});

describe('worker cache-aside: ttl override', () => {
  it('caches a not-found briefly with ctx.setTtl (negative caching)', async () => {
    const key = randomPrefix('negative') + 'k';
    origin.script(key, { status: 404 });
    expect(await get({ key, ttl: 60_000, negTtl: 300 })).toEqual({ ok: true, value: '_nil_', outcome: 'loaded' });
    const pttl = await redis.pttl(key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(300);
    expect(await get({ key, ttl: 60_000, loader: '0' })).toEqual({ ok: true, value: '_nil_', outcome: 'hit' });
    await waitFor(async () => value(await get({ key, ttl: 60_000, loader: '0' })) === null, 'the negative entry to expire', 5_000, 25);
    expect(await get({ key, ttl: 60_000, negTtl: 300 })).toEqual({ ok: true, value: 'v:2', outcome: 'loaded' });
    expect(await redis.pttl(key)).toBeGreaterThan(300);
  });

  it('lets a loader lengthen the ttl of what it returns', async () => {
    const key = randomPrefix('longer') + 'k';
    expect(await get({ key, ttl: 500, ttlOverride: 60_000 })).toMatchObject({ value: 'v:1', outcome: 'loaded' });
    expect(await redis.pttl(key)).toBeGreaterThan(500);
  });
});

/** How many SET commands Valkey has run (lock attempts and marker writes). */
async function setCalls(): Promise<number> {
  const info = await redis.info('commandstats');
  return Number(/cmdstat_set:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

describe('worker cache-aside: stampede protection', () => {
  // Uncoalesced (coalesce=0), so every get reaches its coordinator: the coordinators' own stampede protection.
  it('runs the loader exactly once for 10 coordinators x 100 concurrent gets of a cold key, one lock attempt per coordinator', async () => {
    const prefix = randomPrefix('stampede');
    const key = `${prefix}k`;
    origin.script(key, { delayMs: 200 });
    const setCallsBefore = await setCalls();
    const bursts = await Promise.all(Array.from({ length: 10 }, (_, i) =>
      workers.getJson<{ results: Answer[] }>(`/burst?${query({ key, coord: `${prefix}c${i}`, n: 100, ttl: 10_000, coalesce: '0' })}`)));
    // One lock attempt and one marker per coordinator (plus marker refreshes), not one SET per get (1000+).
    expect((await setCalls()) - setCallsBefore).toBeLessThan(200);
    const results = bursts.flatMap((b) => b.results);
    expect(results).toHaveLength(1_000);
    for (const result of results) expect(result).toMatchObject({ ok: true, value: 'v:1' });
    expect(origin.loads(key)).toBe(1);
    expect(results.filter((r) => r.ok && r.outcome === 'loaded')).toHaveLength(1);
  });

  for (const worker of ['main', 'lua']) {
    it(`keeps one load per key over rounds of many clients (Go TestMultipleClient, ${worker})`, async () => {
      const prefix = randomPrefix('clients');
      for (let round = 0; round < 3; round++) {
        const key = `${prefix}k${round}`;
        const bursts = await Promise.all(Array.from({ length: 10 }, (_, i) =>
          workers.getJson<{ results: Answer[] }>(`/burst?${query({ key, coord: `${prefix}c${i}`, n: 10, ttl: 10_000 })}`, worker)));
        for (const result of bursts.flatMap((b) => b.results)) expect(result).toMatchObject({ ok: true, value: 'v:1' });
        expect(origin.loads(key)).toBe(1);
      }
    });
  }
});

describe('worker cache-aside: bounds', () => {
  it('keeps a local copy no longer than VALKEYASIDE_LOCAL_TTL_CAP_MS, then reads the server again', async () => {
    const prefix = randomPrefix('capped');
    const [key, coord] = [`${prefix}k`, `${prefix}c`];
    expect(await get({ key, coord, ttl: 60_000 }, 'bounded')).toMatchObject({ value: 'v:1', outcome: 'loaded' });
    expect(await get({ key, coord, ttl: 60_000, loader: '0' }, 'bounded')).toMatchObject({ value: 'v:1', outcome: 'hit' });
    await waitFor(async () => {
      const answer = await get({ key, coord, ttl: 60_000, loader: '0' }, 'bounded');
      return answer.ok && answer.value === 'v:1' && answer.outcome === 'server-hit';
    }, 'the capped copy to expire while the server still holds the key', 5_000, 25);
    expect(await redis.pttl(key)).toBeGreaterThan(200);
  });

  it('evicts the least recently used copy past VALKEYASIDE_MAX_ENTRIES', async () => {
    const prefix = randomPrefix('lru');
    const coord = `${prefix}c`;
    for (const k of ['a', 'b', 'c']) {
      expect(await get({ key: `${prefix}${k}`, coord, ttl: 60_000, timeout: 10_000 }, 'bounded')).toMatchObject({ outcome: 'loaded' });
    }
    const a = await get({ key: `${prefix}a`, coord, ttl: 60_000, loader: '0' }, 'bounded');
    expect(a).toMatchObject({ ok: true, value: 'v:1', outcome: 'server-hit' });
  });

  it('refuses gets past VALKEYASIDE_MAX_PENDING_GETS with ERR_OVERLOADED', async () => {
    const prefix = randomPrefix('overloaded');
    const [key, coord] = [`${prefix}k`, `${prefix}c`];
    origin.script(key, { hang: true });
    const first = get({ key, coord, ttl: 5_000 }, 'bounded');
    await origin.waitForLoads(key);
    const refused = failure(await get({ key: `${prefix}other`, coord, ttl: 5_000 }, 'bounded'));
    expect(refused).toMatchObject({ name: 'ValkeyasideError', code: 'ERR_OVERLOADED' });
    expect(refused.message).toMatch(/^coordinator has 1 gets in progress \(VALKEYASIDE_MAX_PENDING_GETS\)/);
    origin.release(key);
    expect(await first).toMatchObject({ ok: true, value: 'v:1' });
  });
});

describe('worker cache-aside: typed values', () => {
  it('round-trips JSON through the codec', async () => {
    const key = randomPrefix('typed') + 'k';
    origin.script(key, { body: '{"id":1,"name":"Ada"}' });
    expect(await get({ key, ttl: 5_000, typed: true })).toEqual({ ok: true, value: { id: 1, name: 'Ada' }, outcome: 'loaded' });
    expect(await redis.get(key)).toBe('{"id":1,"name":"Ada"}');
    expect(await get({ key, ttl: 5_000, typed: true, loader: '0' })).toEqual({ ok: true, value: { id: 1, name: 'Ada' }, outcome: 'hit' });
  });

  it('reports a loaded value the codec cannot serialize as a SerializationError, stores nothing, frees the lock', async () => {
    const key = randomPrefix('typed-unserializable') + 'k';
    const error = failure(await get({ key, ttl: 5_000, typed: true, unserializable: true }));
    expect(error).toMatchObject({ name: 'SerializationError', code: 'ERR_SERIALIZE', isValkeyaside: true });
    expect(error.message).toMatch(new RegExp(`^serializing the value loaded for "${key}" failed: `));
    await waitFor(async () => (await redis.exists(key)) === 0, 'the lock to be released', 3_000, 10);
  });

  it('reports a value that does not deserialize as a SerializationError, not null', async () => {
    const key = randomPrefix('typed-bad') + 'k';
    await redis.set(key, 'not json', 'PX', 10_000);
    const error = failure(await get({ key, ttl: 5_000, typed: true }));
    expect(error).toMatchObject({ name: 'SerializationError', code: 'ERR_DESERIALIZE', isValkeyaside: true });
    expect(error.message).toMatch(new RegExp(`^the cached value of "${key}" cannot be deserialized: `));
  });
});
