// getMany and coalescing inside workerd (Miniflare) against a real bridge and Valkey: warm, cold, Go-locked and
// duplicate keys in one call with exactly one loadMany, keys over several shards, concurrent getManys, and gets of
// one key in one isolate sharing one coordinator call (counted by the coordinator's stats).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../worker/placement.ts';
import { randomPrefix, waitFor } from '../support/bridge.ts';
import { query, startWorkerStack, type WorkerStack } from '../support/worker-stack.ts';

let stack: WorkerStack;
let origin: WorkerStack['origin'];
let workers: WorkerStack['workers'];
let redis: WorkerStack['redis'];

beforeAll(async () => {
  stack = await startWorkerStack((vars) => [{ name: 'main', vars }]);
  ({ origin, workers, redis } = stack);
});

afterAll(async () => {
  await stack?.close();
});

interface ErrorReport { name: string; message: string; code?: string; status?: number; isTimeout: boolean }
interface KeyResult { key: string; value: unknown; outcome: string }
type ManyAnswer = { ok: true; results: KeyResult[] } | { ok: false; error: ErrorReport };
interface Many { answers: ManyAnswer[]; calls: string[][] }
type GetAnswer = { ok: true; value: unknown; outcome: string } | { ok: false; error: ErrorReport };
interface Stats { name: string; waitingGets: number; peekCalls: number; getCalls: number; getManyCalls: number }

function many(keys: readonly string[], params: Record<string, string | number | undefined> = {}): Promise<Many> {
  return workers.getJson<Many>(`/many?${query({ keys: JSON.stringify(keys), ttl: 10_000, ...params })}`);
}

function stats(coord: string): Promise<Stats> {
  return workers.getJson<Stats>(`/stats?${query({ coord })}`);
}

function results(answer: ManyAnswer): Record<string, { value: unknown; outcome: string }> {
  if (!answer.ok) throw new Error(`expected values, got ${answer.error.name}: ${answer.error.message}`);
  return Object.fromEntries(answer.results.map(({ key, value, outcome }) => [key, { value, outcome }]));
}

/** An id shaped like Go's: `valkeyid:` + 24 lowercase hex characters. */
function goClientId(): string {
  return `valkeyid:${randomPrefix('x').split(':')[1]}${'0'.repeat(12)}`;
}

describe('getMany', () => {
  it('serves warm keys, waits for a Go-locked key, and loads exactly the cold unlocked keys in one loadMany', async () => {
    const p = randomPrefix('many');
    const coord = `${p}coord`;
    const [warm, cold1, cold2, locked] = [`${p}warm`, `${p}cold1`, `${p}cold2`, `${p}locked`];
    await redis.set(warm, 'warm-value', 'PX', 20_000);
    const marker = goClientId();
    await redis.set(marker, '', 'PX', 20_000);
    await redis.set(locked, marker, 'PX', 20_000);
    const pending = many([warm, cold1, locked, cold2, cold1, warm], { coord });
    // The cold keys are loaded and stored while the Go client still holds its lock: it does not hold them up.
    await waitFor(async () => (await redis.mget(cold1, cold2)).every((v) => v === 'v:1'), 'the cold keys to be stored', 10_000, 20);
    expect((await stats(coord)).waitingGets).toBe(1);
    await redis.set(locked, 'from-go', 'PX', 20_000);
    const { answers, calls } = await pending;
    expect(calls).toHaveLength(1);
    expect([...calls[0]!].sort()).toEqual([cold1, cold2].sort());
    expect(results(answers[0]!)).toEqual({
      [warm]: { value: 'warm-value', outcome: 'server-hit' },
      [cold1]: { value: 'v:1', outcome: 'loaded' },
      [cold2]: { value: 'v:1', outcome: 'loaded' },
      [locked]: { value: 'from-go', outcome: 'waited' },
    });
    // One entry per distinct key: the duplicates were asked for (and loaded) once.
    expect(answers[0]!.ok && answers[0]!.results).toHaveLength(4);
    expect([origin.loads(cold1), origin.loads(cold2)]).toEqual([1, 1]);
    expect(origin.loads(locked)).toBe(0);
    expect((await stats(coord)).getManyCalls).toBe(1);
    await redis.del(marker);
    // Now every key is warm: one more getMany loads nothing.
    const again = await many([warm, cold1, cold2, locked], { coord });
    expect(again.calls).toEqual([]);
    expect(Object.values(results(again.answers[0]!)).map((r) => r.outcome).sort()).toEqual(['hit', 'hit', 'hit', 'hit']);
  });

  it('a key the loader leaves out comes back null, uncached and unlocked; a loader error is the caller\'s error, locks released', async () => {
    const p = randomPrefix('many-omit');
    const coord = `${p}coord`;
    const [kept, left] = [`${p}kept`, `${p}left`];
    const { answers } = await many([kept, left], { coord, omit: JSON.stringify([left]) });
    expect(results(answers[0]!)).toEqual({ [kept]: { value: 'v:1', outcome: 'loaded' }, [left]: { value: null, outcome: 'miss' } });
    expect(await redis.get(kept)).toBe('v:1');
    expect(await redis.exists(left)).toBe(0);

    const [a, b] = [`${p}a`, `${p}b`];
    const failed = await many([a, b], { coord, throw: 1 });
    expect(failed.answers[0]).toMatchObject({ ok: false, error: { name: 'OriginError', status: 599 } });
    expect(await redis.exists(a, b)).toBe(0);
    const next = await many([a, b], { coord });
    expect(Object.values(results(next.answers[0]!)).map((r) => r.outcome)).toEqual(['loaded', 'loaded']);
  });

  it('loads each key once for 20 concurrent getManys of the same cold keys, coalesced or not', async () => {
    const p = randomPrefix('many-20');
    const keys = Array.from({ length: 5 }, (_, i) => `${p}k${i}`);
    const runs = await Promise.all(Array.from({ length: 20 }, (_, i) => many(keys, { shards: 4, coalesce: i % 2 === 0 ? '0' : undefined })));
    for (const run of runs) {
      for (const key of keys) expect(results(run.answers[0]!)[key]!.value).toBe('v:1');
    }
    for (const key of keys) expect(origin.loads(key)).toBe(1);
    expect(runs.flatMap((run) => run.calls).flat().sort()).toEqual([...keys].sort());
  });

  it('asks every coordinator in parallel and still calls loadMany once, for every view', async () => {
    for (const view of ['text', 'typed', 'bytes']) {
      const p = randomPrefix(`many-shards-${view}`);
      const keys = Array.from({ length: 12 }, (_, i) => `${p}k${i}`);
      const shards = new Set(keys.map((key) => hashKey(key) % 8));
      expect(shards.size).toBeGreaterThan(2);
      const names = [...shards].map((shard) => `valkeyaside:shard:${shard}/8`);
      const before = await Promise.all(names.map(stats));
      const { answers, calls } = await many(keys, { shards: 8, [view]: view === 'text' ? undefined : 1 });
      expect(calls).toHaveLength(1);
      expect([...calls[0]!].sort()).toEqual([...keys].sort());
      const expected = view === 'typed' ? { body: 'v:1' } : view === 'bytes' ? Buffer.from('v:1').toString('hex') : 'v:1';
      for (const key of keys) expect(results(answers[0]!)[key]).toEqual({ value: expected, outcome: 'loaded' });
      const after = await Promise.all(names.map(stats));
      after.forEach((s, i) => expect(s.getManyCalls - before[i]!.getManyCalls).toBe(1));
    }
  });
});

