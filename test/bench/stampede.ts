// Benchmark 4, stampede: a cold key, 1,000 concurrent gets spread over 10 coordinators (100 each, every
// coordinator competing for Valkey's lock), a 50 ms loader. Counts loader calls (must be 1) and times every get's
// completion against the end of the loader, with Node stamping markers the Worker sends (workerd's clock is ms).
import { Redis } from 'iovalkey';
import { randomPrefix } from '../support/bridge.ts';
import { startValkeyServer } from '../support/valkey-server.ts';
import { startBridgeChild } from './bridge-process.ts';
import { startMarkerServer, type MarkerServer } from './markers.ts';
import {
  LATENCY_COLUMNS, alternate, latencyRow, ms, pairedRatio, summarize,
  type BenchContext, type BenchReport, type Benchmark, type Variant,
} from './stats.ts';
import { startBenchWorkers, type BenchWorkers } from './workerd.ts';
import type { LoopReply, LoopRequest, StampedeReply } from './worker-routes.ts';

const LOADER_MS = 50;
const TTL_MS = 30_000;

interface Tally {
  stampedes: number;
  loaderCalls: number[];
  wrongValues: number;
  outcomes: Record<string, number>;
  errors: string[];
  /** Loader start → last get done (ms), per stampede. */
  wallMs: number[];
  /** Completion − loader end by workerd's own Date.now() (whole ms): free of the markers' cost. */
  clockMs: number[];
  /** Coordinators per stampede whose gets all completed more than STALL_MS after the loader. */
  stalledCoordinators: number[];
}

/** A get this late was not woken by the value's push (see the notes): it waited for something else. */
const STALL_MS = 1_000;

/**
 * One cold key, `coords` coordinators x `gets` gets; returns, per coordinator, its last get's completion minus the
 * loader's end (ms, Node's clock: one marker each, so the markers' own sends stay out of what is timed).
 */
async function stampede(workers: BenchWorkers, markers: MarkerServer, key: string, coords: number, gets: number, tally: Tally, coalesce = true): Promise<number[]> {
  const label = `stampede:${key}`;
  const replies = await Promise.all(Array.from({ length: coords }, (_, j) =>
    workers.post<StampedeReply>('main', '/stampede', { key, coord: `stampede-${coords}-${j}`, gets, loaderMs: LOADER_MS, ttlMs: TTL_MS, markLabel: label, coalesce }, TTL_MS + 10_000)));
  await markers.waitFor(label, (m) => m.filter((x) => x.text === 'D').length >= coords, 5_000);
  const marks = markers.take(label);
  tally.stampedes++;
  tally.loaderCalls.push(replies.reduce((n, r) => n + r.loaderCalls, 0));
  for (const reply of replies) {
    tally.wrongValues += reply.wrongValues;
    for (const [outcome, n] of Object.entries(reply.outcomes)) tally.outcomes[outcome] = (tally.outcomes[outcome] ?? 0) + n;
    for (const error of reply.errors) if (tally.errors.length < 5) tally.errors.push(error);
  }
  const loaderStart = marks.find((m) => m.text === 'L+');
  const loaderEnd = marks.find((m) => m.text === 'L-');
  if (!loaderStart || !loaderEnd) throw new Error(`no loader ran for ${key}: ${JSON.stringify(replies)}`);
  const done = marks.filter((m) => m.text === 'D').map((m) => m.at);
  tally.wallMs.push(Math.max(...done) - loaderStart.at);
  const loaderEndAt = replies.find((r) => r.loaderEndAt !== null)?.loaderEndAt ?? NaN;
  tally.clockMs.push(...replies.flatMap((r) => r.doneAt.map((at) => at - loaderEndAt)));
  tally.stalledCoordinators.push(replies.filter((r) => r.doneAt.every((at) => at - loaderEndAt > STALL_MS)).length);
  return done.map((at) => at - loaderEnd.at);
}

