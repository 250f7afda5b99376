// Benchmark "push-floor": one key's invalidation fanned out to 1,000 sessions that live in other processes (4
// receiver children), from the writer's acknowledgement to each session's push, for the bridge, two bridges sharing
// the sessions, and the floor: a minimal server (floor-server.ts) that tracks the key the same way and writes one
// pre-encoded frame to every socket in one loop. Same run, alternating rounds, so the ratio is the bridge's own.
import { fork, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Redis } from 'iovalkey';
import { TEST_TOKEN, randomPrefix } from '../support/bridge.ts';
import { startValkeyServer } from '../support/valkey-server.ts';
import { startBridgeChild } from './bridge-process.ts';
import type { FloorMessage, FloorRequest } from './floor-server.ts';
import type { ReceiverReply, ReceiverRequest } from './push-receivers.ts';
import { LATENCY_COLUMNS, alternate, latencyRow, ms, pairedRatio, pause, ratio, summarize, type BenchContext, type BenchReport, type Benchmark, type Variant } from './stats.ts';

const RECEIVERS = fileURLToPath(new URL('./push-receivers.ts', import.meta.url));
const FLOOR = fileURLToPath(new URL('./floor-server.ts', import.meta.url));
const PROCESSES = 4;
const COLLECT_MS = 10_000;
const SETTLE_MS = 30;
const FLOOR_NAME = 'floor: minimal server, one pre-encoded frame, one loop';
const BRIDGE = 'bridge (one process)';
const TWO = 'two bridge processes (sessions split)';

/** A request without its id, per member of the union. */
type Unsent<Q> = Q extends unknown ? Omit<Q, 'id'> : never;