describe('coalescing in the caller\'s isolate', () => {
  it('N concurrent gets of a cold key cost one peek, one get and one loader; uncoalesced they cost N', async () => {
    const p = randomPrefix('coalesce');
    for (const coalesce of [undefined, '0']) {
      const coord = `${p}coord-${coalesce ?? 'on'}`;
      const key = `${p}k-${coalesce ?? 'on'}`;
      const { results: answers } = await workers.getJson<{ results: GetAnswer[] }>(`/burst?${query({ key, coord, n: 10, coalesce })}`);
      expect(answers.filter((a) => a.ok && a.value === 'v:1')).toHaveLength(10);
      expect(origin.loads(key)).toBe(1);
      const s = await stats(coord);
      if (coalesce === undefined) {
        expect({ peek: s.peekCalls, get: s.getCalls }).toEqual({ peek: 1, get: 1 });
        expect(answers.map((a) => a.ok && a.outcome).sort()).toEqual(['loaded', ...Array(9).fill('waited')]);
      } else {
        expect({ peek: s.peekCalls, get: s.getCalls }).toEqual({ peek: 10, get: 10 });
      }
      // Warm now: ten concurrent hits are one peek.
      await workers.getJson(`/burst?${query({ key, coord, n: 10, coalesce })}`);
      expect((await stats(coord)).peekCalls - s.peekCalls).toBe(coalesce === undefined ? 1 : 10);
    }
  });

  it('honours each caller\'s own deadline; the first caller leaving does not stop the load for the others', async () => {
    const p = randomPrefix('coalesce-deadline');
    const [key, coord] = [`${p}k`, `${p}coord`];
    origin.script(key, { delayMs: 600 });
    const { results: answers } = await workers.getJson<{ results: GetAnswer[] }>(`/burst?${query({ key, coord, n: 3, timeouts: JSON.stringify([200, 200, null]) })}`);
    expect(answers[0]).toMatchObject({ ok: false, error: { name: 'TimeoutError', isTimeout: true } });
    expect(answers[1]).toMatchObject({ ok: false, error: { name: 'TimeoutError', isTimeout: true } });
    expect(answers[2]).toEqual({ ok: true, value: 'v:1', outcome: 'waited' });
    expect(origin.loads(key)).toBe(1);
    expect(await redis.get(key)).toBe('v:1');
  });

  it('a get arriving while a call for its key is out never joins it: it is answered after an outside write', async () => {
    const p = randomPrefix('coalesce-fresh');
    const [key, coord] = [`${p}k`, `${p}coord`];
    origin.script(key, { hang: true });
    origin.script(`${key}:gate`, { hang: true });
    const pending = workers.getJson<{ first: GetAnswer; second: GetAnswer }>(`/overlap?${query({ key, coord })}`);
    await origin.waitForLoads(key);
    await origin.waitForLoads(`${key}:gate`);
    await redis.set(key, 'outside', 'PX', 20_000);
    origin.release(`${key}:gate`);
    // The second get has started while the first is still loading. Had it joined the first call, it would get that
    // call's loaded value, computed before the write.
    await origin.waitForLoads(`${key}:second-started`);
    origin.release(key);
    const { first, second } = await pending;
    expect(first).toEqual({ ok: true, value: 'v:1', outcome: 'not-cached' });
    expect(second).toMatchObject({ ok: true, value: 'outside' });
    expect(origin.loads(key)).toBe(1);
  });
});
