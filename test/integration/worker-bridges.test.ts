// Many bridges in BRIDGE_URL, inside workerd against two real bridge processes on one valkey-server: coordinators
// spread over both by name, a write through one bridge invalidates a copy held on the other (Valkey's tracking), and
// a bridge killed mid-traffic sends its coordinators to the other with no stale read and gets resuming.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstBridgeIndex } from '../../worker/bridge-endpoints.ts';
import { randomPrefix, startBridgeProcess, TEST_TOKEN, waitFor, type BridgeProcess } from '../support/bridge.ts';
import { startTestWorkers, type WorkerHarness } from '../support/miniflare.ts';
import { startOrigin, type Origin } from '../support/origin.ts';
import { RespWsClient } from '../support/resp-ws-client.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

let server: ValkeyServer;
let bridges: BridgeProcess[];
/** The bridges as the coordinator reports them (`http://…/resp`), in BRIDGE_URL's order. */
let urls: string[];
let origin: Origin;
let workers: WorkerHarness;

async function health(bridge: BridgeProcess): Promise<{ ok: boolean; sessions: number }> {
  return (await fetch(`http://127.0.0.1:${bridge.port}/healthz`)).json() as Promise<{ ok: boolean; sessions: number }>;
}

beforeAll(async () => {
  server = await startValkeyServer();
  bridges = await Promise.all([0, 1].map(() => startBridgeProcess({ VALKEY_URL: server.url, BRIDGE_TOKEN: TEST_TOKEN, BRIDGE_SHUTDOWN_GRACE_MS: '200' })));
  // A session opened before tracking is up gets a drop-everything push: start once both can serve.
  for (const bridge of bridges) await waitFor(async () => (await health(bridge)).ok, `bridge ${bridge.port} to be ready`);
  urls = bridges.map((bridge) => `http://127.0.0.1:${bridge.port}/resp`);
  origin = await startOrigin();
  workers = await startTestWorkers([{
    name: 'multi',
    vars: { BRIDGE_TOKEN: TEST_TOKEN, ORIGIN: origin.url, BRIDGE_URL: bridges.map((b) => `ws://127.0.0.1:${b.port}/resp`).join(','), VALKEYASIDE_CONNECT_TIMEOUT_MS: '2000' },
  }]);
}, 60_000);

afterAll(async () => {
  await workers?.dispose();
  await origin?.close();
  await Promise.all((bridges ?? []).map((bridge) => bridge.stop('SIGTERM')));
  await server?.stop();
});

interface ErrorReport { name: string; message: string; code?: string }
type Answer = { ok: true; value: string | null; outcome: string } | { ok: false; error: ErrorReport };
interface Stats { name: string; connected: boolean; bridge: string; entries: number }

function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined) search.set(name, String(value));
  return search.toString();
}

const get = (params: Record<string, string | number | undefined>) => workers.getJson<Answer>(`/get?${query(params)}`);
const del = (params: Record<string, string | undefined>) => workers.getJson<{ ok: boolean; error?: ErrorReport }>(`/del?${query(params)}`);
const ping = (coord: string) => workers.getJson<{ ok: boolean; error?: ErrorReport }>(`/ping?${query({ coord })}`);
const stats = (params: { coord?: string; key?: string }) => workers.getJson<Stats>(`/stats?${query(params)}`);
const value = (answer: Answer) => (answer.ok ? answer.value : `error: ${answer.error.name}: ${answer.error.message}`);

/** `count` coordinator names whose first pick is bridge `index`. */
function namesOn(index: number, count: number, prefix: string): string[] {
  const names: string[] = [];
  for (let i = 0; names.length < count; i++) {
    if (firstBridgeIndex(`${prefix}c${i}`, 2) === index) names.push(`${prefix}c${i}`);
  }
  return names;
}

