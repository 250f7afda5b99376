// What a chaos run reports: operations, faults, the checker's counts, quiescence, errors by type, memory before and
// after, and the one-line verdict. Printed by the soak (test/chaos/soak.ts) and used by the chaos tests.
import { violations, type CheckResult } from './checker.ts';

export interface Quiescence {
  /** Gets after the faults cleared that did not succeed (a lock left behind, a coordinator that did not recover). */
  readonly sweepFailures: number;
  /** (d) coordinator answers or local copies that differ from the server at quiescence. */
  readonly disagreements: number;
  /** Keys still holding a lock placeholder after the sweep. */
  readonly placeholdersLeft: number;
  readonly examples: readonly string[];
}

export interface MemorySnapshot {
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
}

export interface ChaosReport {
  readonly name: string;
  readonly seed: number;
  readonly durationMs: number;
  readonly summary: { ops: Record<string, number>; errors: Record<string, number>; faults: Record<string, number> };
  readonly faultsInjected: number;
  readonly check: CheckResult;
  readonly quiescence: Quiescence;
  readonly memoryBefore: MemorySnapshot;
  readonly memoryAfter: MemorySnapshot;
  readonly extra?: Record<string, number | string>;
}

const mib = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

/** Memory of this process, after a GC when `--expose-gc` allows one. */
export function memorySnapshot(): MemorySnapshot {
  (globalThis as { gc?: () => void }).gc?.();
  const usage = process.memoryUsage();
  return { rssMiB: mib(usage.rss), heapUsedMiB: mib(usage.heapUsed) };
}

/** Everything that must be zero. */
export function failures(report: ChaosReport): number {
  return violations(report.check) + report.quiescence.sweepFailures + report.quiescence.disagreements + report.quiescence.placeholdersLeft;
}

export function formatReport(report: ChaosReport): string {
  const c = report.check;
  const q = report.quiescence;
  const ops = Object.values(report.summary.ops).reduce((a, b) => a + b, 0);
  const lines = [
    `== ${report.name} (seed ${report.seed}, ${(report.durationMs / 1000).toFixed(1)} s) ==`,
    `operations ${ops}: ${JSON.stringify(report.summary.ops)}`,
    `faults injected ${report.faultsInjected}: ${JSON.stringify(report.summary.faults)}`,
    `reads checked ${c.reads}; stale (a) after a del/write through the bridge ${c.staleAfterBridgeWrite}; ` +
      `(b) after an outside write past the bound ${c.staleAfterOutsideWrite}; (c) load stored after a del ${c.loadStoredAfterDel}; ` +
      `stale null ${c.staleNull}; served expired ${c.servedExpired}; unknown values ${c.unknownValues}`,
    `stale-while-revalidate: ${c.staleServed} stale answers, ${c.staleOutsideWindow} outside their window`,
    `hung gets ${c.hung}; sweep failures ${q.sweepFailures}; (d) disagreements ${q.disagreements}; locks left ${q.placeholdersLeft}`,
    `allowed windows: ${c.windowReads.outside} reads after an outside write within the bound (max lag ${c.windowReads.maxOutsideLagMs} ms), ` +
      `${c.windowReads.crossClient} on another coordinator within the push bound (max lag ${c.windowReads.maxCrossLagMs} ms)`,
    `errors by type: ${JSON.stringify(report.summary.errors)}`,
    `memory before rss ${report.memoryBefore.rssMiB} MiB heap ${report.memoryBefore.heapUsedMiB} MiB; ` +
      `after rss ${report.memoryAfter.rssMiB} MiB heap ${report.memoryAfter.heapUsedMiB} MiB`,
  ];
  if (report.extra) lines.push(`extra: ${JSON.stringify(report.extra)}`);
  for (const example of [...c.examples, ...q.examples]) lines.push(`  ! ${example}`);
  lines.push(`verdict: ${failures(report) === 0 ? 'PASS' : `FAIL (${failures(report)} violations)`}`);
  return lines.join('\n');
}
