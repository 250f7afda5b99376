// Benchmark 4, stampede: a cold key, 1,000 concurrent gets spread over 10 coordinators (100 each, every
// coordinator competing for Valkey's lock), a 50 ms loader. Counts loader calls (must be 1) and times every get's
// completion against the end of the loader, with Node stamping markers the Worker sends (workerd's clock is ms).
import { Redis } from 'iovalkey';
import { randomPrefix } from '../support/bridge.ts';
import { startValkeyServer } from '../support/valkey-server.ts';
import { startBridgeChild } from './bridge-process.ts';
import { startMarkerServer, type MarkerServer } from './markers.ts';
import {
  LATENCY_COLUMNS, alternate, latencyRow, ms, summarize,
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

/** One cold key, `coords` coordinators x `gets` gets; returns each get's completion minus the loader's end (ms). */
async function stampede(workers: BenchWorkers, markers: MarkerServer, key: string, coords: number, gets: number, tally: Tally, coalesce = true): Promise<number[]> {
  const label = `stampede:${key}`;
  const replies = await Promise.all(Array.from({ length: coords }, (_, j) =>
    workers.post<StampedeReply>('main', '/stampede', { key, coord: `stampede-${coords}-${j}`, gets, loaderMs: LOADER_MS, ttlMs: TTL_MS, markLabel: label, coalesce }, TTL_MS + 10_000)));
  await markers.waitFor(label, (m) => m.filter((x) => x.text.startsWith('d')).length >= coords * gets, 5_000);
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
  const done = marks.filter((m) => m.text.startsWith('d')).map((m) => m.at);
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
    const tallies = { stampede: newTally(), uncoalesced: newTally(), one: newTally(), single: newTally() };
    const STAMPEDE = `${coords} coordinators x ${gets} gets`;
    const UNCOALESCED = `${STAMPEDE}, coalesce: false`;
    const ONE = `1 coordinator x ${gets} gets`;
    const SINGLE = '1 get (baseline)';
    const variants: Variant[] = [
      { name: STAMPEDE, run: (round) => stampede(w, markers, `${prefix}many:${round}`, coords, gets, tallies.stampede) },
      // Every get its own RPC (as before coalescing in the caller's isolate): the baseline of the line above.
      { name: UNCOALESCED, run: (round) => stampede(w, markers, `${prefix}unco:${round}`, coords, gets, tallies.uncoalesced, false) },
      { name: ONE, run: (round) => stampede(w, markers, `${prefix}hundred:${round}`, 1, gets, tallies.one) },
      { name: SINGLE, run: (round) => stampede(w, markers, `${prefix}one:${round}`, 1, 1, tallies.single) },
    ];
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
    const all = result.samples.get(STAMPEDE)!;
    const overhead = summarize(all);
    const prompt = summarize(all.filter((x) => x <= STALL_MS));
    const stalled = all.filter((x) => x > STALL_MS).length;
    const single = summarize(result.samples.get(SINGLE)!);
    const one = summarize(result.samples.get(ONE)!);
    const loads = tallies.stampede.loaderCalls;
    const completed = Object.entries(tallies.stampede.outcomes).filter(([k]) => k !== 'error').reduce((n, [, v]) => n + v, 0);
    const uncoalesced = summarize(result.samples.get(UNCOALESCED)!);
    const notes: string[] = [
      `coalesced / uncoalesced: p50 ${(overhead.p50 / uncoalesced.p50).toFixed(2)}x, p99 ${(overhead.p99 / uncoalesced.p99).toFixed(2)}x; ` +
        `loader calls per stampede uncoalesced: ${[...new Set(tallies.uncoalesced.loaderCalls)].join(', ')}`,
    ];
    if (tallies.stampede.errors.length > 0) notes.push(`errors: ${tallies.stampede.errors.join('; ')}`);
    if (tallies.stampede.wrongValues > 0) notes.push(`${tallies.stampede.wrongValues} gets returned a value other than the loader's`);
    if (stalled > 0) {
      notes.push(`${stalled} gets (whole coordinators: ${tallies.stampede.stalledCoordinators.filter((n) => n > 0).length} stampedes affected) completed more than ${STALL_MS} ms after the loader: ` +
        'they were woken by the holder\'s liveness-marker refresh (clientTtlMs / 2), not by the value\'s push. See docs/benchmarks.md, "Stampede".');
    }
    return {
      name: 'stampede',
      title: 'Stampede',
      method: [
        `Each round a fresh cold key; ${coords} Worker requests, each driving a different coordinator (placement by name), start ${gets} concurrent gets of it ` +
          `with a loader that waits ${LOADER_MS} ms. Two references alternate with it: ${gets} gets through one coordinator, and one get alone.`,
        'The loader sends "L+"/"L-" markers and every get sends "d<i>" when it completes, over a WebSocket to Node, which stamps arrivals with performance.now(). ' +
          'Waiter overhead = completion − loader end (every get, the loader\'s own included). Locally every coordinator and every caller share one workerd ' +
          'thread, so the 1,000 gets\' RPC work is serial here; in production the 10 coordinators and their callers run in parallel.',
      ],
      tables: [
        {
          title: `Get completion − loader end (ms), ${result.roundsRun} rounds`,
          columns: [...LATENCY_COLUMNS],
          rows: [
            latencyRow(STAMPEDE, overhead),
            latencyRow(`${STAMPEDE}, gets done within ${STALL_MS} ms only`, prompt),
            latencyRow(UNCOALESCED, summarize(result.samples.get(UNCOALESCED)!)),
            latencyRow(ONE, one),
            latencyRow(SINGLE, single),
          ],
        },
        {
          title: 'The same by workerd\'s own Date.now() (whole ms; no marker cost in the path)',
          columns: ['variant', 'gets', 'p50 ms', 'p99 ms', 'max ms'],
          rows: [STAMPEDE, UNCOALESCED, ONE, SINGLE].map((name) => {
            const t = name === STAMPEDE ? tallies.stampede : name === UNCOALESCED ? tallies.uncoalesced : name === ONE ? tallies.one : tallies.single;
            const c = summarize(t.clockMs);
            return [name, c.n, ms(c.p50), ms(c.p99), ms(c.max)];
          }),
        },
        {
          title: 'Loader calls and outcomes',
          columns: ['variant', 'stampedes', 'loader calls per stampede', 'gets completed', 'outcomes', 'loader start → last get ms (p50)', `gets later than ${STALL_MS} ms`, 'stalled coordinators'],
          rows: [
            [STAMPEDE, tallies.stampede.stampedes, [...new Set(loads)].join(', '), completed, JSON.stringify(tallies.stampede.outcomes), ms(summarize(tallies.stampede.wallMs).p50),
              stalled, tallies.stampede.stalledCoordinators.join(' ')],
            [ONE, tallies.one.stampedes, [...new Set(tallies.one.loaderCalls)].join(', '), tallies.one.stampedes * gets, JSON.stringify(tallies.one.outcomes), ms(summarize(tallies.one.wallMs).p50),
              result.samples.get(ONE)!.filter((x) => x > STALL_MS).length, tallies.one.stalledCoordinators.join(' ')],
            [SINGLE, tallies.single.stampedes, [...new Set(tallies.single.loaderCalls)].join(', '), tallies.single.stampedes, JSON.stringify(tallies.single.outcomes), ms(summarize(tallies.single.wallMs).p50),
              result.samples.get(SINGLE)!.filter((x) => x > STALL_MS).length, tallies.single.stalledCoordinators.join(' ')],
          ],
        },
      ],
      targets: [
        { target: 'loader calls per stampede = 1', actual: `${[...new Set(loads)].join(', ')} over ${loads.length} stampedes`, met: loads.every((n) => n === 1) },
        { target: `report: origin loads per stampede, DIY DO without a lock (${coords} x ${gets} gets, ${LOADER_MS} ms loader)`, actual: `${diyLoads.join(', ')} (library: ${[...new Set(loads)].join(', ')})`, met: null },
        { target: 'waiter overhead p99 ≤ 5 ms', actual: `p99 ${ms(overhead.p99)} ms, p50 ${ms(overhead.p50)} ms; ${stalled} of ${overhead.n} gets stalled > ${STALL_MS} ms; without them p99 ${ms(prompt.p99)} ms (1 coordinator x ${gets}: p99 ${ms(one.p99)} ms)`, met: overhead.p99 <= 5 },
      ],
      figures: { diyLoadsPerStampede: diyLoads, rounds: result.roundsRun, overheadMs: overhead, promptOverheadMs: prompt, oneCoordinatorMs: one, singleMs: single, tallies },
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
