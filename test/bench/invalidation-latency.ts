// Benchmark 3, invalidation latency: from a write's acknowledgement at a plain Valkey client (another writer, not
// the bridge) to the moment each of 1, 100 or 1,000 bridge sessions tracking the key has its push, and to the
// moment a coordinator (inside workerd) has dropped its copy. Baseline: Valkey's own tracking straight to one
// subscriber, the floor the bridge starts from.
import { Redis } from 'iovalkey';
import { performance } from 'node:perf_hooks';
import { TEST_TOKEN, randomPrefix } from '../support/bridge.ts';
import { startValkeyServer } from '../support/valkey-server.ts';
import { startBridgeChild, type BridgeChild, type SendTrace } from './bridge-process.ts';
import { startMarkerServer, type Mark, type MarkerServer } from './markers.ts';
import { RespSession, openBridgeSessions } from './resp-session.ts';
import {
  LATENCY_COLUMNS, alternate, bounded, latencyRow, ms, ratio, summarize,
  type BenchContext, type BenchReport, type Benchmark, type Table, type TargetCheck, type Variant,
} from './stats.ts';
import { startBenchWorkers, type BenchWorkers } from './workerd.ts';
import type { WatchReply } from './worker-routes.ts';

const CAP_MS = 600_000;
const WAIT_MS = 10_000;
const latin1 = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');

/** Valkey's tracking, redirected to one subscriber: what the bridge's own tracked connection sees. */
interface DirectTracking {
  /** Reads `key` on the tracked connection (re-arming the one-shot tracking), writes it elsewhere, and times the message. */
  round(writer: Redis, key: string, value: string): Promise<{ fromAck: number; fromSend: number }>;
  close(): void;
}

async function startDirectTracking(host: string, port: number): Promise<DirectTracking> {
  const sub = new Redis({ host, port, lazyConnect: true });
  const data = new Redis({ host, port, lazyConnect: true });
  await sub.connect();
  await data.connect();
  const subId = Number(await sub.client('ID'));
  await sub.subscribe('__redis__:invalidate');
  await data.client('TRACKING', 'ON', 'REDIRECT', subId);
  let expect: { key: string; resolve: (at: number) => void } | null = null;
  sub.on('messageBuffer', (_channel: Buffer, payload: unknown) => {
    const at = performance.now();
    const keys = Array.isArray(payload) ? payload : [payload];
    if (expect && keys.some((k) => Buffer.isBuffer(k) && k.toString('latin1') === expect!.key)) expect.resolve(at);
  });
  return {
    async round(writer, key, value) {
      await data.get(key);
      const received = new Promise<number>((resolve) => { expect = { key, resolve }; });
      const sentAt = performance.now();
      await writer.set(key, value);
      const ackAt = performance.now();
      const at = await bounded(received, WAIT_MS, 'the direct tracking message');
      expect = null;
      return { fromAck: at - ackAt, fromSend: at - sentAt };
    },
    close() {
      sub.disconnect();
      data.disconnect();
    },
  };
}

/** `sessions` track `key` (TRACKED.GET), a plain client writes it, and every session's push arrival is timed. */
async function sessionRound(bridge: BridgeChild, sessions: readonly RespSession[], writer: Redis, key: string, value: string): Promise<{ fromAck: number[]; fromSend: number[]; trace: SendTrace }> {
  const read = RespSession.encode([['TRACKED.GET', key, CAP_MS]]);
  const replies = await bounded(Promise.all(sessions.map((s) => s.send(read, 1, true))), WAIT_MS, 'the tracked reads');
  if (!replies.every(([r]) => Array.isArray(r) && r[2] === true)) throw new Error('a tracked read was not cacheable');
  const arrivals: number[] = new Array(sessions.length).fill(NaN);
  let pending = sessions.length;
  let wake: () => void = () => undefined;
  const all = new Promise<void>((resolve) => { wake = resolve; });
  sessions.forEach((session, i) => {
    session.onPush = (keys, at) => {
      if (!Number.isNaN(arrivals[i]!) || !(keys === null || keys.some((k) => latin1(k) === key))) return;
      arrivals[i] = at;
      if (--pending === 0) wake();
    };
  });
  await bridge.sends();
  const sentAt = performance.now();
  await writer.set(key, value);
  const ackAt = performance.now();
  await bounded(all, WAIT_MS, `pushes to ${pending} of ${sessions.length} sessions`);
  for (const session of sessions) session.onPush = null;
  const trace = await bridge.sends();
  return { fromAck: arrivals.map((a) => a - ackAt), fromSend: arrivals.map((a) => a - sentAt), trace };
}

