// Benchmark 5, fan-out scale: the bridge with 1,000 and 10,000 sessions (plain ws clients) and 100,000 tracked
// (key, session) pairs: how fast it delivers invalidations, and what a session and a tracked pair cost it in
// memory (the bridge runs in its own process with --expose-gc; figures are deltas after two full collections).
import { Redis } from 'iovalkey';
import { performance } from 'node:perf_hooks';
import { TEST_TOKEN, randomPrefix } from '../support/bridge.ts';
import { startValkeyServer } from '../support/valkey-server.ts';
import { startBridgeChild, type BridgeChild, type BridgeMemory } from './bridge-process.ts';
import { RespSession, openBridgeSessions } from './resp-session.ts';
import {
  bounded, bytes, count, median, ms, pause, summarize,
  type BenchContext, type BenchReport, type Benchmark, type TargetCheck,
} from './stats.ts';

const CAP_MS = 600_000;
const WAIT_MS = 60_000;

interface DeliveryRound {
  readonly deliveries: number;
  /** MSET sent → last push received (ms). */
  readonly wallMs: number;
  /** The bridge's first → last push frame written (ms, bridge clock). */
  readonly bridgeMs: number;
  readonly frames: number;
  /** Per session: MSET sent → its last key received (ms). */
  readonly sessionDone: number[];
  readonly trackMs: number;
  /** TRACKED.GETs answered with an error (e.g. -TIMEOUT) instead of a registration. */
  readonly trackErrors: number;
}

/** Sessions read in waves of this many, so that at most ~10k tracked reads wait on the bridge at once. */
const TRACK_WAVE_READS = 10_000;

/**
 * Every session reads its keys (one message of TRACKED.GETs each, sessions in waves). Returns per session how many
 * reads came back cacheable (registered for a push) and the number of error replies. `wave` = sessions at a time.
 */
async function track(sessions: readonly RespSession[], keysOf: (i: number) => string[], wave = Math.max(1, Math.floor(TRACK_WAVE_READS / Math.max(1, keysOf(0).length)))): Promise<{ registered: number[]; errors: number; ms: number }> {
  const t0 = performance.now();
  const registered: number[] = new Array(sessions.length).fill(0);
  let errors = 0;
  for (let from = 0; from < sessions.length; from += wave) {
    await bounded(Promise.all(sessions.slice(from, from + wave).map(async (s, j) => {
      const keys = keysOf(from + j);
      const replies = await s.send(RespSession.encode(keys.map((k) => ['TRACKED.GET', k, CAP_MS])), keys.length, true);
      for (const reply of replies) {
        if (Array.isArray(reply) && reply[2] === true) registered[from + j]!++;
        else errors++;
      }
    })), WAIT_MS, 'the tracked reads');
  }
  return { registered, errors, ms: performance.now() - t0 };
}

type Tracked = Awaited<ReturnType<typeof track>>;

/**
 * Every session tracks its keys (unless `already` says they just did), then a plain client MSETs them all;
 * deliveries are counted at the sessions.
 */
async function deliveryRound(bridge: BridgeChild, writer: Redis, sessions: readonly RespSession[], keysOf: (i: number) => string[], allKeys: readonly string[], already?: Tracked): Promise<DeliveryRound> {
  const tracked = already ?? await track(sessions, keysOf);
  const expected = tracked.registered.reduce((a, b) => a + b, 0);
  let received = 0;
  let wake: () => void = () => undefined;
  const all = new Promise<void>((resolve) => { wake = resolve; });
  const remaining = [...tracked.registered];
  const sessionDone: number[] = new Array(sessions.length).fill(NaN);
  let sentAt = 0;
  sessions.forEach((session, i) => {
    session.onPush = (keys, at) => {
      const n = keys === null ? remaining[i]! : keys.length;
      remaining[i]! -= n;
      received += n;
      if (remaining[i]! <= 0 && Number.isNaN(sessionDone[i]!)) sessionDone[i] = at - sentAt;
      if (received >= expected) wake();
    };
  });
  await bridge.sends();
  sentAt = performance.now();
  // MSET on a plain connection: Valkey's tracking tells the bridge, the bridge tells every reader.
  await writer.mset(Object.fromEntries(allKeys.map((k) => [k, 'x'])));
  await bounded(all, WAIT_MS, 'every delivery').catch((err: Error) => {
    throw new Error(`${err.message}: ${received} of ${expected} received`);
  });
  const wallMs = performance.now() - sentAt;
  for (const session of sessions) session.onPush = null;
  const trace = await bridge.sends();
  return {
    deliveries: expected, wallMs, bridgeMs: trace.firstToLastMs, frames: trace.count, sessionDone: sessionDone.filter((d) => !Number.isNaN(d)),
    trackMs: tracked.ms, trackErrors: tracked.errors,
  };
}