describe('worker with many bridges', () => {
  it('spreads coordinators over the bridges by name: each opens its session on the bridge its name picks', async () => {
    const prefix = randomPrefix('spread');
    const names = Array.from({ length: 12 }, (_, i) => `${prefix}c${i}`);
    const expected = names.map((name) => firstBridgeIndex(name, 2));
    // Both bridges get some of them (else this test would prove nothing about spreading); fixed per name.
    const onFirst = expected.filter((index) => index === 0).length;
    const before = await Promise.all(bridges.map(health));
    for (const name of names) expect(await ping(name)).toEqual({ ok: true });
    for (const [i, name] of names.entries()) {
      expect(await stats({ coord: name })).toMatchObject({ name, connected: true, bridge: urls[expected[i]!] });
    }
    const after = await Promise.all(bridges.map(health));
    expect([after[0]!.sessions - before[0]!.sessions, after[1]!.sessions - before[1]!.sessions]).toEqual([onFirst, names.length - onFirst]);
    expect(onFirst).toBeGreaterThan(0);
    expect(onFirst).toBeLessThan(names.length);
  });

  it('a del or a write through bridge A invalidates the copy a coordinator on bridge B holds', async () => {
    const prefix = randomPrefix('cross');
    const [onA] = namesOn(0, 1, prefix);
    const [onB] = namesOn(1, 1, prefix);
    const key = `${prefix}k`;
    expect(await get({ key, ttl: 60_000, coord: onA })).toMatchObject({ value: 'v:1', outcome: 'loaded' });
    expect(await get({ key, ttl: 60_000, coord: onB, loader: '0' })).toMatchObject({ value: 'v:1', outcome: 'server-hit' });
    expect(await get({ key, ttl: 60_000, coord: onB, loader: '0' })).toMatchObject({ value: 'v:1', outcome: 'hit' });
    expect((await stats({ coord: onA })).bridge).toBe(urls[0]);
    expect((await stats({ coord: onB })).bridge).toBe(urls[1]);

    // The del goes through bridge A only; B's copy goes when Valkey's invalidation reaches bridge B (the window of
    // docs/guarantees.md, "Many bridges"). Until then B may serve v:1, never anything else.
    expect(await del({ key, coord: onA })).toEqual({ ok: true });
    const seen = new Set<string | null>();
    await waitFor(async () => {
      const answer = value(await get({ key, ttl: 60_000, coord: onB, loader: '0' }));
      seen.add(answer);
      return answer === null;
    }, 'the coordinator on bridge B to drop its copy', 5_000);
    expect([...seen].filter((v) => v !== null && v !== 'v:1')).toEqual([]);
    expect(await get({ key, ttl: 60_000, coord: onB })).toMatchObject({ value: 'v:2', outcome: 'loaded' });
    expect(await get({ key, ttl: 60_000, coord: onB, loader: '0' })).toMatchObject({ value: 'v:2', outcome: 'hit' });

    // A plain write by another client of bridge A.
    const client = await RespWsClient.connect(`ws://127.0.0.1:${bridges[0]!.port}/resp`, { token: TEST_TOKEN });
    try {
      await client.call('SET', key, 'written-through-a');
    } finally {
      await client.close();
    }
    seen.clear();
    await waitFor(async () => {
      const answer = value(await get({ key, ttl: 60_000, coord: onB, loader: '0' }));
      seen.add(answer);
      return answer === 'written-through-a';
    }, 'the coordinator on bridge B to see the write through bridge A', 5_000);
    expect([...seen].filter((v) => v !== 'written-through-a' && v !== 'v:2')).toEqual([]);
  });

  it('a bridge killed mid-traffic: its coordinators move to the other, no stale read after a del, gets resume', async () => {
    const prefix = randomPrefix('failover');
    // Default placement (16 shards): keys whose shards start on either bridge.
    const keys: string[] = [];
    const homes: number[] = [];
    for (let i = 0; keys.length < 6; i++) {
      const key = `${prefix}k${i}`;
      const home = urls.indexOf((await stats({ key })).bridge);
      if (homes.filter((h) => h === home).length < 3) {
        keys.push(key);
        homes.push(home);
      }
    }
    expect(homes.filter((h) => h === 0)).toHaveLength(3);

    let seq = 0;
    /** Per key: [completion sequence, origin loads when the del started]; a get started later must see a newer version. */
    const dels = new Map<string, Array<[number, number]>>(keys.map((k) => [k, []]));
    const violations: string[] = [];
    const errors = new Map<string, number>();
    let completed = 0;
    let phase: 'up' | 'killed' | 'done' = 'up';
    const okAfterKill = new Set<string>();
    const floorAt = (key: string, startedAt: number) =>
      Math.max(0, ...dels.get(key)!.filter(([doneAt]) => doneAt < startedAt).map(([, loads]) => loads));

    const loop = async (worker: number) => {
      let random = worker + 1;
      for (let i = 0; i < 400 && phase !== 'done'; i++) {
        random = (random * 1103515245 + 12345) % 2147483648;
        const key = keys[(random >>> 16) % keys.length]!;
        const killedBefore = phase === 'killed';
        if ((random >>> 24) % 4 === 0) {
          const loadsAtStart = origin.loads(key);
          const answer = await del({ key });
          if (answer.ok) dels.get(key)!.push([++seq, loadsAtStart]);
          else errors.set(answer.error!.name, (errors.get(answer.error!.name) ?? 0) + 1);
        } else {
          const startedAt = ++seq;
          const answer = await get({ key, ttl: 30_000 });
          if (answer.ok && answer.value !== null) {
            const version = Number(answer.value.slice(2));
            const floor = floorAt(key, startedAt);
            if (version <= floor) violations.push(`${key}: got ${answer.value} (${answer.outcome}) after a del that saw ${floor} loads`);
            if (killedBefore) okAfterKill.add(key);
          } else if (!answer.ok) {
            errors.set(answer.error.name, (errors.get(answer.error.name) ?? 0) + 1);
          }
        }
        completed++;
      }
    };

    const kill = async () => {
      await waitFor(() => completed >= 40, 'some traffic before the kill', 20_000, 10);
      await bridges[0]!.stop('SIGKILL');
      phase = 'killed';
      // Every key's coordinator serves again, through the surviving bridge.
      await waitFor(() => okAfterKill.size === keys.length, 'a successful get of every key after the kill', 20_000, 10);
      phase = 'done';
    };

    await Promise.all([kill(), loop(0), loop(1), loop(2)]);
    expect(violations).toEqual([]);
    expect([...errors.keys()].filter((name) => name !== 'ConnectionError')).toEqual([]);
    for (const key of keys) expect(await stats({ key })).toMatchObject({ connected: true, bridge: urls[1] });

    // The moved coordinators track their reads on the new bridge: a del through another coordinator reaches them.
    const movedKey = keys[homes.indexOf(0)]!;
    expect(await get({ key: movedKey, ttl: 30_000 })).toMatchObject({ ok: true });
    expect(await get({ key: movedKey, ttl: 30_000, loader: '0' })).toMatchObject({ outcome: 'hit' });
    const other = `${prefix}other`;
    expect(await del({ key: movedKey, coord: other })).toEqual({ ok: true });
    await waitFor(async () => value(await get({ key: movedKey, ttl: 30_000, loader: '0' })) === null,
      'the moved coordinator to drop its copy on the push from the surviving bridge', 5_000);

    // A coordinator created now whose first pick is the dead bridge fails over within its first call.
    const [late] = namesOn(0, 1, `${prefix}late`);
    expect(await ping(late!)).toEqual({ ok: true });
    expect(await stats({ coord: late! })).toMatchObject({ connected: true, bridge: urls[1] });
  }, 60_000);
});
