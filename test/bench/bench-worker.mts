// The Worker the benchmarks drive inside workerd (bundled by test/bench/workerd.ts). /loop runs a whole measured
// loop inside ONE Worker request, so the ~3 ms Node→workerd dispatch is paid once per batch, not per call; it is
// timed with Date.now() (ms-granular: sub-batches of many calls, plus each call's tick difference). /watch and
// /stampede send markers to Node, which stamps them with a sub-µs clock. A .mts file so that the Node-typed test
// project skips it; type-check it with `npx tsc -p test/bench/tsconfig.worker.json`.
import { DurableObject } from 'cloudflare:workers';
import { CacheAside } from '../../worker/index.ts';
import type { CacheAsideCoordinator, Loader, Placement } from '../../worker/index.ts';
import { MAX_TICK_MS } from './worker-routes.ts';
import type { LoopReply, LoopRequest, PlacementSpec, StampedeReply, StampedeRequest, WatchReply, WatchRequest } from './worker-routes.ts';

export { CacheAsideCoordinator } from '../../worker/index.ts';
export { DirectObject } from './direct-valkey.mts';
import type { DirectObject } from './direct-valkey.mts';

const REPLY_VALUE = 'v'.repeat(100);

/** The floor: a Durable Object whose RPC method does nothing. */
export class BareObject extends DurableObject {
  ping(): number {
    return 1;
  }

  /** Takes a get's request and answers a get's reply (a 100-byte value), to price the RPC payload alone. */
  echo(_request: { key: string; ttlMs: number; timeoutMs: number; requestId: string }): { kind: 'value'; value: string; outcome: 'hit' } {
    return { kind: 'value', value: REPLY_VALUE, outcome: 'hit' };
  }
}

interface Env {
  CACHE_ASIDE: DurableObjectNamespace<CacheAsideCoordinator>;
  BARE: DurableObjectNamespace<BareObject>;
  DIRECT: DurableObjectNamespace<DirectObject>;
  MARKER_URL: string;
}

interface Marker {
  send(text: string): void;
  close(): void;
}

async function openMarker(env: Env, label: string): Promise<Marker> {
  const res = await fetch(`${env.MARKER_URL}?label=${encodeURIComponent(label)}`, { headers: { Upgrade: 'websocket' } });
  const ws = res.webSocket;
  if (ws === null) throw new Error(`marker server refused the upgrade: HTTP ${res.status}`);
  ws.accept();
  return {
    send: (text) => ws.send(text),
    close: () => ws.close(1000, 'done'),
  };
}

function placementOf(spec: PlacementSpec): Placement {
  if (spec.kind === 'coord') {
    const name = spec.name;
    return () => name;
  }
  return spec.kind === 'per-key' ? 'per-key' : { shards: spec.n };
}

function note(errors: string[], error: unknown): void {
  if (errors.length < 5) errors.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
}

const trivialLoader: Loader = (key) => `loaded:${key}`;

async function loop(env: Env, body: LoopRequest): Promise<LoopReply> {
  const cache = new CacheAside(env.CACHE_ASIDE, { placement: placementOf(body.placement), namePrefix: body.namePrefix ?? 'bench', coalesce: body.coalesce ?? true });
  const loader = body.loader ? trivialLoader : undefined;
  const outcomes: Record<string, number> = {};
  const errors: string[] = [];
  const ticks: number[] = new Array(MAX_TICK_MS + 1).fill(0);
  const batchMs: number[] = [];
  const keys = body.keys;
  const deadline = Date.now() + body.maxMs;
  let next = 0;
  let calls = 0;
  let boundary = Date.now();
  const started = boundary;
  const lane = async () => {
    for (;;) {
      const i = next++;
      if (i >= keys.length || Date.now() > deadline) return;
      const t0 = Date.now();
      try {
        if (body.op === 'bare') {
          // As a Worker addresses a DO on every request: getByName, then the call.
          await env.BARE.getByName('bare').ping();
          outcomes.bare = (outcomes.bare ?? 0) + 1;
        } else if (body.op === 'bare-payload') {
          await env.BARE.getByName('bare').echo({ key: keys[i]!, ttlMs: body.ttlMs, timeoutMs: body.ttlMs, requestId: crypto.randomUUID() });
          outcomes.bare = (outcomes.bare ?? 0) + 1;
        } else if (body.op === 'direct' || body.op === 'direct-naive') {
          const outcome = await env.DIRECT.getByName(body.namePrefix ?? 'direct').get(keys[i]!, body.ttlMs, body.op === 'direct-naive', body.loader === true, body.loaderMs);
          outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        } else {
          const { outcome } = await (body.staleMs === undefined
            ? cache.getWithOutcome(keys[i]!, body.ttlMs, loader)
            : cache.getWithOutcome(keys[i]!, body.ttlMs, loader, { staleMs: body.staleMs }));
          outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        }
      } catch (error) {
        outcomes.error = (outcomes.error ?? 0) + 1;
        note(errors, error);
      }
      const now = Date.now();
      ticks[Math.min(now - t0, MAX_TICK_MS)]!++;
      if (++calls % body.batchSize === 0) {
        batchMs.push(now - boundary);
        boundary = now;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, body.concurrency) }, lane));
  return { calls, elapsedMs: Date.now() - started, batchMs, ticks, outcomes, errors };
}