async function closeAll(bridge: BridgeChild, sessions: RespSession[]): Promise<void> {
  for (const session of sessions.splice(0)) session.close();
  const deadline = Date.now() + 30_000;
  while ((await bridge.stats()).sessions > 0 && Date.now() < deadline) await pause(50);
}

const perUnit = (after: BridgeMemory, before: BridgeMemory, units: number) => ({
  heapUsed: (after.heapUsed - before.heapUsed) / units,
  external: (after.external - before.external) / units,
  rss: (after.rss - before.rss) / units,
});

async function run(ctx: BenchContext): Promise<BenchReport> {
  const server = await startValkeyServer();
  const bridge = await startBridgeChild(server.url, { maxSessions: 20_000 }, 'fanout', true);
  const writer = new Redis({ host: server.host, port: server.port, lazyConnect: true });
  const sessions: RespSession[] = [];
  const targets: TargetCheck[] = [];
  const notes: string[] = [];
  const figures: Record<string, unknown> = {};
  const memoryRows: Array<Array<string | number>> = [];
  const deliveryRows: Array<Array<string | number>> = [];
  try {
    await writer.connect();
    const pairs = ctx.quick ? 10_000 : 100_000;
    const scales = ctx.quick ? [100, 1_000] : [1_000, 10_000];
    const rates: number[] = [];
    const pairCosts: number[] = [];
    for (const scale of scales) {
      for (const shape of scale === scales[0] ? (['shared', 'unique'] as const) : (['shared'] as const)) {
        const label = `${scale.toLocaleString('en-US')} sessions, ${shape} keys`;
        ctx.log(`fanout: ${label}`);
        const before = await bridge.memory();
        const t0 = performance.now();
        const opened = await openBridgeSessions(bridge.url, TEST_TOKEN, scale, { wave: 250, timeoutMs: WAIT_MS, stallMs: WAIT_MS });
        sessions.push(...opened.sessions);
        const openMs = performance.now() - t0;
        if (opened.failure) notes.push(`${label}: ${opened.sessions.length} of ${scale} sessions fit (${opened.failure})`);
        const n = sessions.length;
        const withSessions = await bridge.memory();
        const perKey = Math.max(1, Math.round(pairs / n));
        const prefix = randomPrefix('fan');
        // shared: every session reads the same perKey keys; unique: each session reads perKey keys of its own.
        const keysOf = shape === 'shared'
          ? (() => { const keys = Array.from({ length: perKey }, (_, k) => `${prefix}${k}`); return () => keys; })()
          : (i: number) => Array.from({ length: perKey }, (_, k) => `${prefix}${i}:${k}`);
        const allKeys = shape === 'shared' ? keysOf(0) : Array.from({ length: n }, (_, i) => keysOf(i)).flat();
        const rounds: DeliveryRound[] = [];
        let tracked: BridgeMemory | undefined;
        // Tracking 100k pairs takes ~10 s on this bridge, so few rounds; the first reuses the memory pass's tracking.
        const roundCount = !ctx.quick && scale === scales[0] && shape === 'shared' ? 2 : 1;
        for (let r = 0; r < roundCount; r++) {
          let first: Tracked | undefined;
          if (r === 0) {
            // Memory with the pairs registered: track once, measure, then the round re-tracks (same keys: no growth).
            // The first scenario sends every session's reads at once: how the bridge copes with a burst of tracked reads.
            const burst = scale === scales[0] && shape === 'shared';
            first = burst ? await track(sessions, keysOf, sessions.length) : await track(sessions, keysOf);
            if (burst) {
              figures.trackingBurst = { reads: pairs, ms: first.ms, errors: first.errors, readsPerSecond: (pairs / first.ms) * 1000 };
              notes.push(`${label}: a burst of ${count(pairs)} TRACKED.GETs (every session at once) took ${ms(first.ms)} ms; ${first.errors} were answered with an error (the bridge's -TIMEOUT after commandTimeoutMs) instead of a registration.`);
              first = undefined;
            }
            tracked = await bridge.memory();
          }
          rounds.push(await deliveryRound(bridge, writer, sessions, keysOf, allKeys, first));
        }
        const registered = tracked!.stats.trackedPairs;
        const session = perUnit(withSessions, before, n);
        const pair = perUnit(tracked!, withSessions, registered);
        const rate = median(rounds.map((r) => (r.deliveries / r.wallMs) * 1000));
        const bridgeRate = median(rounds.map((r) => (r.deliveries / r.bridgeMs) * 1000));
        const done = summarize(rounds.flatMap((r) => r.sessionDone));
        rates.push(rate);
        if (scale === scales[0]) pairCosts.push(pair.heapUsed);
        memoryRows.push([label, n, count(registered), bytes(session.heapUsed), bytes(session.external), bytes(session.rss), bytes(pair.heapUsed), bytes(pair.rss)]);
        deliveryRows.push([label, count(rounds[0]!.deliveries), median(rounds.map((r) => r.frames)), ms(median(rounds.map((r) => r.wallMs))), count(rate),
          ms(median(rounds.map((r) => r.bridgeMs))), count(bridgeRate), ms(done.p50), ms(done.p99), count(median(rounds.map((r) => (r.deliveries / r.trackMs) * 1000)))]);
        const trackErrors = rounds.reduce((n, r) => n + r.trackErrors, 0);
        if (trackErrors > 0) notes.push(`${label}: ${trackErrors} TRACKED.GETs were answered with an error instead of a registration`);
        figures[`${scale}:${shape}`] = {
          sessions: n, openMs, trackedPairs: registered, keysPerSession: perKey, distinctKeys: allKeys.length,
          memory: { before, withSessions, tracked }, perSessionBytes: session, perPairBytes: pair,
          rounds: rounds.map((r) => ({ ...r, sessionDone: summarize(r.sessionDone) })), deliveriesPerSecond: rate, bridgeDeliveriesPerSecond: bridgeRate,
        };
        await closeAll(bridge, sessions);
      }
    }
    targets.push(
      { target: '≥ 100,000 invalidation deliveries/s', actual: `${rates.map((r) => count(r)).join(' / ')} per s (rows of the delivery table, in order)`, met: Math.min(...rates) >= 100_000 },
      { target: '≤ 200 bytes of bridge heap per tracked pair', actual: `${pairCosts.map((c) => bytes(c)).join(' / ')} (shared keys / unique keys)`, met: Math.max(...pairCosts) <= 200 },
    );
    return {
      name: 'fanout',
      title: 'Fan-out scale',
      method: [
        `Bridge in its own process (node --expose-gc); ${scales.join(' and ')} plain WebSocket sessions in the bench process (no file-descriptor limit raised: ulimit -n is what it is; see notes for what did not fit).`,
        `Each session registers ${pairs.toLocaleString('en-US')} / sessions keys with TRACKED.GET (one pipelined message per session): "shared" = every session reads the same keys, ` +
          '"unique" = each session its own. A plain iovalkey client then MSETs every key in one command; Valkey\'s tracking tells the bridge, the bridge pushes to every reader.',
        'Deliveries = (key, session) invalidations received, counted by the clients; rate = deliveries / (MSET sent → last delivery). "bridge" columns use the bridge process\'s own stamps of the first and last push frame it wrote.',
        'Memory: process.memoryUsage() in the bridge after two forced GCs, before sessions, after opening them and after registering the pairs; per-session and per-pair figures are the deltas divided by the count.',
      ],
      tables: [
        {
          title: 'Bridge memory (deltas after full GC)',
          columns: ['scenario', 'sessions', 'tracked pairs', 'heap / session', 'external / session', 'rss / session', 'heap / pair', 'rss / pair'],
          rows: memoryRows,
        },
        {
          title: 'Invalidation delivery (median over rounds)',
          columns: ['scenario', 'deliveries', 'frames', 'wall ms', 'deliveries/s', 'bridge first→last frame ms', 'deliveries/s (bridge)', 'session done p50 ms', 'session done p99 ms', 'TRACKED.GET/s'],
          rows: deliveryRows,
        },
      ],
      targets,
      figures,
      notes,
    };
  } finally {
    for (const session of sessions) session.close();
    writer.disconnect();
    await bridge.close();
    await server.stop();
  }
}

export const benchmark: Benchmark = { name: 'fanout', aliases: ['fan-out'], title: 'Fan-out scale', run };
