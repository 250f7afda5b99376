// Stale-while-revalidate inside workerd against a real bridge and Valkey: the stale value served at once while one
// refresh runs (under the caller's waitUntil), a del or an outside write ending the window, a failing refresh keeping
// the stale value until the window ends, and what a plain (Go-like) reader sees. Time is driven by small ttls and
// waits on outcomes, never by measured durations.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bridgeCounters, countDelta, randomPrefix, waitFor } from '../support/bridge.ts';
import { query, startWorkerStack, type WorkerStack } from '../support/worker-stack.ts';

let stack: WorkerStack;
let redis: WorkerStack['redis'];
let workers: WorkerStack['workers'];
let origin: WorkerStack['origin'];

beforeAll(async () => {
  // Two Workers, each with its own coordinator class: two coordinator families, as two services sharing Valkey.
  stack = await startWorkerStack((vars) => [{ name: 'main', vars }, { name: 'other', vars }], { VALKEYASIDE_CLIENT_TTL_MS: '1000' });
  ({ redis, workers, origin } = stack);
});

afterAll(async () => {
  await stack?.close();
});

type Answer = { ok: true; value: unknown; outcome: string } | { ok: false; error: { name: string; message: string } };
type Params = Record<string, string | number | boolean | undefined>;

const get = (params: Params, worker = 'main'): Promise<Answer> => workers.getJson<Answer>(`/get?${query(params)}`, worker);
const burst = (params: Params, worker = 'main'): Promise<{ results: Answer[] }> => workers.getJson(`/burst?${query(params)}`, worker);
const del = (params: Params, worker = 'main'): Promise<{ ok: boolean }> => workers.getJson(`/del?${query(params)}`, worker);
const activeGets = async (coord: string, worker = 'main'): Promise<number> =>
  (await workers.getJson<{ activeGets: number }>(`/stats?${query({ coord })}`, worker)).activeGets;

/** Gets until one answers `stale` (each earlier one must be a fresh hit of `expected`); bounded. */
async function untilStale(params: Params, expected: string, worker = 'main'): Promise<void> {
  await waitFor(async () => {
    const answer = await get(params, worker);
    if (answer.ok && answer.outcome === 'stale') return true;
    expect(answer).toMatchObject({ ok: true, value: expected });
    return false;
  }, `${String(params.key)} to turn stale`, 10_000, 10);
}

/** A key loaded once (`v:1`) whose refresh is running now, its load hanging until released. */
async function hangingRefresh(tag: string, staleMs = 60_000): Promise<{ prefix: string; key: string; coord: string; swr: Params }> {
  const prefix = randomPrefix(tag);
  const key = `${prefix}k`;
  const coord = `${prefix}coord`;
  const swr = { key, ttl: 300, stale: staleMs, coord };
  expect(await get(swr)).toMatchObject({ value: 'v:1', outcome: 'loaded' });
  origin.script(key, { hang: true });
  await untilStale(swr, 'v:1');
  await origin.waitForLoads(key, 2);
  return { prefix, key, coord, swr };
}

