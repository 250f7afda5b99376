// Regional coordinators inside workerd: caches with a `region` keep their own coordinators of a key (named per
// region, location-hinted when the region is a hint), and stay coherent through Valkey's pushes: a del through one
// region never leaves the other serving the old value once the push is in, and one loader runs across regions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomPrefix, TEST_TOKEN, waitFor } from '../support/bridge.ts';
import { RespWsClient } from '../support/resp-ws-client.ts';
import { query, startWorkerStack, type WorkerStack } from '../support/worker-stack.ts';

let stack: WorkerStack;
let bridge: WorkerStack['bridge'];
let origin: WorkerStack['origin'];
let workers: WorkerStack['workers'];

beforeAll(async () => {
  stack = await startWorkerStack((vars) => [{ name: 'regions', vars }]);
  ({ bridge, origin, workers } = stack);
});

afterAll(async () => {
  await stack?.close();
});

type Answer = { ok: true; value: string | null; outcome: string } | { ok: false; error: { name: string; message: string } };

const get = (params: Record<string, string | number | undefined>) => workers.getJson<Answer>(`/get?${query(params)}`);
const del = (params: Record<string, string | undefined>) => workers.getJson<{ ok: boolean }>(`/del?${query(params)}`);
const stats = (params: Record<string, string | undefined>) => workers.getJson<{ name: string; entries: number }>(`/stats?${query(params)}`);
const value = (answer: Answer) => (answer.ok ? answer.value : `error: ${answer.error.name}: ${answer.error.message}`);

/** Polls region `region`'s loader-less get of `key` until it answers `until`; every answer seen must be in `allowed`. */
async function awaitRegion(key: string, region: string, until: string | null, allowed: ReadonlyArray<string | null>): Promise<void> {
  const seen = new Set<string | null>();
  await waitFor(async () => {
    const answer = value(await get({ key, region, ttl: 60_000, loader: '0' }));
    seen.add(answer);
    return answer === until;
  }, `region ${region} to answer ${String(until)}`, 5_000);
  expect([...seen].filter((v) => v !== until && !allowed.includes(v))).toEqual([]);
}

describe('worker regional coordinators', () => {
  it('gives each region its own coordinator of a key, named after the region', async () => {
    const key = `${randomPrefix('names')}k`;
    const [plain, weur, apac, colo] = await Promise.all([undefined, 'weur', 'apac', 'LHR'].map((region) => stats({ key, region })));
    expect(weur!.name).toBe(plain!.name.replace(/^valkeyaside:/, 'valkeyaside@weur:'));
    expect(apac!.name).toBe(plain!.name.replace(/^valkeyaside:/, 'valkeyaside@apac:'));
    expect(colo!.name).toBe(plain!.name.replace(/^valkeyaside:/, 'valkeyaside@LHR:'));
    // A region that is not a location hint works the same, without the hint.
    expect(await get({ key, region: 'LHR', ttl: 60_000 })).toMatchObject({ ok: true, value: 'v:1', outcome: 'loaded' });
    expect(await get({ key, region: 'LHR', ttl: 60_000 })).toMatchObject({ ok: true, value: 'v:1', outcome: 'hit' });
  });

  it('a del through region A: A never serves the old value again, B drops it on the push and loads the new one', async () => {
    const key = `${randomPrefix('coherent')}k`;
    expect(await get({ key, region: 'weur', ttl: 60_000 })).toMatchObject({ value: 'v:1', outcome: 'loaded' });
    expect(await get({ key, region: 'apac', ttl: 60_000 })).toMatchObject({ value: 'v:1', outcome: 'server-hit' });
    expect(await get({ key, region: 'apac', ttl: 60_000 })).toMatchObject({ value: 'v:1', outcome: 'hit' });
    expect((await stats({ key, region: 'apac' })).entries).toBeGreaterThan(0);

    expect(await del({ key, region: 'weur' })).toEqual({ ok: true });
    expect(await get({ key, region: 'weur', ttl: 60_000, loader: '0' })).toEqual({ ok: true, value: null, outcome: 'miss' });
    // Region B was sent the push before the del was acknowledged; until it has processed it, v:1 is all it may show.
    await awaitRegion(key, 'apac', null, ['v:1']);
    expect(await get({ key, region: 'apac', ttl: 60_000 })).toMatchObject({ value: 'v:2', outcome: 'loaded' });
    expect(await get({ key, region: 'weur', ttl: 60_000 })).toMatchObject({ value: 'v:2', outcome: 'server-hit' });

    // A write through the bridge by another client reaches both regions' copies the same way.
    const client = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
    try {
      await client.call('SET', key, 'written');
    } finally {
      await client.close();
    }
    await awaitRegion(key, 'weur', 'written', ['v:2']);
    await awaitRegion(key, 'apac', 'written', ['v:2']);
  });

  it('runs one loader for a cold key asked for in two regions at once (the lock lives in Valkey)', async () => {
    const key = `${randomPrefix('stampede')}k`;
    origin.script(key, { delayMs: 200 });
    const bursts = await Promise.all(['weur', 'apac'].map((region) =>
      workers.getJson<{ results: Answer[] }>(`/burst?${query({ key, region, n: 10, ttl: 10_000 })}`)));
    const answers = bursts.flatMap((burst) => burst.results);
    expect(answers).toHaveLength(20);
    expect(answers.map(value)).toEqual(Array(20).fill('v:1'));
    expect(origin.loads(key)).toBe(1);
  });
});
