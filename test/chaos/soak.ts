// `npm run test:chaos`: the long, bounded soak. Runs the protocol-level chaos (coordinators-in-miniature), the
// library-level chaos (CacheAside in workerd) with every fault mixed, the same protocol-level chaos on a Valkey
// Cluster (failovers, killed primaries, slot migrations), and the RESP fuzzer against a bridge process, then prints
// one report per part and a summary. Exit code 1 when any invariant broke.
// Env: CHAOS_SECONDS (total, default 180), CHAOS_SEED, CHAOS_PARTS (comma list of bridge,library,cluster,fuzz; default
// all).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startBridgeProcess, TEST_TOKEN } from '../support/bridge.ts';
import { startValkeyServer } from '../support/valkey-server.ts';
import { runBridgeChaos } from './bridge-chaos.ts';
import { runClusterChaos, WEIGHTED_CLUSTER_FAULTS } from './cluster-chaos.ts';
import { BRIDGE_FAULTS, LIBRARY_FAULTS } from './faults.ts';
import { runFuzz, type FuzzReport } from './fuzz-run.ts';
import { runLibraryChaos } from './library-chaos.ts';
import { failures, formatReport, type ChaosReport } from './report.ts';

// A real GC before each memory reading (the soak runs under tsx, without --expose-gc).
setFlagsFromString('--expose-gc');
(globalThis as { gc?: () => void }).gc ??= runInNewContext('gc') as () => void;

const totalSeconds = Number(process.env.CHAOS_SECONDS ?? 180);
if (!Number.isFinite(totalSeconds) || totalSeconds < 5) throw new RangeError(`CHAOS_SECONDS must be a number >= 5, got ${process.env.CHAOS_SECONDS}`);
const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const parts = new Set((process.env.CHAOS_PARTS ?? 'bridge,library,cluster,fuzz').split(',').map((p) => p.trim()));
const share = { bridge: 0.3, library: 0.3, cluster: 0.3, fuzz: 0.1 };
const used = (Object.keys(share) as Array<keyof typeof share>).filter((p) => parts.has(p));
const weight = used.reduce((sum, p) => sum + share[p], 0);
const secondsFor = (part: keyof typeof share) => Math.max(3, (totalSeconds * share[part]) / weight);

function formatFuzz(report: FuzzReport, exitCode: number | null): string {
  return [
    `== fuzz (seed ${seed}) ==`,
    `frames ${report.frames}: ${JSON.stringify(report.byKind)}`,
    `sessions closed by the bridge, by code: ${JSON.stringify(report.closes)}`,
    `bystander commands ${report.goodCommands}, errors ${report.goodErrors.length}${report.goodErrors.length ? `: ${report.goodErrors.slice(0, 3).join('; ')}` : ''}`,
    `bridge process ${exitCode === null ? 'alive' : `EXITED with ${exitCode}`}; sessions left ${report.sessionsAfter}`,
    `bridge memory before heap ${report.heapBeforeMiB} MiB rss ${report.rssBeforeMiB} MiB; after heap ${report.heapAfterMiB} MiB rss ${report.rssAfterMiB} MiB`,
  ].join('\n');
}

async function main(): Promise<number> {
  console.log(`chaos soak: ${totalSeconds} s over ${used.join(', ')}, seed ${seed}`);
  const reports: ChaosReport[] = [];
  let broken = 0;
  if (parts.has('bridge')) {
    const report = await runBridgeChaos({
      name: 'protocol level: coordinators-in-miniature, every fault', durationMs: secondsFor('bridge') * 1000, maxOps: 5_000_000,
      faults: [...BRIDGE_FAULTS, 'ws-blackhole'], coordinators: 6, keys: 6, lanes: 12, seed,
    });
    console.log(formatReport(report));
    reports.push(report);
    broken += failures(report);
  }
  if (parts.has('library')) {
    const report = await runLibraryChaos({
      name: 'library level: CacheAside in workerd and Go valkeyaside clients, every fault', durationMs: secondsFor('library') * 1000, maxOps: 5_000_000,
      faults: [...LIBRARY_FAULTS, 'ws-blackhole'], keys: 6, lanes: 10, seed, goShare: 0.15,
    });
    console.log(formatReport(report));
    reports.push(report);
    broken += failures(report);
  }
  if (parts.has('cluster')) {
    // chaos-cluster.test.ts is the short run of this part in npm test.
    const report = await runClusterChaos({
      name: 'protocol level on a Valkey Cluster (3 primaries + 3 replicas): failovers, killed primaries, slot migrations',
      durationMs: secondsFor('cluster') * 1000, maxOps: 5_000_000, seed, faults: WEIGHTED_CLUSTER_FAULTS,
    });
    console.log(formatReport(report));
    reports.push(report);
    broken += failures(report);
  }
  if (parts.has('fuzz')) {
    const server = await startValkeyServer();
    const fuzzToken = 'fuzz-token-0123456789abcdef';
    const bridge = await startBridgeProcess({
      VALKEY_URL: server.url, BRIDGE_MAX_FRAME_BYTES: String(64 * 1024),
      BRIDGE_TOKENS: JSON.stringify([{ token: TEST_TOKEN }, { token: fuzzToken, prefix: 'fuzz:' }]),
    });
    try {
      const report = await runFuzz({
        url: bridge.url, httpBase: `http://127.0.0.1:${bridge.port}`, fuzzToken, goodToken: TEST_TOKEN,
        maxFrameBytes: 64 * 1024, frames: 10_000_000, durationMs: secondsFor('fuzz') * 1000, sessions: 6, seed,
      });
      const exitCode = bridge.child.exitCode;
      console.log(formatFuzz(report, exitCode));
      const bad = (exitCode === null ? 0 : 1) + report.goodErrors.length + (report.heapAfterMiB - report.heapBeforeMiB > 64 ? 1 : 0);
      console.log(`verdict: ${bad === 0 ? 'PASS' : `FAIL (${bad})`}`);
      broken += bad;
    } finally {
      await bridge.stop();
      await server.stop();
    }
  }
  const totalOps = reports.reduce((n, r) => n + Object.values(r.summary.ops).reduce((a, b) => a + b, 0), 0);
  const totalFaults = reports.reduce((n, r) => n + r.faultsInjected, 0);
  const stale = reports.reduce((n, r) => n + r.check.staleAfterBridgeWrite + r.check.staleAfterOutsideWrite + r.check.staleNull +
    r.check.loadStoredAfterDel + r.check.servedExpired, 0);
  const hung = reports.reduce((n, r) => n + r.check.hung, 0);
  console.log(`\n== summary (seed ${seed}) ==\noperations ${totalOps}, faults injected ${totalFaults}, stale reads ${stale}, ` +
    `hung gets ${hung}, invariant violations ${broken}\n${broken > 0 ? 'FAIL' : 'PASS'}`);
  return broken === 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (error: unknown) => {
  console.error(error);
  process.exit(2);
});
