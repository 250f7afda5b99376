// A Worker for the integration tests: re-exports the coordinator and drives CacheAside over HTTP routes, with
// loaders that fetch the test ORIGIN (served by the Node test process). Every route answers JSON, errors included.
import { CacheAside, ConnectionError, SerializationError, TimeoutError, ValkeyasideError } from '../../worker/index.ts';
import type { CacheAsideCoordinator, CacheAsideOptions, GetOptions, Loader, LoaderContext } from '../../worker/index.ts';

export { CacheAsideCoordinator } from '../../worker/index.ts';

interface Env {
  CACHE_ASIDE: DurableObjectNamespace<CacheAsideCoordinator>;
  ORIGIN: string;
  BRIDGE_URL: string;
  BRIDGE_TOKEN: string;
}

/** What the origin's non-2xx answers turn into, so a test can check the caller got this very object. */
class OriginError extends Error {
  override name = 'OriginError';
  constructor(readonly status: number, body: string) {
    super(`origin answered ${status}: ${body}`);
  }
}

/** The sentinel a negative-caching loader stores for "not found" (as in Go's README). */
const NOT_FOUND = '_nil_';

export interface ErrorReport {
  name: string;
  message: string;
  code?: string;
  value?: unknown;
  status?: number;
  isTimeout: boolean;
  isValkeyaside: boolean;
  /** True when the caught error is the very object the loader threw. */
  sameObject?: boolean;
  isConnection: boolean;
  /** SerializationError: the key it names. */
  key?: unknown;
  /** The error's cause, when it is an Error (e.g. the TRYAGAIN ReplyError behind a ConnectionError). */
  cause?: { name: string; message: string };
}