/** `coords` coordinators cache `key` and poll until they dropped it; the write happens once all are armed. */
async function coordinatorRound(workers: BenchWorkers, markers: MarkerServer, writer: Redis, key: string, value: string, coords: number, round: number, pollMs: number[]): Promise<number[]> {
  const label = `inv:${round}:${Math.random().toString(36).slice(2)}`;
  const count = (marks: readonly Mark[], text: string) => marks.filter((m) => m.text === text).length;
  const watches = Array.from({ length: coords }, (_, j) =>
    workers.post<WatchReply>('main', '/watch', { key, coord: `inv-${coords}-${j}`, ttlMs: CAP_MS, markLabel: label, maxMs: WAIT_MS }, WAIT_MS + 20_000));
  await markers.waitFor(label, (marks) => count(marks, 'armed') >= coords, WAIT_MS);
  await writer.set(key, value);
  const ackAt = performance.now();
  await markers.waitFor(label, (marks) => count(marks, 'dropped') + count(marks, 'timeout') >= coords, WAIT_MS + 5_000);
  const replies = await Promise.all(watches);
  if (!replies.every((r) => r.armed && r.dropped)) throw new Error(`a coordinator did not drop its copy: ${JSON.stringify(replies)}`);
  const marks = markers.take(label);
  if (coords === 1) {
    // Armed → dropped over the number of polls: the detection's resolution.
    const armed = marks.find((m) => m.text === 'armed')!;
    const dropped = marks.find((m) => m.text === 'dropped')!;
    pollMs.push((dropped.at - armed.at) / replies[0]!.polls);
  }
  return marks.filter((m) => m.text === 'dropped').map((m) => m.at - ackAt);
}

