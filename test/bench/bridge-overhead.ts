// Benchmark 2, bridge overhead: GET and SET through the bridge (WebSocket sessions, pipelined) against the same
// load straight to Valkey with iovalkey, and with a raw TCP client that uses the bridge client's own codec (to tell
// the bridge hop from the client library's cost), and with a byte relay (relay-floor.ts: the floor of two hops).
// Same sessions, same pipeline depth, same keys.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'iovalkey';
import { performance } from 'node:perf_hooks';
import { TEST_TOKEN, randomPrefix } from '../support/bridge.ts';
import { startValkeyServer } from '../support/valkey-server.ts';
import { startBridgeChild } from './bridge-process.ts';
import { RespSession, type Command } from './resp-session.ts';
import {
  LATENCY_COLUMNS, alternate, count, latencyRow, median, ms, pairedRatio, pause, ratio, summarize,
  type BenchContext, type BenchReport, type Benchmark, type Table, type TargetCheck, type Variant,
} from './stats.ts';

const KEYS = 1_000;
const VALUE = 'x'.repeat(100);
const BRIDGE = 'bridge (WebSocket)';
const DIRECT = 'iovalkey direct';
const RAW = 'raw TCP direct';
const RELAY = 'relay floor (WebSocket)';
const TRANSPORTS = [BRIDGE, RELAY, DIRECT, RAW] as const;
const RELAY_CHILD = fileURLToPath(new URL('./relay-floor.ts', import.meta.url));

/** The relay floor in its own process (like the bridge); killed with the bench. */
async function startRelay(host: string, port: number): Promise<{ url: string; close(): void }> {
  const child = fork(RELAY_CHILD, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_VALKEY_HOST: host, BENCH_VALKEY_PORT: String(port) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { kill(); reject(new Error('the relay floor did not start within 20 s')); }, 20_000);
    child.once('message', (m: { url: string }) => { clearTimeout(timer); resolve(m.url); });
    child.once('exit', () => { clearTimeout(timer); reject(new Error('the relay floor exited')); });
  });
  return { url, close: kill };
}
type Transport = (typeof TRANSPORTS)[number];
type Op = 'GET' | 'SET';

/** One connection able to run a batch of `depth` commands and resolve when all replies are in. */
interface Pipe {
  run(batch: number): Promise<void>;
  close(): void;
}

function commands(op: Op, keys: readonly string[], from: number, depth: number): Command[] {
  return Array.from({ length: depth }, (_, i) => {
    const key = keys[(from + i) % keys.length]!;
    return op === 'GET' ? ['GET', key] : ['SET', key, VALUE];
  });
}

/** Pre-encoded batches, cycled through, so that encoding is not part of the measured loop. */
function encodedBatches(op: Op, keys: readonly string[], depth: number): Buffer[] {
  const count = Math.max(1, Math.ceil(keys.length / depth));
  return Array.from({ length: count }, (_, b) => RespSession.encode(commands(op, keys, b * depth, depth)));
}

async function openPipe(transport: Transport, op: Op, keys: readonly string[], depth: number, env: { bridgeUrl: string; relayUrl: string; host: string; port: number }): Promise<Pipe> {
  if (transport === DIRECT) {
    const redis = new Redis({ host: env.host, port: env.port, lazyConnect: true });
    await redis.connect();
    const batches = Array.from({ length: Math.max(1, Math.ceil(keys.length / depth)) }, (_, b) => commands(op, keys, b * depth, depth));
    return {
      async run(batch) {
        const cmds = batches[batch % batches.length]!;
        if (depth === 1) {
          const [name, key, value] = cmds[0]! as [string, string, string?];
          await (name === 'GET' ? redis.get(key) : redis.set(key, value!));
          return;
        }
        const results = await redis.pipeline(cmds.map(([name, ...args]) => [String(name).toLowerCase(), ...args.map(String)])).exec();
        if (results?.some(([err]) => err)) throw new Error('a pipelined command failed');
      },
      close: () => redis.disconnect(),
    };
  }
  const session = transport === BRIDGE ? await RespSession.bridge(env.bridgeUrl, TEST_TOKEN)
    : transport === RELAY ? await RespSession.bridge(env.relayUrl, TEST_TOKEN) : await RespSession.tcp(env.host, env.port);
  const batches = encodedBatches(op, keys, depth);
  return {
    async run(batch) {
      await session.send(batches[batch % batches.length]!, depth);
    },
    close: () => session.close(),
  };
}