/**
 * Caches `key` in coordinator `coord` (gets until one is a local hit), sends "armed", then polls the
 * coordinator's stats until its copy is gone and sends "dropped" (or "timeout"). The poll is one RPC (~0.15 ms),
 * which bounds the detection delay.
 */
async function watch(env: Env, body: WatchRequest): Promise<WatchReply> {
  const cache = new CacheAside(env.CACHE_ASIDE, { placement: () => body.coord });
  let outcome = '';
  for (let i = 0; i < 5 && outcome !== 'hit'; i++) outcome = (await cache.getWithOutcome(body.key, body.ttlMs)).outcome;
  if (outcome !== 'hit') return { armed: false, dropped: false, polls: 0, outcome };
  const stub = env.CACHE_ASIDE.getByName(body.coord);
  const marker = await openMarker(env, body.markLabel);
  marker.send('armed');
  const deadline = Date.now() + body.maxMs;
  let polls = 0;
  let dropped = false;
  while (!dropped && polls < 1_000_000 && Date.now() < deadline) {
    polls++;
    dropped = (await stub.getStats()).entries === 0;
    // Yield to the event loop: back-to-back local RPCs never let workerd poll its sockets, so the push would wait.
    if (!dropped) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  marker.send(dropped ? 'dropped' : 'timeout');
  marker.close();
  return { armed: true, dropped, polls, outcome };
}

/** `gets` concurrent gets of one cold key through coordinator `coord`, with a loader that takes `loaderMs`. */
async function stampede(env: Env, body: StampedeRequest): Promise<StampedeReply> {
  const cache = new CacheAside(env.CACHE_ASIDE, { placement: () => body.coord, coalesce: body.coalesce ?? true });
  const marker = await openMarker(env, body.markLabel);
  const value = `stampede:${body.key}`;
  let loaderCalls = 0;
  let loaderEndAt: number | null = null;
  const doneAt: number[] = [];
  const loader: Loader = async () => {
    loaderCalls++;
    marker.send('L+');
    await new Promise((resolve) => setTimeout(resolve, body.loaderMs));
    loaderEndAt = Date.now();
    marker.send('L-');
    return value;
  };
  const outcomes: Record<string, number> = {};
  const errors: string[] = [];
  let wrongValues = 0;
  const started = Date.now();
  await Promise.all(Array.from({ length: body.gets }, async () => {
    try {
      const result = await cache.getWithOutcome(body.key, body.ttlMs, loader);
      outcomes[result.outcome] = (outcomes[result.outcome] ?? 0) + 1;
      if (result.value !== value) wrongValues++;
    } catch (error) {
      outcomes.error = (outcomes.error ?? 0) + 1;
      note(errors, error);
    }
    doneAt.push(Date.now());
    // One marker, for the last get: a marker per get would put 100 WebSocket sends in the path being timed.
    if (doneAt.length === body.gets) marker.send('D');
  }));
  const elapsedMs = Date.now() - started;
  marker.close();
  return { loaderCalls, loaderEndAt, doneAt, outcomes, wrongValues, errors, elapsedMs };
}

async function stats(env: Env, coord: string): Promise<unknown> {
  return env.CACHE_ASIDE.getByName(coord).getStats();
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    try {
      let result: unknown;
      switch (url.pathname) {
        case '/loop': result = await loop(env, await request.json()); break;
        case '/watch': result = await watch(env, await request.json()); break;
        case '/stampede': result = await stampede(env, await request.json()); break;
        case '/stats': result = await stats(env, url.searchParams.get('coord') ?? ''); break;
        default: return Response.json({ error: `no route ${url.pathname}` }, { status: 404 });
      }
      return Response.json(result);
    } catch (error) {
      return Response.json({ error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }, { status: 500 });
    }
  },
};