async function run(ctx: BenchContext): Promise<BenchReport> {
  const server = await startValkeyServer();
  const bridge = await startBridgeChild(server.url, {}, 'stampede');
  const markers = await startMarkerServer();
  const redis = new Redis({ host: server.host, port: server.port, lazyConnect: true });
  let workers: BenchWorkers | undefined;
  try {
    await redis.connect();
    workers = await startBenchWorkers(bridge.url, markers.url, [{ name: 'main', vars: { VALKEY_HOST: server.host, VALKEY_PORT: String(server.port) } }]);
    const w = workers;
    const prefix = randomPrefix('st');
    const coords = 10;
    const gets = 100;
    const STAMPEDE = `${coords} coordinators x ${gets} gets`;
    const UNCOALESCED = `${STAMPEDE}, coalesce: false`;
    const ONE = `1 coordinator x ${gets} gets`;
    const ONE_UNCOALESCED = `${ONE}, coalesce: false`;
    const SINGLE = '1 get (baseline)';
    const shapes = [
      { name: STAMPEDE, tag: 'many', coords, gets, coalesce: true },
      // Every get its own RPC (as before coalescing in the caller's isolate): the baseline of the line above.
      { name: UNCOALESCED, tag: 'unco', coords, gets, coalesce: false },
      { name: ONE, tag: 'hundred', coords: 1, gets, coalesce: true },
      // What 100 separate requests do (coalescing is per request): 100 RPCs, 99 of them waiters inside the coordinator.
      { name: ONE_UNCOALESCED, tag: 'hundred-unco', coords: 1, gets, coalesce: false },
      { name: SINGLE, tag: 'one', coords: 1, gets: 1, coalesce: true },
    ];
    const tallies = new Map(shapes.map((shape) => [shape.name, newTally()]));
    const tally = (name: string) => tallies.get(name)!;
    const variants: Variant[] = shapes.map((shape) => ({
      name: shape.name,
      run: (round) => stampede(w, markers, `${prefix}${shape.tag}:${round}`, shape.coords, shape.gets, tally(shape.name), shape.coalesce),
    }));
    // Warm-up (untimed): every coordinator's socket and client id exist before the first measured stampede.
    await stampede(w, markers, `${prefix}warm`, coords, 10, newTally());
    await stampede(w, markers, `${prefix}warm1`, 1, 1, newTally());
    const result = await alternate(variants, { rounds: ctx.quick ? 2 : 8, budgetMs: ctx.quick ? 10_000 : 30_000, onRound: (r) => ctx.log(`stampede: round ${r + 1} done`) });
    // What users would build instead: a DO per coordinator doing GET, loader, SET over cloudflare:sockets, no lock.
    const diyLoads: number[] = [];
    for (let round = 0; round < (ctx.quick ? 1 : 3); round++) {
      const key = `${prefix}diy:${round}`;
      const replies = await Promise.all(Array.from({ length: coords }, (_, j) => w.post<LoopReply>('main', '/loop', {
        op: 'direct', loader: true, loaderMs: LOADER_MS, keys: Array.from({ length: gets }, () => key), concurrency: gets, ttlMs: TTL_MS,
        placement: { kind: 'coord', name: 'unused' }, namePrefix: `diy-${round}-${j}`, maxMs: 30_000, batchSize: gets,
      } satisfies LoopRequest, TTL_MS + 10_000)));
      diyLoads.push(replies.reduce((n, r) => n + (r.outcomes.loaded ?? 0), 0));
    }
    const perGet = (t: Tally) => summarize(t.clockMs);
    const last = (name: string) => summarize(result.samples.get(name)!);
    const overhead = perGet(tally(STAMPEDE));
    const stalled = tally(STAMPEDE).clockMs.filter((x) => x > STALL_MS).length;
    const oneGet = perGet(tally(ONE));
    const oneLast = last(ONE);
    // What 100 waiters add to a lone get's own path from the loader's end (its store and the RPC reply), same rounds.
    const aboveLone = pairedRatio(result, ONE, SINGLE, (x) => x.p50);
    const aboveLoneMs = oneLast.p50 - last(SINGLE).p50;
    const loads = tally(STAMPEDE).loaderCalls;
    const uncoalesced = perGet(tally(UNCOALESCED));
    const notes: string[] = [
      `coalesced / uncoalesced (10 x 100, per get): p50 ${(overhead.p50 / Math.max(uncoalesced.p50, 1)).toFixed(2)}x, p99 ${(overhead.p99 / Math.max(uncoalesced.p99, 1)).toFixed(2)}x; ` +
        `loader calls per stampede uncoalesced: ${[...new Set(tally(UNCOALESCED).loaderCalls)].join(', ')}`,
    ];
    if (tally(STAMPEDE).errors.length > 0) notes.push(`errors: ${tally(STAMPEDE).errors.join('; ')}`);
    if (tally(STAMPEDE).wrongValues > 0) notes.push(`${tally(STAMPEDE).wrongValues} gets returned a value other than the loader's`);
    if (stalled > 0) {
      notes.push(`${stalled} gets (whole coordinators: ${tally(STAMPEDE).stalledCoordinators.filter((n) => n > 0).length} stampedes affected) completed more than ${STALL_MS} ms after the loader: ` +
        'they were woken by the holder\'s liveness-marker refresh (clientTtlMs / 2), not by the value\'s push. See docs/benchmarks.md, "Stampede".');
    }
    return {
      name: 'stampede',
      title: 'Stampede',
      method: [
        `Each round a fresh cold key; ${coords} Worker requests, each driving a different coordinator (placement by name), start ${gets} concurrent gets of it ` +
          `with a loader that waits ${LOADER_MS} ms. References alternate with it: the same without coalescing, ${gets} gets through one coordinator, and one get alone.`,
        'Waiter overhead = a get\'s completion − the loader\'s end (every get, the loader\'s own included), by workerd\'s own Date.now() (whole ms; workerd ' +
          'advances it at each I/O event, so it is when the completion arrived). The last get of each request also sends one marker over a WebSocket to Node, ' +
          'stamped against the loader\'s "L-" marker with performance.now() (sub-ms; one marker per request, so the markers\' own sends stay out of the timed path). ' +
          'Locally every coordinator and every caller share one workerd thread, so the gets\' RPC work is serial here; in production the coordinators and their callers run in parallel.',
      ],
      tables: [
        {
          title: `Per get: completion − loader end (ms, workerd's clock), ${result.roundsRun} rounds`,
          columns: ['variant', 'gets', 'p50 ms', 'p99 ms', 'max ms'],
          rows: [STAMPEDE, UNCOALESCED, ONE, ONE_UNCOALESCED, SINGLE].map((name) => {
            const c = perGet(tally(name));
            return [name, c.n, ms(c.p50), ms(c.p99), ms(c.max)];
          }),
        },
        {
          title: 'Per request: its last get\'s completion − loader end (ms, Node\'s clock)',
          columns: [...LATENCY_COLUMNS],
          rows: [STAMPEDE, UNCOALESCED, ONE, ONE_UNCOALESCED, SINGLE].map((name) => latencyRow(name, last(name))),
        },
        {
          title: 'Loader calls and outcomes',
          columns: ['variant', 'stampedes', 'loader calls per stampede', 'gets completed', 'outcomes', 'loader start → last get ms (p50)', `gets later than ${STALL_MS} ms`, 'stalled coordinators'],
          rows: [STAMPEDE, ONE, ONE_UNCOALESCED, SINGLE].map((name) => {
            const t = tally(name);
            const completed = Object.entries(t.outcomes).filter(([k]) => k !== 'error').reduce((n, [, v]) => n + v, 0);
            return [name, t.stampedes, [...new Set(t.loaderCalls)].join(', '), completed, JSON.stringify(t.outcomes), ms(summarize(t.wallMs).p50),
              t.clockMs.filter((x) => x > STALL_MS).length, t.stalledCoordinators.join(' ')];
          }),
        },
      ],
      targets: [
        { target: 'loader calls per stampede = 1', actual: `${[...new Set(loads)].join(', ')} over ${loads.length} stampedes`, met: loads.every((n) => n === 1) },
        { target: `report: origin loads per stampede, DIY DO without a lock (${coords} x ${gets} gets, ${LOADER_MS} ms loader)`, actual: `${diyLoads.join(', ')} (library: ${[...new Set(loads)].join(', ')})`, met: null },
        {
          target: `waiter overhead p99 ≤ 5 ms, 1 coordinator x ${gets} gets`,
          actual: `per get p99 ${ms(oneGet.p99)} ms (p50 ${ms(oneGet.p50)}); last get per stampede p99 ${ms(oneLast.p99)} ms (Node clock); ` +
            `a lone get's own store and reply take p50 ${ms(last(SINGLE).p50)} ms of it: 100 waiters add ${ms(aboveLoneMs)} ms (${aboveLone.toFixed(2)}x, paired)`,
          met: oneGet.p99 <= 5 && oneLast.p99 <= 5,
        },
        {
          target: `report: waiter overhead, ${ONE_UNCOALESCED} (what ${gets} separate requests do: waiters inside the coordinator)`,
          actual: `per get p99 ${ms(perGet(tally(ONE_UNCOALESCED)).p99)} ms (p50 ${ms(perGet(tally(ONE_UNCOALESCED)).p50)}); last get p99 ${ms(last(ONE_UNCOALESCED).p99)} ms`,
          met: null,
        },
        {
          target: `report: waiter overhead, ${STAMPEDE} (one workerd thread)`,
          actual: `per get p99 ${ms(overhead.p99)} ms (p50 ${ms(overhead.p50)}); last get per coordinator p99 ${ms(last(STAMPEDE).p99)} ms; uncoalesced per get p99 ${ms(uncoalesced.p99)} ms; ${stalled} gets stalled > ${STALL_MS} ms`,
          met: null,
        },
      ],
      figures: { diyLoadsPerStampede: diyLoads, rounds: result.roundsRun, overheadMs: overhead, oneCoordinatorMs: oneGet, oneCoordinatorLastMs: oneLast, lastMs: last(STAMPEDE), tallies: Object.fromEntries(tallies) },
      notes,
    };
  } finally {
    redis.disconnect();
    await workers?.dispose().catch(() => undefined);
    await markers.close();
    await bridge.close();
    await server.stop();
  }
}

function newTally(): Tally {
  return { stampedes: 0, loaderCalls: [], wrongValues: 0, outcomes: {}, errors: [], wallMs: [], clockMs: [], stalledCoordinators: [] };
}

export const benchmark: Benchmark = { name: 'stampede', aliases: [], title: 'Stampede', run };
