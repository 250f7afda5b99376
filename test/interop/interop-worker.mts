// The Worker the Go interop suite talks to (test/interop/run.ts starts it in workerd): the bytes view of CacheAside
// over HTTP, with a loader that asks the driver's ORIGIN (counts loads, can hold one until released) and returns the
// bytes given as hex, so any value crosses HTTP intact. Every route answers JSON. Not typechecked (`.mts`).
import { CacheAside } from '../../worker/index.ts';

export { CacheAsideCoordinator } from '../../worker/index.ts';

interface Env {
  CACHE_ASIDE: DurableObjectNamespace;
  ORIGIN: string;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function fromHex(hex: string): Uint8Array {
  if (!/^(?:[0-9a-f]{2})*$/i.test(hex)) throw new TypeError(`not hex: ${hex}`);
  return Uint8Array.from(hex.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

function report(error: unknown) {
  const e = error as { name?: string; message?: string; code?: string };
  return { name: e?.name ?? typeof error, code: e?.code, message: e?.message ?? String(error) };
}

async function get(env: Env, params: URLSearchParams): Promise<Response> {
  const key = params.get('key')!;
  const ttlMs = Number(params.get('ttl') ?? 10_000);
  const hex = params.get('hex');
  const timeout = params.get('timeout');
  const loader = params.get('loader') === '0' ? undefined : async (k: string | Uint8Array, ctx: { signal: AbortSignal }) => {
    const res = await fetch(`${env.ORIGIN}/load/${encodeURIComponent(String(k))}`, { signal: ctx.signal });
    const body = new Uint8Array(await res.arrayBuffer());
    if (!res.ok) throw new Error(`origin answered ${res.status}`);
    return hex === null ? body : fromHex(hex);
  };
  try {
    const cache = CacheAside.fromEnv(env).bytes();
    const { value, outcome } = await cache.getWithOutcome(key, ttlMs, loader as never, timeout === null ? {} : { timeoutMs: Number(timeout) });
    return json({ ok: true, hex: value === null ? null : toHex(value), outcome });
  } catch (error) {
    return json({ ok: false, error: report(error) });
  }
}

async function del(env: Env, params: URLSearchParams): Promise<Response> {
  try {
    await CacheAside.fromEnv(env).bytes().del(params.get('key')!);
    return json({ ok: true });
  } catch (error) {
    return json({ ok: false, error: report(error) });
  }
}

async function stats(env: Env, params: URLSearchParams): Promise<Response> {
  const name = CacheAside.fromEnv(env).coordinatorFor(params.get('key')!);
  const stub = env.CACHE_ASIDE.getByName(name) as unknown as { getStats(): Promise<object> };
  return json({ name, ...(await stub.getStats()) });
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    try {
      switch (url.pathname) {
        case '/get': return await get(env, url.searchParams);
        case '/del': return await del(env, url.searchParams);
        case '/stats': return await stats(env, url.searchParams);
        default: return json({ error: `no route ${url.pathname}` }, 404);
      }
    } catch (error) {
      return json({ ok: false, error: report(error) }, 500);
    }
  },
};