function report(error: unknown, thrown?: unknown): ErrorReport {
  const e = error as { name?: string; message?: string; code?: string; value?: unknown; status?: number };
  return {
    name: e?.name ?? typeof error,
    message: e?.message ?? String(error),
    code: e?.code,
    value: e?.value,
    status: e?.status,
    isTimeout: error instanceof TimeoutError,
    isValkeyaside: error instanceof ValkeyasideError,
    isConnection: error instanceof ConnectionError,
    ...(error instanceof SerializationError ? { key: error.key } : {}),
    ...(error instanceof Error && error.cause instanceof Error ? { cause: { name: error.cause.name, message: error.cause.message } } : {}),
    ...(thrown !== undefined ? { sameObject: error === thrown } : {}),
  };
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

function int(params: URLSearchParams, name: string): number | undefined {
  const raw = params.get(name);
  return raw === null ? undefined : Number(raw);
}

function cacheFor(env: Env, params: URLSearchParams): CacheAside {
  const coord = params.get('coord');
  const options: CacheAsideOptions = coord === null ? {} : { placement: () => coord };
  if (params.get('onUnavailable') === 'load') options.onUnavailable = 'load';
  if (params.get('coalesce') === '0') options.coalesce = false;
  const shards = int(params, 'shards');
  if (coord === null && shards !== undefined) options.placement = { shards };
  const region = params.get('region');
  if (region !== null) options.region = region;
  const maxBypass = int(params, 'maxBypass');
  if (maxBypass !== undefined) options.maxBypassLoads = maxBypass;
  return CacheAside.fromEnv(env, options);
}

function fromHex(hex: string): Uint8Array {
  return new Uint8Array((hex.match(/../g) ?? []).map((pair) => parseInt(pair, 16)));
}

function toHex(bytes: Uint8Array | null): string | null {
  return bytes === null ? null : [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The bytes view's key: `keyHex` (any bytes) or `key` (text, standing for its UTF-8 bytes). */
function bytesKey(params: URLSearchParams): string | Uint8Array {
  const hex = params.get('keyHex');
  return hex === null ? params.get('key')! : fromHex(hex);
}

/** A get through the bytes view; `valueHex` makes the loader return those bytes, else it loads the origin's body. */
async function bytesGet(env: Env, params: URLSearchParams, ctx: ExecutionContext): Promise<Response> {
  const cache = cacheFor(env, params).bytes();
  const ttlMs = int(params, 'ttl') ?? 5_000;
  const valueHex = params.get('valueHex');
  const origin = originLoader(env, params, () => {});
  const loader: Loader<Uint8Array, string | Uint8Array> | undefined = params.get('loader') === '0'
    ? undefined
    : valueHex !== null
      ? () => fromHex(valueHex)
      : async (key, ctx) => new TextEncoder().encode(await origin(typeof key === 'string' ? key : toHex(key)!, ctx as LoaderContext));
  try {
    const { value, outcome } = await cache.getWithOutcome(bytesKey(params), ttlMs, loader, staleOptions(params, ctx));
    return json({ ok: true, valueHex: toHex(value), outcome });
  } catch (error) {
    return json({ ok: false, error: report(error) });
  }
}

async function bytesDel(env: Env, params: URLSearchParams): Promise<Response> {
  try {
    await cacheFor(env, params).bytes().del(bytesKey(params));
    return json({ ok: true });
  } catch (error) {
    return json({ ok: false, error: report(error) });
  }
}

/**
 * Loads from ORIGIN; `negTtlMs` turns a 404 into a short-lived NOT_FOUND, `ttlOverrideMs` sets the ttl always;
 * `failLoad` throws after the origin answered (so the origin still counts the load).
 */
function originLoader(env: Env, params: URLSearchParams, onThrow: (error: unknown) => void): Loader {
  const negTtlMs = int(params, 'negTtl');
  const ttlOverrideMs = int(params, 'ttlOverride');
  return async (key, ctx) => {
    try {
      const res = await fetch(`${env.ORIGIN}/load/${encodeURIComponent(key)}`, { signal: ctx.signal });
      const body = await res.text();
      if (params.has('failLoad')) throw new OriginError(503, `failLoad: ${body}`);
      if (res.status === 404 && negTtlMs !== undefined) {
        ctx.setTtl(negTtlMs);
        return NOT_FOUND;
      }
      if (!res.ok) throw new OriginError(res.status, body);
      if (ttlOverrideMs !== undefined) ctx.setTtl(ttlOverrideMs);
      return body;
    } catch (error) {
      onThrow(error);
      throw error;
    }
  };
}

/** Stale-while-revalidate: `stale` is the window (ms); the refresh runs under the request's ctx unless `noCtx`. */
function staleOptions(params: URLSearchParams, ctx: ExecutionContext): GetOptions {
  const staleMs = int(params, 'stale');
  if (staleMs === undefined) return {};
  return params.has('noCtx') ? { staleMs } : { staleMs, ctx };
}

async function get(env: Env, params: URLSearchParams, ctx: ExecutionContext): Promise<Response> {
  const cache = cacheFor(env, params);
  // keyJson: a JSON string, for keys a URL cannot carry (a lone surrogate becomes U+FFFD in a query string).
  const key = params.has('keyJson') ? JSON.parse(params.get('keyJson')!) as string : params.get('key')!;
  const ttlMs = int(params, 'ttl') ?? 5_000;
  const options: GetOptions = staleOptions(params, ctx);
  const timeoutMs = int(params, 'timeout');
  if (timeoutMs !== undefined) options.timeoutMs = timeoutMs;
  const controller = new AbortController();
  const signalMs = int(params, 'signalMs');
  if (signalMs !== undefined) setTimeout(() => controller.abort(new Error('test signal')), signalMs);
  if (signalMs !== undefined || params.has('abortInLoader')) options.signal = controller.signal;

  let thrown: unknown;
  let loader: Loader | undefined = params.get('loader') === '0' ? undefined : originLoader(env, params, (e) => { thrown = e; });
  let inner: Promise<unknown> | undefined;
  if (loader !== undefined && params.has('abortInLoader')) {
    const load = loader;
    // Go's TestWriteCancel: the caller cancels while its loader runs, and the loader still returns a value.
    loader = async (key, ctx) => {
      const value = await load(key, ctx);
      controller.abort(new Error('cancelled in loader'));
      return value;
    };
  }
  if (params.has('nested')) {
    // Go's TestTimeout: a get inside the loader for the key this caller is loading (ending with the outer one).
    loader = async (key, ctx) => {
      inner = cache.get(key, ttlMs, async () => 'inner', { signal: ctx.signal }).then((value) => ({ value }), (error: unknown) => ({ error: report(error) }));
      const result = (await inner) as { error?: ErrorReport };
      if (result.error) throw new Error(`inner get failed: ${result.error.message}`);
      return 'outer';
    };
  }
  try {
    if (params.has('typed')) {
      const typed = cache.typed<unknown>();
      const typedLoader = loader && (async (key: string, ctx: Parameters<Loader>[1]): Promise<unknown> => {
        const body = await loader!(key, ctx);
        // A BigInt makes JSON.stringify throw: the codec's serialize fails after a successful load.
        return params.has('unserializable') ? { n: BigInt(body.length) } : JSON.parse(body);
      });
      const { value, outcome } = await typed.getWithOutcome(key, ttlMs, typedLoader, options);
      return json({ ok: true, value, outcome });
    }
    const { value, outcome } = await cache.getWithOutcome(key, ttlMs, loader, options);
    return json({ ok: true, value, outcome, inner: await inner });
  } catch (error) {
    return json({ ok: false, error: report(error, thrown), inner: await inner });
  }
}

/** `n` concurrent gets of one key through one request (so one coordinator sees `n` callers at once). */
async function burst(env: Env, params: URLSearchParams, ctx: ExecutionContext): Promise<Response> {
  const cache = cacheFor(env, params);
  const key = params.get('key')!;
  const ttlMs = int(params, 'ttl') ?? 5_000;
  const n = int(params, 'n') ?? 10;
  // timeouts: a JSON array of each caller's timeoutMs (null: none).
  const timeouts = JSON.parse(params.get('timeouts') ?? '[]') as Array<number | null>;
  const loader = params.get('loader') === '0' ? undefined : originLoader(env, params, () => {});
  const results = await Promise.all(Array.from({ length: n }, (_, i) =>
    cache.getWithOutcome(key, ttlMs, loader, { ...staleOptions(params, ctx), ...(timeouts[i] == null ? {} : { timeoutMs: timeouts[i]! }) }).then(
      ({ value, outcome }) => ({ ok: true as const, value, outcome }),
      (error: unknown) => ({ ok: false as const, error: report(error) }))));
  return json({ results });
}

/**
 * `n` (default 1) concurrent getManys of the JSON array `keys` in one request, through the text, `typed` or `bytes`
 * view. The loadMany fetches each key from ORIGIN and leaves out the keys of the JSON array `omit`; every loadMany
 * call is reported with the keys it was given.
 */
async function many(env: Env, params: URLSearchParams): Promise<Response> {
  const cache = cacheFor(env, params);
  const keys = JSON.parse(params.get('keys')!) as string[];
  const omit = new Set(JSON.parse(params.get('omit') ?? '[]') as string[]);
  const ttlMs = int(params, 'ttl') ?? 5_000;
  const n = int(params, 'n') ?? 1;
  const options: GetOptions = {};
  const timeoutMs = int(params, 'timeout');
  if (timeoutMs !== undefined) options.timeoutMs = timeoutMs;
  const calls: string[][] = [];
  const fetchAll = async (wanted: readonly string[], signal: AbortSignal) => {
    calls.push([...wanted]);
    if (params.has('throw')) throw new OriginError(599, 'loadMany failed on purpose');
    const loaded = new Map<string, string>();
    await Promise.all(wanted.filter((key) => !omit.has(key)).map(async (key) => {
      const res = await fetch(`${env.ORIGIN}/load/${encodeURIComponent(key)}`, { signal });
      loaded.set(key, await res.text());
    }));
    return loaded;
  };
  const one = async (): Promise<Array<{ key: string; value: unknown; outcome: string }>> => {
    const withLoader = params.get('loader') !== '0';
    if (params.has('typed')) {
      const results = await cache.typed<{ body: string }>().getManyWithOutcome(keys, ttlMs, withLoader ? async (wanted, ctx) =>
        new Map([...(await fetchAll(wanted, ctx.signal))].map(([key, body]) => [key, { body }])) : undefined, options);
      return [...results].map(([key, { value, outcome }]) => ({ key, value, outcome }));
    }
    if (params.has('bytes')) {
      const results = await cache.bytes().getManyWithOutcome(keys, ttlMs, withLoader ? async (wanted, ctx) =>
        new Map([...(await fetchAll(wanted, ctx.signal))].map(([key, body]) => [key, new TextEncoder().encode(body)])) : undefined, options);
      return [...results].map(([key, { value, outcome }]) => ({ key, value: toHex(value), outcome }));
    }
    const results = await cache.getManyWithOutcome(keys, ttlMs, withLoader ? (wanted, ctx) => fetchAll(wanted, ctx.signal) : undefined, options);
    return [...results].map(([key, { value, outcome }]) => ({ key, value, outcome }));
  };
  const answers = await Promise.all(Array.from({ length: n }, () => one().then(
    (results) => ({ ok: true as const, results }),
    (error: unknown) => ({ ok: false as const, error: report(error) }))));
  return json({ answers, calls });
}

/**
 * A get, then (once ORIGIN answers `<key>:gate`, which the test holds until it has changed the key) a second get of
 * the key while the first is still out; then ORIGIN is told `<key>:second-started`. Answers both.
 */
async function overlap(env: Env, params: URLSearchParams): Promise<Response> {
  const cache = cacheFor(env, params);
  const key = params.get('key')!;
  const settle = (get: Promise<{ value: string | null; outcome: string }>) =>
    get.then(({ value, outcome }) => ({ ok: true, value, outcome }), (error: unknown) => ({ ok: false, error: report(error) }));
  const first = settle(cache.getWithOutcome(key, 10_000, originLoader(env, params, () => {})));
  await (await fetch(`${env.ORIGIN}/load/${encodeURIComponent(`${key}:gate`)}`)).text();
  const second = settle(cache.getWithOutcome(key, 10_000, originLoader(env, params, () => {})));
  await (await fetch(`${env.ORIGIN}/load/${encodeURIComponent(`${key}:second-started`)}`)).text();
  return json({ first: await first, second: await second });
}

async function del(env: Env, params: URLSearchParams): Promise<Response> {
  try {
    await cacheFor(env, params).del(params.get('key')!);
    return json({ ok: true });
  } catch (error) {
    return json({ ok: false, error: report(error) });
  }
}

/** `raw=1` skips fromEnv's env check, so the coordinator's own constructor validation is what fails. */
async function ping(env: Env, params: URLSearchParams): Promise<Response> {
  try {
    const coord = params.get('coord');
    const placement = coord === null ? {} : { placement: () => coord };
    const cache = params.has('raw') ? new CacheAside(env.CACHE_ASIDE, placement) : CacheAside.fromEnv(env, placement);
    await cache.ping({ timeoutMs: int(params, 'timeout') ?? 5_000 });
    return json({ ok: true });
  } catch (error) {
    return json({ ok: false, error: report(error) });
  }
}

async function stats(env: Env, params: URLSearchParams): Promise<Response> {
  const name = params.get('coord') ?? cacheFor(env, params).coordinatorFor(params.get('key')!);
  return json({ name, ...(await env.CACHE_ASIDE.getByName(name).getStats()) });
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    try {
      switch (url.pathname) {
        case '/get': return await get(env, url.searchParams, ctx);
        case '/burst': return await burst(env, url.searchParams, ctx);
        case '/many': return await many(env, url.searchParams);
        case '/overlap': return await overlap(env, url.searchParams);
        case '/del': return await del(env, url.searchParams);
        case '/bget': return await bytesGet(env, url.searchParams, ctx);
        case '/bdel': return await bytesDel(env, url.searchParams);
        case '/stats': return await stats(env, url.searchParams);
        case '/ping': return await ping(env, url.searchParams);
        default: return json({ error: `no route ${url.pathname}` }, 404);
      }
    } catch (error) {
      return json({ ok: false, error: report(error) }, 500);
    }
  },
};