async function run(ctx: BenchContext): Promise<BenchReport> {
  const server = await startValkeyServer();
  const bridge = await startBridgeChild(server.url, { maxSessions: 20_000 }, 'invalidation', true);
  const writer = new Redis({ host: server.host, port: server.port, lazyConnect: true });
  const markers = await startMarkerServer();
  let direct: DirectTracking | undefined;
  let workers: BenchWorkers | undefined;
  const open: RespSession[] = [];
  const tables: Table[] = [];
  const targets: TargetCheck[] = [];
  const figures: Record<string, unknown> = {};
  const notes: string[] = [];
  try {
    await writer.connect();
    direct = await startDirectTracking(server.host, server.port);
    const d = direct;
    const prefix = randomPrefix('inv');
    let value = 0;
    const directVariant = (key: string): Variant => ({
      name: 'Valkey tracking → 1 subscriber (floor)',
      async run() {
        const r = await d.round(writer, key, `v${value++}`);
        return [r.fromAck];
      },
    });

    const sizes = [1, 100, 1_000];
    const rounds: Record<number, number> = ctx.quick ? { 1: 30, 100: 8, 1000: 3 } : { 1: 200, 100: 40, 1000: 15 };
    const rows: Array<Array<string | number>> = [];
    for (const n of sizes) {
      // Sizes grow: reuse the sessions already open and add the rest.
      const more = await openBridgeSessions(bridge.url, TEST_TOKEN, n - open.length);
      open.push(...more.sessions);
      const sessions = open.slice(0, n);
      if (more.failure) notes.push(`${n} sessions: only ${sessions.length} opened (${more.failure})`);
      const key = `${prefix}s${n}`;
      const fromSend: number[] = [];
      const lastFromAck: number[] = [];
      const emission: number[] = [];
      const bridgeName = `bridge → ${sessions.length} session${sessions.length === 1 ? '' : 's'}`;
      await writer.set(key, 'initial');
      const result = await alternate([
        {
          name: bridgeName,
          async run() {
            const r = await sessionRound(bridge, sessions, writer, key, `v${value++}`);
            if (r.trace.count !== sessions.length) notes.push(`n=${n}: the bridge sent ${r.trace.count} frames for ${sessions.length} pushes`);
            emission.push(r.trace.firstToLastMs);
            fromSend.push(...r.fromSend);
            lastFromAck.push(Math.max(...r.fromAck));
            return r.fromAck;
          },
        },
        directVariant(`${prefix}d${n}`),
      ], { rounds: rounds[n]!, budgetMs: ctx.quick ? 5_000 : 20_000, onRound: (r) => { if (r % 10 === 9) ctx.log(`invalidation n=${n}: round ${r + 1}`); } });
      const s = summarize(result.samples.get(bridgeName)!);
      const floor = summarize(result.samples.get('Valkey tracking → 1 subscriber (floor)')!);
      rows.push(latencyRow(bridgeName, s, ms(summarize(lastFromAck).p50), ms(summarize(emission).p50), ms(summarize(fromSend).p50), ratio(s.p50 / floor.p50)));
      if (n === 1) rows.push(latencyRow('Valkey tracking → 1 subscriber (floor)', floor, '', '', '', ratio(1)));
      figures[`sessions${n}`] = {
        opened: sessions.length, rounds: result.roundsRun, fromAck: s, lastSessionFromAck: summarize(lastFromAck),
        bridgeFirstToLastFrameMs: summarize(emission), fromSend: summarize(fromSend), floor,
      };
      if (n === 1_000) {
        // The first target (p99 ≤ 5 ms) sat below what any server delivers to 1,000 loopback sessions on two cores;
        // the fan-out target is now push-floor's: within 1.2x of a minimal server measured in the same run.
        targets.push({ target: 'report: write ack → push received at 1,000 sessions, receivers in this process (target: push-floor)', actual: `p99 ${ms(s.p99)} ms, p50 ${ms(s.p50)} ms (${sessions.length} sessions)`, met: null });
      }
    }
    tables.push({
      title: 'Write acknowledged at a plain client → invalidation push received by each bridge session (ms; negative = before the ack)',
      columns: [...LATENCY_COLUMNS, 'last session p50', 'bridge first→last frame p50', 'p50 from send', 'p50 / floor'],
      rows,
    });
    for (const session of open.splice(0)) session.close();

    // Coordinators: the push travels on into workerd and the coordinator drops its local copy.
    workers = await startBenchWorkers(bridge.url, markers.url, [{ name: 'main' }]);
    const w = workers;
    const coordRows: Array<Array<string | number>> = [];
    const pollMs: number[] = [];
    for (const coords of [1, 10]) {
      const key = `${prefix}c${coords}`;
      await writer.set(key, 'initial');
      const name = `coordinator${coords === 1 ? '' : `s x${coords}`} dropped its copy`;
      const result = await alternate([
        { name, run: (round) => coordinatorRound(w, markers, writer, key, `v${value++}`, coords, round, pollMs) },
        directVariant(`${prefix}cd${coords}`),
      ], { rounds: ctx.quick ? 3 : coords === 1 ? 30 : 12, budgetMs: ctx.quick ? 8_000 : 20_000 });
      const s = summarize(result.samples.get(name)!);
      const floor = summarize(result.samples.get('Valkey tracking → 1 subscriber (floor)')!);
      coordRows.push(latencyRow(name, s, ratio(s.p50 / floor.p50)));
      figures[`coordinators${coords}`] = { rounds: result.roundsRun, fromAck: s, floor };
    }
    figures.coordinatorPollIntervalMs = summarize(pollMs);
    tables.push({
      title: `Write acknowledged at a plain client → coordinator in workerd has dropped its copy (detected by polling getStats(): one poll every ${ms(summarize(pollMs).p50)} ms, p50)`,
      columns: [...LATENCY_COLUMNS, 'p50 / floor'],
      rows: coordRows,
    });
    return {
      name: 'invalidation',
      title: 'Invalidation latency',
      method: [
        'Bridge in its own process; sessions and the writer in the bench process. Each round every session re-reads the key with TRACKED.GET ' +
          '(tracking is one-shot), then a plain iovalkey client SETs it; the time is taken when SET resolves (the ack) and when each session\'s push arrives (performance.now()).',
        'The floor alternates with it: Valkey tracking redirected to one iovalkey subscriber, the same path the bridge\'s own tracked connection uses, timed the same way.',
        'Coordinators: a Worker request makes a coordinator cache the key, sends an "armed" marker, then polls the coordinator\'s getStats() until its entry is gone ' +
          'and sends "dropped"; Node writes once every coordinator is armed and stamps the markers on arrival.',
        'All sessions share one Node process, so at 1,000 sessions the figures include reading 1,000 sockets one after another in the receiver. ' +
          'To tell the two apart the bridge child stamps every frame it sends: "bridge first→last frame" is the time it took the bridge itself to write all the pushes.',
      ],
      tables,
      targets,
      figures,
      notes,
    };
  } finally {
    for (const session of open) session.close();
    direct?.close();
    writer.disconnect();
    await workers?.dispose().catch(() => undefined);
    await markers.close();
    await bridge.close();
    await server.stop();
  }
}

export const benchmark: Benchmark = { name: 'invalidation', aliases: ['invalidation-latency'], title: 'Invalidation latency', run };