describe('stale-while-revalidate', () => {
  it('serves the stale value at once while exactly one refresh runs, then the fresh one', async () => {
    const prefix = randomPrefix('swr');
    const key = `${prefix}k`;
    const [a, b] = [`${prefix}coord-a`, `${prefix}coord-b`];
    const swr = { key, ttl: 300, stale: 60_000 };
    expect(await get({ ...swr, coord: a })).toMatchObject({ ok: true, value: 'v:1', outcome: 'loaded' });
    // Stored for ttl + staleMs, so a Go reader keeps seeing it through the window.
    expect(await redis.pttl(key)).toBeGreaterThan(300);
    // The refresh's load hangs until released: every get meanwhile is inside the window.
    origin.script(key, { hang: true });
    await untilStale({ ...swr, coord: a }, 'v:1');
    await origin.waitForLoads(key, 2);
    const [here, there, otherWorker] = await Promise.all([
      burst({ ...swr, coord: a, n: 8 }), burst({ ...swr, coord: b, n: 8 }), burst({ ...swr, coord: a, n: 8 }, 'other'),
    ]);
    for (const answer of [...here.results, ...there.results, ...otherWorker.results]) {
      expect(answer).toEqual({ ok: true, value: 'v:1', outcome: 'stale' });
    }
    // 24 stale gets on three coordinators, and still only the one refresh load.
    expect(origin.loads(key)).toBe(2);
    origin.release(key);
    await waitFor(async () => {
      const answer = await get({ ...swr, coord: a });
      expect(answer).toMatchObject({ ok: true });
      return answer.ok && answer.value === 'v:2';
    }, 'the refreshed value', 10_000, 10);
    expect(await redis.get(key)).toBe('v:2');
    expect(origin.loads(key)).toBe(2);
  });

  it('a del during the window ends it at once here and on the push elsewhere; the refresh stores nothing', async () => {
    const prefix = randomPrefix('swr-del');
    const key = `${prefix}k`;
    const [a, b] = [`${prefix}coord-a`, `${prefix}coord-b`];
    const swr = { key, ttl: 300, stale: 60_000 };
    expect(await get({ ...swr, coord: a })).toMatchObject({ value: 'v:1', outcome: 'loaded' });
    expect(await get({ ...swr, coord: b, loader: '0' })).toMatchObject({ value: 'v:1' });
    origin.script(key, { hang: true });
    await untilStale({ ...swr, coord: a }, 'v:1');
    await untilStale({ ...swr, coord: b }, 'v:1', 'other');
    await origin.waitForLoads(key, 2);

    expect(await del({ key, coord: a })).toEqual({ ok: true });
    expect(await get({ ...swr, coord: a, loader: '0' })).toEqual({ ok: true, value: null, outcome: 'miss' });
    await waitFor(async () => {
      const answer = await get({ ...swr, coord: b, loader: '0' }, 'other');
      if (answer.ok && answer.value === null) return true;
      expect(answer).toEqual({ ok: true, value: 'v:1', outcome: 'stale' });
      return false;
    }, 'the other coordinator to drop its stale copy', 5_000, 10);
    // The refresh loaded before the del: its compare-and-set on the stale bytes must fail.
    origin.release(key);
    await waitFor(async () => (await activeGets(a)) === 0 && (await activeGets(b, 'other')) === 0, 'the refresh to end', 10_000, 10);
    expect(await redis.exists(key)).toBe(0);
    for (const [coord, worker] of [[a, 'main'], [b, 'other']] as const) {
      expect(await get({ ...swr, coord, loader: '0' }, worker)).toEqual({ ok: true, value: null, outcome: 'miss' });
    }
    expect(await get({ ...swr, coord: a })).toMatchObject({ value: 'v:3', outcome: 'loaded' });
  });

  it('a write from outside (a plain client SET) ends the window and wins over the refresh', async () => {
    const { key, coord, swr } = await hangingRefresh('swr-write');
    await redis.set(key, 'outside', 'PX', 60_000);
    await waitFor(async () => {
      const answer = await get({ ...swr, loader: '0' });
      if (answer.ok && answer.value === 'outside') return true;
      expect(answer).toEqual({ ok: true, value: 'v:1', outcome: 'stale' });
      return false;
    }, 'the outside write to reach the coordinator', 5_000, 10);
    origin.release(key);
    await waitFor(async () => (await activeGets(coord)) === 0, 'the refresh to end', 10_000, 10);
    expect(await redis.get(key)).toBe('outside');
    expect(await get({ ...swr, loader: '0' })).toMatchObject({ ok: true, value: 'outside' });
  });

  it('a refresh stores with one TRACKED.SETKEY (no setkey script, no read-back) and leaves the new value as a local copy', async () => {
    const { key, coord, swr } = await hangingRefresh('swr-setkey');
    // From the loader's end: the store, and the refresh lock's release (compare-and-delete, EVALSHA delkey).
    const before = (await bridgeCounters(stack.bridge)).commands;
    origin.release(key);
    await waitFor(async () => (await activeGets(coord)) === 0, 'the refresh to end', 10_000, 10);
    await waitFor(async () => (await redis.exists(`${key}\0valkeyaside:refresh`)) === 0, 'the refresh lock to be released', 10_000, 10);
    const sent = countDelta((await bridgeCounters(stack.bridge)).commands, before);
    expect(sent['TRACKED.SETKEY']).toBe(1);
    expect(sent['EVALSHA']).toBe(1);
    expect(sent['TRACKED.GET']).toBeUndefined();
    expect(await redis.get(key)).toBe('v:2');
    expect(await get(swr)).toEqual({ ok: true, value: 'v:2', outcome: 'hit' });
  });

  it('a failing refresh keeps the stale value until the window ends, then the get is a normal miss', async () => {
    const prefix = randomPrefix('swr-fail');
    const key = `${prefix}k`;
    const coord = `${prefix}coord`;
    const swr = { key, ttl: 300, stale: 1_500, coord };
    expect(await get(swr)).toMatchObject({ value: 'v:1', outcome: 'loaded' });
    await untilStale({ ...swr, failLoad: true }, 'v:1');
    await origin.waitForLoads(key, 2);
    await waitFor(async () => (await activeGets(coord)) === 0, 'the failed refresh to end', 10_000, 10);
    let staleAfterFailure = 0;
    let windowEnded = false;
    // Until the window ends: the stale value, whatever the refreshes do; then Go's miss path runs the loader.
    await waitFor(async () => {
      const answer = await get({ ...swr, failLoad: true });
      if (!answer.ok) {
        expect(answer.error.message).toMatch(/failLoad/);
        return true;
      }
      // The coordinator dates a key's expiry from when its read was sent, so it may call the window over a round
      // trip before Valkey expires the key: Go's path then still finds the value there (or in the copy that read
      // left, for the rest of its PTTL). Never stale again after.
      if ((answer.outcome === 'server-hit' || answer.outcome === 'hit') && answer.value === 'v:1') {
        windowEnded = true;
        return false;
      }
      expect(windowEnded).toBe(false);
      expect(answer).toEqual({ ok: true, value: 'v:1', outcome: 'stale' });
      staleAfterFailure++;
      return false;
    }, 'the stale window to end', 10_000, 10);
    expect(staleAfterFailure).toBeGreaterThan(0);
    expect(await redis.exists(key)).toBe(0);
    const loads = origin.loads(key);
    expect(await get(swr)).toEqual({ ok: true, value: `v:${loads + 1}`, outcome: 'loaded' });
  });

  it('a plain GET (a Go reader) sees the value through ttl + staleMs; a get without staleMs takes it as a hit', async () => {
    const { prefix, key, swr } = await hangingRefresh('swr-go', 1_000);
    expect(await redis.get(key)).toBe('v:1');
    expect(await redis.pttl(key)).toBeGreaterThan(0);
    expect(await get({ key, ttl: 300, coord: `${prefix}plain`, loader: '0' })).toMatchObject({ ok: true, value: 'v:1' });
    await waitFor(async () => (await redis.get(key)) === null, 'the key to expire at ttl + staleMs', 10_000, 10);
    expect(await get({ ...swr, loader: '0' })).toEqual({ ok: true, value: null, outcome: 'miss' });
    origin.release(key);
  });

  it('the bytes view serves the same stale bytes and refreshes them', async () => {
    const prefix = randomPrefix('swr-bytes');
    const key = `${prefix}k`;
    const swr = { keyHex: Buffer.from(key).toString('hex'), ttl: 300, stale: 60_000, coord: `${prefix}coord` };
    const bget = (params: Params) => workers.getJson<{ ok: boolean; valueHex?: string; outcome?: string }>(`/bget?${query(params)}`);
    const hex = (text: string) => Buffer.from(text).toString('hex');
    expect(await bget({ ...swr, valueHex: hex('\u00ff-one') })).toMatchObject({ ok: true, outcome: 'loaded' });
    await waitFor(async () => {
      const answer = await bget({ ...swr, valueHex: hex('two') });
      if (answer.outcome === 'stale') return true;
      expect(answer).toMatchObject({ ok: true, valueHex: hex('\u00ff-one'), outcome: 'hit' });
      return false;
    }, 'the bytes to turn stale', 10_000, 10);
    await waitFor(async () => (await redis.get(key)) === 'two', 'the refresh to store', 10_000, 10);
    expect(await bget({ ...swr, loader: '0' })).toMatchObject({ ok: true, valueHex: hex('two') });
  });

  it('the typed view serves the stale value decoded and refreshes it', async () => {
    const prefix = randomPrefix('swr-typed');
    const key = `${prefix}k`;
    const swr = { key, ttl: 300, stale: 60_000, coord: `${prefix}coord`, typed: true };
    origin.script(key, { body: '{"n":1}' }, { body: '{"n":2}' });
    expect(await get(swr)).toEqual({ ok: true, value: { n: 1 }, outcome: 'loaded' });
    await waitFor(async () => {
      const answer = await get(swr);
      expect(answer).toMatchObject({ ok: true, value: { n: 1 } });
      return answer.ok && answer.outcome === 'stale';
    }, 'the typed value to turn stale', 10_000, 10);
    await waitFor(async () => (await redis.get(key)) === '{"n":2}', 'the refresh to store', 10_000, 10);
    expect(await get({ ...swr, loader: '0' })).toMatchObject({ ok: true, value: { n: 2 } });
  });

  it('without a ctx the get asked to refresh runs the refresh before it answers', async () => {
    const prefix = randomPrefix('swr-noctx');
    const key = `${prefix}k`;
    const swr = { key, ttl: 300, stale: 60_000, coord: `${prefix}coord`, noCtx: true };
    expect(await get(swr)).toMatchObject({ value: 'v:1', outcome: 'loaded' });
    await untilStale(swr, 'v:1');
    expect(origin.loads(key)).toBe(2);
    expect(await redis.get(key)).toBe('v:2');
  });
});
