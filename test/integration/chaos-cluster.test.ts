// Faults × invariants on a Valkey Cluster at the protocol level: coordinators-in-miniature over a cluster-mode
// bridge while primaries fail over, die and rejoin, and slots migrate; the checker must find no stale read
// (rules a–c), no hung get, agreement at quiescence (d) and no lock left behind. One cluster for the whole run.
import { describe, expect, it } from 'vitest';
import { runClusterChaos, WEIGHTED_CLUSTER_FAULTS } from '../chaos/cluster-chaos.ts';
import { failures, formatReport } from '../chaos/report.ts';

describe('chaos: Valkey Cluster', () => {
  it('failovers, killed primaries and slot migrations: no stale read, no hung get, agreement and no lock after', async () => {
    const report = await runClusterChaos({ name: 'cluster faults', durationMs: 10_000, maxOps: 6_000, faults: WEIGHTED_CLUSTER_FAULTS });
    // A kill (promotion, then the rejoin) can take most of the run: one fault is the floor.
    expect(report.faultsInjected, formatReport(report)).toBeGreaterThan(0);
    expect(failures(report), formatReport(report)).toBe(0);
    expect(report.check.reads, formatReport(report)).toBeGreaterThan(48);
  }, 120_000);
});
