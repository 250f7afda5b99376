// Faults × invariants at the protocol level: coordinators-in-miniature (test/chaos/mini-coordinator.ts) over the
// real bridge and server run a randomized history while one kind of fault is injected again and again; the
// checker must find no stale read (rules a–c), no hung get, agreement at quiescence (d) and no lock left behind.
// The first case proves the checker has teeth: with the race protection off it does find stale reads.
import { describe, expect, it } from 'vitest';
import { runBridgeChaos } from '../chaos/bridge-chaos.ts';
import { BRIDGE_FAULTS } from '../chaos/faults.ts';
import { failures, formatReport } from '../chaos/report.ts';

const DURATION_MS = 1_000;
const MAX_OPS = 4_000;

describe('chaos: the checker', () => {
  it('finds stale reads when coordinators ignore the cacheable flag and pushes for reads in flight', async () => {
    // Valkey's replies to reads are delayed, its invalidations are not: every racing read is one the bridge marks
    // uncacheable, and a naive coordinator keeps it anyway, for ever (no push is due for an uncacheable read).
    // Writes dominate so that racing reads are often followed by a change the naive copy never hears about.
    const report = await runBridgeChaos({
      name: 'naive coordinators', durationMs: 2 * DURATION_MS, maxOps: MAX_OPS, faults: [], naive: true, dataDelayMs: 20,
      mix: { get: 40, peek: 20, del: 10, bridgeWrite: 10, outsideWrite: 15, outsideDel: 5 },
    });
    const stale = report.check.staleAfterBridgeWrite + report.check.staleAfterOutsideWrite + report.quiescence.disagreements;
    expect(stale, formatReport(report)).toBeGreaterThan(0);
  });

  it('finds nothing on a healthy stack with the protection on, under the same delay', async () => {
    const report = await runBridgeChaos({ name: 'no fault', durationMs: DURATION_MS, maxOps: MAX_OPS, faults: [], dataDelayMs: 20 });
    expect(failures(report), formatReport(report)).toBe(0);
    // The quiescence sweep alone reads 2 × 4 coordinators × 4 keys; more means the workload's reads were checked too.
    expect(report.check.reads, formatReport(report)).toBeGreaterThan(32);
  });
});

describe('chaos: each fault keeps every promise', () => {
  it.each(BRIDGE_FAULTS.map((fault) => [fault]))('%s: no stale read, no hung get, agreement and no lock after it clears', async (fault) => {
    const report = await runBridgeChaos({ name: fault, durationMs: DURATION_MS, maxOps: MAX_OPS, faults: [fault] });
    expect(report.faultsInjected, formatReport(report)).toBeGreaterThan(0);
    expect(failures(report), formatReport(report)).toBe(0);
    // The quiescence sweep alone reads 2 × 4 coordinators × 4 keys, and must have succeeded after the fault.
    expect(report.check.reads, formatReport(report)).toBeGreaterThanOrEqual(32);
  });
});
