// `npm run bench [-- name ...]`: runs the selected benchmarks (all by default) one after another, prints one table
// per measurement and writes every figure, with the machine it ran on, as JSON (BENCH_RESULTS or
// test/bench/results.json). BENCH_QUICK=1 is a smoke run with small counts. It reports; it never fails on a figure.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { findValkeyServer, serverVersion } from '../support/find-valkey-server.mjs';
import { benchmark as bridgeOverhead } from './bridge-overhead.ts';
import { benchmark as topology } from './bridge-topology.ts';
import { benchmark as cluster } from './cluster.ts';
import { benchmark as fairness } from './fairness.ts';
import { benchmark as fanout } from './fanout.ts';
import { benchmark as hitPath } from './hit-path.ts';
import { benchmark as invalidationLatency } from './invalidation-latency.ts';
import { benchmark as missPath } from './miss-path.ts';
import { benchmark as placement } from './placement.ts';
import { benchmark as pushFloor } from './push-floor.ts';
import { benchmark as stampede } from './stampede.ts';
import { latencyChart, targetChart } from './svg-chart.ts';
import { formatTable, type BenchContext, type BenchReport, type Benchmark } from './stats.ts';

const ALL: readonly Benchmark[] = [hitPath, bridgeOverhead, invalidationLatency, pushFloor, stampede, fanout, missPath, placement, fairness, topology,
  cluster];
const DEFAULT_OUT = fileURLToPath(new URL('./results.json', import.meta.url));
const DEFAULT_CHARTS = fileURLToPath(new URL('../../docs/charts/', import.meta.url));

/** Writes the run's SVG charts (latency tables, targets) into `dir`; returns the files written. */
function writeCharts(reports: readonly BenchReport[], dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  // A table that a benchmark of this run no longer prints must not leave its old chart behind among the new ones.
  const ran = new Set(reports.map((report) => report.name));
  for (const file of readdirSync(dir)) {
    const chart = /^(.+)-\d+\.svg$/.exec(file);
    if (file === 'targets.svg' || (chart !== null && ran.has(chart[1]!))) unlinkSync(`${dir}${file}`);
  }
  const written: string[] = [];
  const put = (name: string, svg: string | null) => {
    if (svg === null) return;
    writeFileSync(`${dir}${name}`, svg);
    written.push(name);
  };
  for (const report of reports) report.tables.forEach((table, i) => put(`${report.name}-${i + 1}.svg`, latencyChart(table)));
  put('targets.svg', targetChart(reports));
  return written;
}

function select(args: readonly string[]): Benchmark[] {
  if (args.length === 0) return [...ALL];
  const chosen: Benchmark[] = [];
  for (const arg of args) {
    const name = arg.toLowerCase().replace(/\.ts$/, '');
    const found = ALL.find((b) => b.name === name || b.aliases.includes(name));
    if (!found) {
      const names = ALL.map((b) => [b.name, ...b.aliases].join('|')).join(', ');
      throw new Error(`no benchmark named ${JSON.stringify(arg)}; choose from: ${names}`);
    }
    if (!chosen.includes(found)) chosen.push(found);
  }
  return chosen;
}

function machine(): Record<string, unknown> {
  const bin = findValkeyServer();
  const server = serverVersion(bin);
  let nproc = cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  } catch {
    // not on PATH: os.cpus() is the same number on Linux
  }
  return {
    nproc,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    server: server ? `${server.name} ${server.version} (${bin})` : bin,
  };
}

function print(report: BenchReport): void {
  const out: string[] = [`\n## ${report.title} (${report.name})`, ''];
  for (const line of report.method) out.push(`- ${line}`);
  for (const table of report.tables) out.push('', formatTable(table));
  if (report.targets.length > 0) {
    out.push('', formatTable({
      title: 'Targets (reported, never enforced)',
      columns: ['target', 'measured', 'met'],
      rows: report.targets.map((t) => [t.target, t.actual, t.met === null ? 'n/a' : t.met ? 'yes' : 'NO']),
    }));
  }
  for (const note of report.notes) out.push('', `> ${note}`);
  process.stdout.write(out.join('\n') + '\n');
}

async function main(): Promise<void> {
  const quick = process.env.BENCH_QUICK === '1';
  const chosen = select(process.argv.slice(2));
  const started = new Date();
  const info = machine();
  const ctx: BenchContext = { quick, log: (message) => process.stderr.write(`[bench] ${message}\n`) };
  process.stdout.write(`# valkeyaside-edge benchmarks${quick ? ' (BENCH_QUICK=1)' : ''}\n\n`);
  process.stdout.write(`machine: ${info.nproc} cores (${info.cpuModel}), ${info.memory}, Node ${info.node}, ${info.server}\n`);
  const reports: BenchReport[] = [];
  const failures: Array<{ name: string; error: string }> = [];
  for (const bench of chosen) {
    const t0 = Date.now();
    ctx.log(`${bench.name}: starting`);
    try {
      const report = await bench.run(ctx);
      reports.push(report);
      print(report);
      ctx.log(`${bench.name}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      // One broken benchmark must not hide the others' figures.
      const error = err instanceof Error ? err.stack ?? err.message : String(err);
      failures.push({ name: bench.name, error });
      process.stdout.write(`\n## ${bench.title} (${bench.name})\n\nFAILED: ${error}\n`);
    }
  }
  const out = process.env.BENCH_RESULTS || DEFAULT_OUT;
  const json = {
    startedAt: started.toISOString(),
    durationS: Math.round((Date.now() - started.getTime()) / 100) / 10,
    quick,
    machine: info,
    selected: chosen.map((b) => b.name),
    benchmarks: reports,
    failures,
  };
  writeFileSync(out, JSON.stringify(json, null, 2) + '\n');
  process.stdout.write(`\nfigures written to ${out} (${json.durationS} s)\n`);
  // The published charts (docs/charts/, linked from docs/benchmarks.md) come from full runs of everything only.
  const chartsDir = process.env.BENCH_CHARTS || (quick || process.argv.length > 2 ? '' : DEFAULT_CHARTS);
  if (chartsDir !== '') {
    const dir = chartsDir.endsWith('/') ? chartsDir : `${chartsDir}/`;
    process.stdout.write(`charts written to ${dir}: ${writeCharts(reports, dir).join(', ')}\n`);
  }
  // A failed benchmark is a broken harness, not a slow figure: say so in the exit code.
  process.exitCode = failures.length > 0 ? 1 : 0;
}

main().then(
  // Stray handles (a socket a failed benchmark left open) must not keep the suite alive.
  () => setTimeout(() => process.exit(), 200).unref(),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
