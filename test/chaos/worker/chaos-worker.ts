// The chaos run's Worker (bundled by test/chaos/worker-stack.ts, run in workerd by Miniflare): CacheAside over
// HTTP routes whose loaders fetch the chaos origin (which names every value and records when it computed it), and
// a coordinator subclass with one extra RPC, `abortForTest`, that resets the Durable Object (`ctx.abort()`).
import { CacheAside, CacheAsideCoordinator } from '../../../worker/index.ts';
import type { CoordinatorEnv } from '../../../worker/index.ts';

/** The library's coordinator plus a way for tests to kill it (a new instance is built on the next call). */
export class ChaosCoordinator extends CacheAsideCoordinator {
  abortForTest(): void {
    this.ctx.abort('chaos: coordinator aborted');
  }
}

interface Env extends CoordinatorEnv {
  CACHE_ASIDE: DurableObjectNamespace<ChaosCoordinator>;
  ORIGIN: string;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

function report(error: unknown): { name: string; code?: string; message: string } {
  const e = error as { name?: string; code?: string; message?: string };
  return { name: e?.name ?? typeof error, code: e?.code, message: (e?.message ?? String(error)).slice(0, 300) };
}

/** `prefix` picks the coordinator family (namePrefix), so one key has several coordinators in one namespace. */
function cacheFor(env: Env, params: URLSearchParams): CacheAside {
  return CacheAside.fromEnv(env, { namePrefix: params.get('prefix') ?? 'chaos', placement: 'per-key' });
}

/** `stale`: a stale-while-revalidate get (its refresh under this request's ctx unless `noCtx`). */
async function get(env: Env, params: URLSearchParams, ctx: ExecutionContext): Promise<Response> {
  const key = params.get('key')!;
  const ttlMs = Number(params.get('ttl') ?? 5_000);
  const timeoutMs = Number(params.get('timeout') ?? 2_000);
  const staleMs = Number(params.get('stale') ?? 0);
  const loader = params.get('loader') === '0' ? undefined : async (k: string, ctx: { signal: AbortSignal }) => {
    const origin = new URL('/load', env.ORIGIN);
    for (const name of ['op', 'delay', 'fail']) origin.searchParams.set(name, params.get(name) ?? '');
    // The PX the value is stored with, so the checker knows when it expires.
    origin.searchParams.set('ttl', String(ttlMs + staleMs));
    origin.searchParams.set('key', k);
    const res = await fetch(origin, { signal: ctx.signal });
    const body = await res.text();
    if (!res.ok) throw new Error(`origin answered ${res.status}: ${body}`);
    return body;
  };
  try {
    const swr = staleMs > 0 ? (params.has('noCtx') ? { staleMs } : { staleMs, ctx }) : {};
    const { value, outcome } = await cacheFor(env, params).getWithOutcome(key, ttlMs, loader, { timeoutMs, ...swr });
    return json({ ok: true, value, outcome });
  } catch (error) {
    return json({ ok: false, error: report(error) });
  }
}

/** A getMany of the JSON array `keys`; `ops` (JSON, one per key) names the op whose value each key's load computes. */
async function many(env: Env, params: URLSearchParams): Promise<Response> {
  const keys = JSON.parse(params.get('keys') ?? '[]') as string[];
  const ops = JSON.parse(params.get('ops') ?? '[]') as number[];
  const opOf = new Map(keys.map((key, i) => [key, ops[i]]));
  const ttlMs = Number(params.get('ttl') ?? 5_000);
  const timeoutMs = Number(params.get('timeout') ?? 2_000);
  const loadMany = async (wanted: string[], ctx: { signal: AbortSignal }) => new Map(await Promise.all(wanted.map(async (k): Promise<[string, string]> => {
    const origin = new URL('/load', env.ORIGIN);
    for (const name of ['delay', 'fail', 'ttl']) origin.searchParams.set(name, params.get(name) ?? '');
    origin.searchParams.set('op', String(opOf.get(k)));
    origin.searchParams.set('key', k);
    const res = await fetch(origin, { signal: ctx.signal });
    const body = await res.text();
    if (!res.ok) throw new Error(`origin answered ${res.status}: ${body}`);
    return [k, body];
  })));
  try {
    const results = await cacheFor(env, params).getManyWithOutcome(keys, ttlMs, loadMany, { timeoutMs });
    return json({ ok: true, results: keys.map((key) => results.get(key)) });
  } catch (error) {
    return json({ ok: false, error: report(error) });
  }
}

async function del(env: Env, params: URLSearchParams): Promise<Response> {
  try {
    await cacheFor(env, params).del(params.get('key')!, { timeoutMs: Number(params.get('timeout') ?? 2_000) });
    return json({ ok: true });
  } catch (error) {
    return json({ ok: false, error: report(error) });
  }
}

/** The coordinator's gets and refreshes in progress, so a run can wait for background refreshes to end. */
async function busy(env: Env, params: URLSearchParams): Promise<Response> {
  const name = cacheFor(env, params).coordinatorFor(params.get('key')!);
  try {
    return json({ ok: true, activeGets: (await env.CACHE_ASIDE.getByName(name).getStats()).activeGets });
  } catch (error) {
    return json({ ok: false, error: report(error) });
  }
}

/** Resets the coordinator serving `key` for `prefix`; the abort rejects this very call, which is expected. */
async function abort(env: Env, params: URLSearchParams): Promise<Response> {
  const name = cacheFor(env, params).coordinatorFor(params.get('key')!);
  try {
    await env.CACHE_ASIDE.getByName(name).abortForTest();
    return json({ ok: true, aborted: name });
  } catch (error) {
    return json({ ok: true, aborted: name, error: report(error) });
  }
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    switch (url.pathname) {
      case '/get': return get(env, url.searchParams, ctx);
      case '/many': return many(env, url.searchParams);
      case '/busy': return busy(env, url.searchParams);
      case '/del': return del(env, url.searchParams);
      case '/abort': return abort(env, url.searchParams);
      default: return json({ error: `no route ${url.pathname}` }, 404);
    }
  },
};
