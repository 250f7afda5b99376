// Throughput half of the cluster benchmark: pipelined TRACKED.GET and SET over a fixed number of sessions, spread over
// one bridge process or two, against one node or the cluster; with each process's CPU time per command (/proc), the
// figure that says what more cores would buy.
import { performance } from 'node:perf_hooks';
import { TEST_TOKEN } from '../support/bridge.ts';
import type { BridgeChild } from './bridge-process.ts';
import { cpuDuring } from './process-cpu.ts';
import { RespSession, type Command } from './resp-session.ts';
import { alternate, count, median, ms, ratio, summarize, type BenchContext, type Table, type Variant } from './stats.ts';

/** One place the sessions can go: a backend ("one node", "cluster") and the bridge processes in front of it. */
export interface Backend {
  readonly name: string;
  readonly bridges: readonly [BridgeChild, BridgeChild];
  readonly serverPids: ReadonlyArray<number | undefined>;
}

export interface ThroughputShape {
  readonly sessions: number;
  readonly depth: number;
  readonly windowMs: number;
  readonly rounds: number;
  readonly budgetMs: number;
}

type Op = 'TRACKED.GET' | 'SET';
const VALUE = 'x'.repeat(100);
const CAP_MS = 600_000;

interface Setup {
  readonly name: string;
  readonly backend: Backend;
  readonly bridgeCount: 1 | 2;
  readonly sessions: RespSession[];
}

/** Opens `shape.sessions` sessions per (backend, bridge count), split evenly over the bridges used. */
export async function openSetups(backends: readonly Backend[], shape: ThroughputShape): Promise<Setup[]> {
  const setups: Setup[] = [];
  for (const backend of backends) {
    for (const bridgeCount of [1, 2] as const) {
      const sessions = await Promise.all(Array.from({ length: shape.sessions }, (_, i) =>
        RespSession.bridge(backend.bridges[i % bridgeCount]!.url, TEST_TOKEN)));
      setups.push({ name: `${backend.name}, ${bridgeCount} bridge${bridgeCount === 2 ? 's' : ''}`, backend, bridgeCount, sessions });
    }
  }
  return setups;
}

function batches(op: Op, keys: readonly string[], depth: number): Buffer[] {
  return Array.from({ length: Math.ceil(keys.length / depth) }, (_, b) => RespSession.encode(Array.from({ length: depth }, (_, i): Command => {
    const key = keys[(b * depth + i) % keys.length]!;
    return op === 'SET' ? ['SET', key, VALUE] : ['TRACKED.GET', key, CAP_MS];
  })));
}

/** Every session sends its next batch when the last one is answered, until the window closes (closed loop). */
async function closedLoop(sessions: readonly RespSession[], encoded: readonly Buffer[], depth: number, windowMs: number) {
  const rtts: number[] = [];
  let commands = 0;
  const started = performance.now();
  const until = started + windowMs;
  await Promise.all(sessions.map(async (session, s) => {
    // A bound on count as well as time: no session can send more than this however fast replies come.
    for (let b = 0; b < 100_000 && performance.now() < until; b++) {
      const t0 = performance.now();
      await session.send(encoded[(b + s * 7) % encoded.length]!, depth);
      rtts.push(performance.now() - t0);
      commands += depth;
    }
  }));
  return { rtts, commands, elapsedMs: performance.now() - started };
}

interface Tally {
  readonly perRound: number[];
  commands: number;
  readonly cpuMs: Map<string, number>;
}

/** Median over rounds of a / b, round by round (noise of a slow spell lands in both). */
const paired = (a: readonly number[], b: readonly number[]) => median(a.map((v, i) => v / b[i]!));

/** Runs `op` on every setup in alternating rounds; one table and the raw figures. */
export async function measureThroughput(ctx: BenchContext, op: Op, setups: readonly Setup[], keys: readonly string[], shape: ThroughputShape) {
  const encoded = batches(op, keys, shape.depth);
  const tallies = new Map<string, Tally>(setups.map((s) => [s.name, { perRound: [], commands: 0, cpuMs: new Map() }]));
  // Warm-up, untimed: JIT, socket buffers, and (TRACKED.GET) every key's tracking registered on every session.
  for (const setup of setups) await closedLoop(setup.sessions, encoded, shape.depth, 300);
  const variants: Variant[] = setups.map((setup) => ({
    name: setup.name,
    async run() {
      const pids = new Map([
        ['bridges', setup.backend.bridges.slice(0, setup.bridgeCount).map((b) => b.pid)],
        ['valkey', setup.backend.serverPids],
      ]);
      const { result, cpuMs } = await cpuDuring(pids, () => closedLoop(setup.sessions, encoded, shape.depth, shape.windowMs));
      const failed = setup.sessions.find((s) => s.errors > 0);
      if (failed) throw new Error(`${op} on ${setup.name}: ${failed.errors} error replies (last: ${failed.lastError})`);
      const tally = tallies.get(setup.name)!;
      tally.perRound.push((result.commands / result.elapsedMs) * 1000);
      tally.commands += result.commands;
      for (const [name, used] of cpuMs) tally.cpuMs.set(name, (tally.cpuMs.get(name) ?? 0) + used);
      tally.cpuMs.set('wall', (tally.cpuMs.get('wall') ?? 0) + result.elapsedMs);
      return result.rtts;
    },
  }));
  const result = await alternate(variants, {
    rounds: shape.rounds,
    budgetMs: shape.budgetMs,
    onRound: (r) => ctx.log(`cluster ${op} throughput: round ${r + 1} done`),
  });
  const rows = setups.map((setup) => {
    const tally = tallies.get(setup.name)!;
    const oneBridge = setups.find((s) => s.backend === setup.backend && s.bridgeCount === 1)!;
    const oneNode = setups.find((s) => s.bridgeCount === setup.bridgeCount && s.backend !== setup.backend && s.backend.name === 'one node');
    const perCommand = (name: string) => ((tally.cpuMs.get(name) ?? Number.NaN) * 1000) / tally.commands;
    const busy = ['bridges', 'valkey', 'load generator'].reduce((a, n) => a + (tally.cpuMs.get(n) ?? 0), 0) / tally.cpuMs.get('wall')!;
    return [
      setup.name,
      count(median(tally.perRound)),
      ms(summarize(result.samples.get(setup.name)!).p50),
      setup.bridgeCount === 2 ? ratio(paired(tally.perRound, tallies.get(oneBridge.name)!.perRound)) : '',
      oneNode ? ratio(paired(tally.perRound, tallies.get(oneNode.name)!.perRound)) : '',
      perCommand('bridges').toFixed(1),
      perCommand('valkey').toFixed(1),
      perCommand('load generator').toFixed(1),
      busy.toFixed(2),
    ];
  });
  const table: Table = {
    title: `${op} throughput: ${shape.sessions} sessions x ${shape.depth} pipelined per message (${result.roundsRun} alternating rounds of ${shape.windowMs} ms)`,
    columns: ['setup', 'commands/s', 'batch p50 ms', 'two bridges / one (paired)', 'cluster / one node (paired)',
      'bridge CPU µs/cmd', 'valkey CPU µs/cmd', 'generator CPU µs/cmd', 'cores busy'],
    rows,
  };
  const figures = Object.fromEntries(setups.map((s) => {
    const tally = tallies.get(s.name)!;
    return [s.name, { commandsPerSecond: tally.perRound, commands: tally.commands, cpuMs: Object.fromEntries(tally.cpuMs), batchMs: summarize(result.samples.get(s.name)!) }];
  }));
  return { table, figures, rounds: result.roundsRun };
}
