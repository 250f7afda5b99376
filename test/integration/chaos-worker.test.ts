// Faults × invariants through the library itself: CacheAside and its coordinators in workerd (Miniflare), four
// coordinators per key (two Workers × two coordinator families) and real Go valkeyaside clients on the same keys, the
// same randomized history and checker as the protocol-level run, plus coordinator aborts and loader isolate death.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHistory } from '../chaos/checker.ts';
import { LIBRARY_FAULTS } from '../chaos/faults.ts';
import { History } from '../chaos/history.ts';
import { runLibraryChaos, startLibraryChaosEnv, type LibraryChaosEnv } from '../chaos/library-chaos.ts';
import { failures, formatReport } from '../chaos/report.ts';
import { randomPrefix, waitFor } from '../support/bridge.ts';

const DURATION_MS = 1_000;
const MAX_OPS = 3_000;
/** Healthy runs at most, until one has served stale answers. */
const HEALTHY_RUNS = 3;
/** Loader gets and dels run by real Go valkeyaside clients on the same keys (go-client.ts). */
const GO_SHARE = 0.15;
let env: LibraryChaosEnv;

// On a fresh machine the first `go build` of the Go chaos client downloads and compiles valkey-go (~45 s cold).
beforeAll(async () => {
  env = await startLibraryChaosEnv();
}, 240_000);

afterAll(async () => {
  await env?.close();
});


describe('chaos: the library under faults', () => {
  it('keeps every promise on a healthy stack while reads race invalidations', async () => {
    // A stale answer needs a value to outlive its ttl between two SWR gets of its key: on a loaded machine one short
    // run may see none, so the run is repeated (at most HEALTHY_RUNS times) until stale answers were checked too.
    let staleServed = 0;
    for (let run = 1; run <= HEALTHY_RUNS && staleServed === 0; run++) {
      const report = await runLibraryChaos({ name: `library, no fault (run ${run})`, durationMs: DURATION_MS, maxOps: MAX_OPS, faults: [], dataDelayMs: 20, goShare: GO_SHARE }, env);
      expect(failures(report), formatReport(report)).toBe(0);
      expect(report.extra?.goOps, formatReport(report)).toBeGreaterThan(0);
      // getMany keys (2-3 per call, one loadMany) are checked like any get.
      expect(report.extra?.manyReads, formatReport(report)).toBeGreaterThan(0);
      // The quiescence sweep alone reads 2 × 4 coordinators × 4 keys; more means the workload's reads were checked too.
      expect(report.check.reads, formatReport(report)).toBeGreaterThan(32);
      staleServed = report.check.staleServed;
    }
    // Stale-while-revalidate gets are in the mix, and their windows opened: stale answers were checked too.
    expect(staleServed).toBeGreaterThan(0);
  });

  it.each(LIBRARY_FAULTS.map((fault) => [fault]))('%s: no stale read, no hung get, agreement and no lock after it clears', async (fault) => {
    const report = await runLibraryChaos({ name: `library, ${fault}`, durationMs: DURATION_MS, maxOps: MAX_OPS, faults: [fault], goShare: GO_SHARE }, env);
    expect(report.faultsInjected, formatReport(report)).toBeGreaterThan(0);
    expect(failures(report), formatReport(report)).toBe(0);
    // The quiescence sweep alone reads 2 × 4 coordinators × 4 keys, and must have succeeded after the fault.
    expect(report.check.reads, formatReport(report)).toBeGreaterThanOrEqual(32);
  });
});