/** A forked child answering `{ id }`-tagged requests; killed on close or when the parent exits. */
function child<Q extends { id: number }, A extends { id?: number }>(path: string, env: Record<string, string>): { ready: Promise<A>; request(q: Unsent<Q>): Promise<A>; kill(): void } {
  const proc: ChildProcess = fork(path, [], { execArgv: ['--import', 'tsx'], env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const kill = () => proc.kill('SIGKILL');
  process.once('exit', kill);
  const waiting = new Map<number, (a: A) => void>();
  let resolveReady: (a: A) => void;
  const ready = new Promise<A>((resolve) => { resolveReady = resolve; });
  proc.on('message', (a: A) => {
    if (a.id === undefined) resolveReady(a);
    else waiting.get(a.id)?.(a);
  });
  let next = 1;
  return {
    ready,
    request(q) {
      const id = next++;
      return new Promise<A>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${path}: no answer within 30 s`)), 30_000);
        waiting.set(id, (a) => { clearTimeout(timer); waiting.delete(id); resolve(a); });
        proc.send({ ...q, id });
      });
    },
    kill,
  };
}

async function run(ctx: BenchContext): Promise<BenchReport> {
  const sessions = ctx.quick ? 200 : 1_000;
  const writes = ctx.quick ? 3 : 10;
  const server = await startValkeyServer();
  const limits = { maxSessions: 20_000, maxSessionsPerToken: 20_000 };
  const bridges = [await startBridgeChild(server.url, limits, 'push-floor-a'), await startBridgeChild(server.url, limits, 'push-floor-b')];
  const floor = child<FloorRequest, FloorMessage & { id?: number }>(FLOOR, { BENCH_VALKEY_HOST: server.host, BENCH_VALKEY_PORT: String(server.port) });
  const receivers = Array.from({ length: PROCESSES }, () => child<ReceiverRequest, ReceiverReply>(RECEIVERS, {}));
  const writer = new Redis({ host: server.host, port: server.port, lazyConnect: true });
  try {
    await writer.connect();
    const floorUrl = ((await floor.ready) as { url: string }).url;
    const per = Math.ceil(sessions / PROCESSES);
    const must = (reply: ReceiverReply) => { if (!reply.ok) throw new Error(reply.error); return reply; };
    for (const r of receivers) {
      must(await r.request({ type: 'open', group: 'floor', url: floorUrl, token: null, count: per }));
      must(await r.request({ type: 'open', group: 'bridge', url: bridges[0]!.url, token: TEST_TOKEN, count: per }));
      must(await r.request({ type: 'open', group: 'two', url: bridges[receivers.indexOf(r) % 2]!.url, token: TEST_TOKEN, count: per }));
    }
    const key = `${randomPrefix('push-floor')}k`;
    const lastPerWrite = new Map<string, number[]>();
    let missing = 0;
    const variant = (name: string, group: string, arm: () => Promise<unknown>): Variant => ({
      name,
      async run() {
        const latencies: number[] = [];
        for (let w = 0; w < writes; w++) {
          await arm();
          // Let the arming's own work (1,000 TRACKED.GETs and their garbage, at the bridge) settle: the push is measured.
          await pause(SETTLE_MS);
          const collecting = receivers.map((r) => r.request({ type: 'collect', group, timeoutMs: COLLECT_MS }));
          await writer.set(key, `v${w}`);
          const ackAt = performance.timeOrigin + performance.now();
          const arrived = (await Promise.all(collecting)).map(must).flatMap((reply) => { missing += reply.missing ?? 0; return reply.arrivals ?? []; });
          const fromAck = arrived.map((at) => at - ackAt);
          latencies.push(...fromAck);
          lastPerWrite.set(name, [...(lastPerWrite.get(name) ?? []), Math.max(...fromAck)]);
        }
        return latencies;
      },
    });
    const armSessions = (group: string) => () => Promise.all(receivers.map((r) => r.request({ type: 'arm', group, key }).then(must)));
    const variants = [
      variant(FLOOR_NAME, 'floor', () => floor.request({ type: 'arm', key })),
      variant(BRIDGE, 'bridge', armSessions('bridge')),
      variant(TWO, 'two', armSessions('two')),
    ];
    for (const v of variants) await v.run(-1);
    lastPerWrite.clear();
    missing = 0;
    const result = await alternate(variants, { rounds: ctx.quick ? 2 : 6, budgetMs: ctx.quick ? 10_000 : 40_000, onRound: (r) => ctx.log(`push-floor: round ${r + 1} done`) });
    const s = (name: string) => summarize(result.samples.get(name)!);
    const p99 = (name: string) => pairedRatio(result, name, FLOOR_NAME, (x) => x.p99);
    const p50 = (name: string) => pairedRatio(result, name, FLOOR_NAME, (x) => x.p50);
    const names = [FLOOR_NAME, BRIDGE, TWO];
    return {
      name: 'push-floor',
      title: 'Invalidation fan-out against its floor (receivers in other processes)',
      method: [
        `${sessions} WebSocket sessions per server, spread over ${PROCESSES} receiver processes; one key, ${writes} writes per round by a plain iovalkey client; variants alternate by round.`,
        'Latency = arrival at each session (its process\'s performance.timeOrigin + now) − the writer\'s acknowledgement (same clock).',
        'Floor: a minimal server tracking the key like the bridge (CLIENT TRACKING redirected to a subscriber) that writes one pre-encoded push frame to every socket in one loop.',
        `Bridge sessions re-arm with TRACKED.GET before every write (one-shot registration); the floor re-reads the key on its tracked connection; every variant then waits ${SETTLE_MS} ms before the write, so the arming's work is not measured.`,
      ],
      tables: [{
        title: 'Write ack → push received at every session (ms)',
        columns: [...LATENCY_COLUMNS, 'last session p50', 'p50 / floor', 'p99 / floor'],
        rows: names.map((n) => latencyRow(n, s(n), ms(summarize(lastPerWrite.get(n) ?? []).p50), ratio(p50(n)), ratio(p99(n)))),
      }],
      targets: [
        { target: 'bridge p99 ≤ 1.2x the floor (paired)', actual: `${ratio(p99(BRIDGE))} (${ms(s(BRIDGE).p99)} vs ${ms(s(FLOOR_NAME).p99)} ms)`, met: p99(BRIDGE) <= 1.2 },
        { target: 'bridge p50 ≤ 1.2x the floor (paired)', actual: `${ratio(p50(BRIDGE))} (${ms(s(BRIDGE).p50)} vs ${ms(s(FLOOR_NAME).p50)} ms)`, met: p50(BRIDGE) <= 1.2 },
        { target: 'report: two bridge processes vs the floor (p99 / p50)', actual: `${ratio(p99(TWO))} / ${ratio(p50(TWO))}`, met: null },
      ],
      figures: {
        sessions, rounds: result.roundsRun, missing,
        latencyMs: Object.fromEntries(names.map((n) => [n, s(n)])),
        pairedP99OverFloor: { bridge: p99(BRIDGE), two: p99(TWO) },
        pairedP50OverFloor: { bridge: p50(BRIDGE), two: p50(TWO) },
        samples: Object.fromEntries(names.map((n) => [n, result.samples.get(n)!.filter((_, i) => i % 10 === 0)])),
      },
      notes: missing > 0 ? [`${missing} session pushes did not arrive within ${COLLECT_MS} ms`] : [],
    };
  } finally {
    writer.disconnect();
    await Promise.all(receivers.map((r) => r.request({ type: 'close' }).catch(() => undefined)));
    for (const r of receivers) r.kill();
    await floor.request({ type: 'close' }).catch(() => undefined);
    floor.kill();
    await Promise.all(bridges.map((b) => b.close()));
    await server.stop();
  }
}

export const benchmark: Benchmark = { name: 'push-floor', aliases: ['floor'], title: 'Fan-out against its floor', run };