interface LoadResult {
  /** Each batch's round trip (ms). */
  readonly rtts: number[];
  readonly commands: number;
  readonly elapsedMs: number;
}

/** `pipes` run batches back to back (closed loop) until `batches` per pipe are done or `windowMs` passes. */
async function closedLoop(pipes: readonly Pipe[], depth: number, batchesPerPipe: number, windowMs: number): Promise<LoadResult> {
  const rtts: number[] = [];
  let total = 0;
  const started = performance.now();
  const until = started + windowMs;
  await Promise.all(pipes.map(async (pipe, p) => {
    for (let b = 0; b < batchesPerPipe && performance.now() < until; b++) {
      const t0 = performance.now();
      await pipe.run(b + p * 7);
      rtts.push(performance.now() - t0);
      total += depth;
    }
  }));
  return { rtts, commands: total, elapsedMs: performance.now() - started };
}

interface Config {
  readonly label: string;
  readonly sessions: number;
  readonly depth: number;
  readonly batchesPerPipe: number;
  readonly windowMs: number;
}

async function run(ctx: BenchContext): Promise<BenchReport> {
  const server = await startValkeyServer();
  const bridge = await startBridgeChild(server.url, {}, 'overhead');
  const relay = await startRelay(server.host, server.port);
  const setup = new Redis({ host: server.host, port: server.port, lazyConnect: true });
  const tables: Table[] = [];
  const targets: TargetCheck[] = [];
  const figures: Record<string, unknown> = {};
  const notes: string[] = [];
  try {
    await setup.connect();
    const prefix = randomPrefix('ovh');
    const keys = Array.from({ length: KEYS }, (_, i) => `${prefix}${i}`);
    await setup.mset(Object.fromEntries(keys.map((k) => [k, VALUE])));
    const env = { bridgeUrl: bridge.url, relayUrl: relay.url, host: server.host, port: server.port };
    const configs: Config[] = [
      { label: 'latency: 1 session, 1 command at a time', sessions: 1, depth: 1, batchesPerPipe: ctx.quick ? 300 : 1_500, windowMs: ctx.quick ? 500 : 1_500 },
      { label: 'throughput: 32 sessions x 32 pipelined per message', sessions: 32, depth: 32, batchesPerPipe: 100_000, windowMs: ctx.quick ? 300 : 800 },
    ];
    for (const op of ['GET', 'SET'] as const) {
      for (const config of configs) {
        const pipes = new Map<Transport, Pipe[]>();
        for (const t of TRANSPORTS) pipes.set(t, await Promise.all(Array.from({ length: config.sessions }, () => openPipe(t, op, keys, config.depth, env))));
        const throughput = new Map<Transport, number[]>(TRANSPORTS.map((t) => [t, []]));
        try {
          // Warm-up: JIT and connection buffers, untimed.
          for (const t of TRANSPORTS) await closedLoop(pipes.get(t)!, config.depth, 50, 200);
          const variants: Variant[] = TRANSPORTS.map((t) => ({
            name: t,
            async run() {
              const result = await closedLoop(pipes.get(t)!, config.depth, config.batchesPerPipe, config.windowMs);
              throughput.get(t)!.push((result.commands / result.elapsedMs) * 1000);
              return result.rtts;
            },
          }));
          const result = await alternate(variants, {
            rounds: ctx.quick ? 2 : 6,
            budgetMs: ctx.quick ? 4_000 : 25_000,
            onRound: (r) => ctx.log(`overhead ${op} ${config.label.split(':')[0]}: round ${r + 1} done`),
          });
          const direct = summarize(result.samples.get(DIRECT)!);
          const rows = TRANSPORTS.map((t) => {
            const s = summarize(result.samples.get(t)!);
            return latencyRow(t, s, count(median(throughput.get(t)!)), ratio(median(throughput.get(t)!) / median(throughput.get(DIRECT)!)),
              ratio(pairedRatio(result, t, DIRECT)), ratio(pairedRatio(result, t, RELAY)));
          });
          tables.push({
            title: `${op}, ${config.label} (${result.roundsRun} alternating rounds; latency = one ${config.depth === 1 ? 'command' : 'batch'}'s round trip)`,
            columns: [...LATENCY_COLUMNS, 'commands/s', 'throughput / iovalkey', 'paired p50 / iovalkey', 'paired p50 / relay floor'],
            rows,
          });
          const bridgeSummary = summarize(result.samples.get(BRIDGE)!);
          const tputRatio = median(throughput.get(BRIDGE)!) / median(throughput.get(DIRECT)!);
          // Per-round throughput ratios, for the same noise cancelling as the latency ratio.
          const bridgeRounds = throughput.get(BRIDGE)!;
          const directRounds = throughput.get(DIRECT)!;
          const pairedTput = median(bridgeRounds.map((v, i) => v / directRounds[i]!));
          const p50Ratio = pairedRatio(result, BRIDGE, DIRECT);
          const which = config.depth === 1 ? 'sequential' : '32x32 pipelined';
          if (config.depth > 1) {
            targets.push({ target: `${op} ${which}: bridge throughput ≥ 0.5x iovalkey`, actual: `${count(median(bridgeRounds))} vs ${count(median(directRounds))} /s: ${ratio(pairedTput)} (paired)`, met: pairedTput >= 0.5 });
          }
          targets.push({ target: `${op} ${which}: bridge p50 ≤ 2x iovalkey p50`, actual: `${ms(bridgeSummary.p50)} vs ${ms(direct.p50)} ms: ${ratio(p50Ratio)} (paired)`, met: p50Ratio <= 2 });
          figures[`${op}:${config.depth === 1 ? 'latency' : 'throughput'}`] = {
            config,
            rounds: result.roundsRun,
            latencyMs: Object.fromEntries(TRANSPORTS.map((t) => [t, summarize(result.samples.get(t)!)])),
            commandsPerSecond: Object.fromEntries(TRANSPORTS.map((t) => [t, throughput.get(t)])),
            pairedThroughputRatio: pairedTput,
            throughputRatio: tputRatio,
            pairedP50Ratio: p50Ratio,
            pairedP50RatioRaw: pairedRatio(result, BRIDGE, RAW),
            pairedP50RatioRelay: pairedRatio(result, BRIDGE, RELAY),
            pairedP50RatioRelayToDirect: pairedRatio(result, RELAY, DIRECT),
          };
        } finally {
          for (const list of pipes.values()) for (const pipe of list) pipe.close();
        }
      }
    }
    // Closed sessions leave the bridge asynchronously; a session still open after 2 s is a leak worth reporting.
    const deadline = Date.now() + 2_000;
    while ((await bridge.stats()).sessions > 0 && Date.now() < deadline) await pause(50);
    const stats = await bridge.stats();
    if (stats.sessions > 0) notes.push(`${stats.sessions} bridge sessions were still open 2 s after their clients closed`);
    return {
      name: 'overhead',
      title: 'Bridge overhead',
      method: [
        `${KEYS} keys with 100-byte values. The bridge runs in its own Node process (as deployed); the load generator in the bench process; Valkey in a third.`,
        'Closed loop: each session sends its next message as soon as every reply of the previous one is in. Bridge sessions send one binary WebSocket ' +
          'message per batch; iovalkey sends the same batch with pipeline().exec() (or a single get/set at depth 1); "raw TCP" writes the same bytes as the bridge client, on a socket.',
        '"relay floor" forwards each message\'s bytes to its own Valkey connection and each read back as one frame (relay-floor.ts): the two hops with no work.',
        'Latency is one batch round trip measured with performance.now() in the load generator; throughput = commands completed / wall time of the round.',
        'The three transports alternate in rotating order; "paired" = median over rounds of the per-round ratio.',
      ],
      tables,
      targets,
      figures,
      notes,
    };
  } finally {
    setup.disconnect();
    relay.close();
    await bridge.close();
    await server.stop();
  }
}

export const benchmark: Benchmark = { name: 'overhead', aliases: ['bridge-overhead', 'bridge'], title: 'Bridge overhead', run };