describe('chaos: rule (c), a load computed before a del is never stored after it', () => {
  // Every lock of a coordinator uses its one client id as the placeholder. A del during a slow load empties the key;
  // if the next get of that coordinator took the lock again with the SAME id, the first load's compare-and-set would
  // match it and store a value computed before the del. The coordinator makes that get wait for its own load instead.
  it('a slow load that started before a del is not stored after it, and the next get loads afresh', async () => {
    const history = new History();
    env.workers.history = history;
    const [client] = env.workers.clients;
    const key = `${randomPrefix('aba')}k`;
    const g1 = history.begin('get', key, client!.name);
    // G1 holds the lock; its loader has read the value ("computed" at the origin) and takes 300 ms more.
    const first = client!.get(g1, 5_000, { delayMs: 300, fail: false }, 3_000).then((a) => history.succeed(g1, a));
    await waitFor(() => [...history.loads.values()].some((load) => load.opId === g1.id), 'the first loader to start');
    const del = history.begin('del', key, client!.name);
    await client!.del(key, 2_000);
    history.succeed(del);
    // G2 must not take the lock again while G1's load runs; once G1's compare-and-set has failed, G2 loads.
    const g2 = history.begin('get', key, client!.name);
    const second = client!.get(g2, 5_000, { delayMs: 600, fail: false }, 3_000).then((a) => history.succeed(g2, a));
    await Promise.all([first, second]);
    const g3 = history.begin('get', key, client!.name);
    history.succeed(g3, await client!.get(g3, 5_000, { delayMs: 0, fail: false }, 3_000));
    const check = checkHistory(history);
    expect(check.loadStoredAfterDel, check.examples.join('\n')).toBe(0);
    expect(history.ops.find((op) => op.id === g3.id)?.value).not.toBe(history.ops.find((op) => op.id === g1.id)?.value);
    expect(history.ops.find((op) => op.id === g3.id)?.value).toBe(history.ops.find((op) => op.id === g2.id)?.value);
  });
});

describe('chaos: a coordinator whose bridge socket goes half-open', () => {
  // Nothing is pushed through a half-open socket and it never closes. A coordinator notices when a command it sent
  // waits VALKEYASIDE_REPLY_TIMEOUT_MS (1000 here) unanswered; one that only serves local hits sends a heartbeat
  // PING once its socket is quiet for VALKEYASIDE_HEARTBEAT_MS (250 here), so every coordinator drops its copies
  // within about 250 + 1.25 × 1000 ms, whether or not it holds a client id (and so refreshes a marker).
  it('drops its copies once a heartbeat or marker refresh goes unanswered, with or without a client id', async () => {
    const history = new History();
    env.workers.history = history;
    const { stack } = env;
    const client = env.workers.clients[0]!;
    const p = randomPrefix('halfopen');
    const [loaded, peeked] = [`${p}loaded`, `${p}peeked`]; // per-key placement: two coordinators
    const get = (key: string, withLoader: boolean) =>
      client.get(history.begin('get', key, client.name), 60_000, withLoader ? { delayMs: 0, fail: false } : null, 3_000);
    const before = await get(loaded, true);
    expect(before.outcome).toBe('loaded');
    await stack.direct.set(peeked, 'peeked-1');
    expect(await get(peeked, false)).toEqual({ value: 'peeked-1', outcome: 'server-hit' });
    // The store's own invalidation can overtake the coordinator's read-back and drop the fresh copy (a spurious,
    // safe miss under load): read until the copy is local, so the fault below meets a coordinator holding one.
    for (let attempt = 0; attempt < 3 && (await get(loaded, false)).outcome !== 'hit'; attempt++);
    expect(await get(loaded, false)).toEqual({ value: before.value, outcome: 'hit' });
    stack.wsProxy.halfOpen(true);
    try {
      await stack.direct.set(loaded, 'outside-2');
      await stack.direct.set(peeked, 'outside-2');
      await waitFor(async () => {
        const answer = await get(loaded, false).catch(() => null);
        return answer?.value !== before.value;
      }, 'the coordinator holding a client id to stop serving its copy', 250 + 1_250 + 1_500);
      await waitFor(async () => {
        const answer = await get(peeked, false).catch(() => null);
        return answer?.value !== 'peeked-1';
      }, 'the coordinator without a client id to stop serving its copy', 250 + 1_250 + 1_500);
    } finally {
      stack.wsProxy.cutAll();
      stack.wsProxy.halfOpen(false);
      await stack.waitReady();
    }
  });
});
