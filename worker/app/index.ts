// The example app: a read-through cache in front of any HTTP origin, with coherent invalidation. GET /v/:key loads
// from ORIGIN_URL on a miss (one load per key however many ask), DELETE /v/:key deletes, /healthz checks the bridge.
// Values are stored as the origin's bytes (stored-page.ts), so any value another client writes is served as is.
import { Hono } from 'hono';
import { BytesCacheAside, CacheAside, ConnectionError, PLACEHOLDER_PREFIX, TimeoutError, ValkeyasideError } from '../index.ts';
import type { GetOutcome, LoaderContext } from '../index.ts';
import { AppConfigError, keyFromPath, MAX_KEY_BYTES, parseTtlMs, readAppConfig } from './config.ts';
import type { AppConfig, AppEnv } from './config.ts';
import { decodePage, encodePage } from './stored-page.ts';

export { CacheAsideCoordinator } from '../index.ts';

/** The longest a request waits for a value (the get's deadline is the smaller of this and its ttl). */
const REQUEST_DEADLINE_MS = 10_000;

/** The origin answered something other than 200/404, or could not be reached. Answered 502, never cached. */
class OriginError extends Error {
  override name = 'OriginError';
}

/** `x-cache` values besides the get outcomes: `del` for a DELETE, `error` when no value could be had. */
type CacheHeader = GetOutcome | 'del' | 'error' | 'none';

function loadFromOrigin(config: AppConfig) {
  return async (key: string, ctx: LoaderContext): Promise<Uint8Array> => {
    let res: Response;
    try {
      res = await fetch(`${config.originUrl}/${encodeURIComponent(key)}`, { signal: ctx.signal });
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      throw new OriginError(`origin unreachable: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (res.status === 200) return encodePage(200, res.headers.get('content-type'), new Uint8Array(await res.arrayBuffer()));
    await res.body?.cancel();
    if (res.status === 404) {
      ctx.setTtl(config.negativeTtlMs);
      return encodePage(404, null, new Uint8Array(0));
    }
    throw new OriginError(`origin answered ${res.status}`);
  };
}

function reply(status: number, body: string | Uint8Array | null, xCache: CacheHeader, contentType = 'text/plain; charset=utf-8'): Response {
  return new Response(body, { status, headers: { 'x-cache': xCache, 'content-type': contentType } });
}

function errorReply(err: unknown): Response {
  if (err instanceof AppConfigError) return reply(500, `configuration error: ${err.message}\n`, 'error');
  if (err instanceof OriginError) return reply(502, `${err.message}\n`, 'error');
  if (err instanceof TimeoutError) return reply(502, 'origin slower than the deadline\n', 'error');
  if (err instanceof ConnectionError) return reply(503, `cache unavailable: ${err.message}\n`, 'error');
  if (err instanceof ValkeyasideError) return reply(503, `cache error (${err.code}): ${err.message}\n`, 'error');
  if (err instanceof TypeError && /^(BRIDGE_|VALKEYASIDE_|env\.)/.test(err.message)) {
    return reply(500, `configuration error: ${err.message}\n`, 'error');
  }
  throw err;
}

/** What a request needs, built once per env object (in practice once per isolate) rather than on every request. */
interface AppState {
  readonly config: AppConfig;
  readonly cache: CacheAside;
  readonly pages: BytesCacheAside;
  readonly load: ReturnType<typeof loadFromOrigin>;
}
const states = new WeakMap<AppEnv, AppState>();

/** @throws AppConfigError or the library's TypeError naming the variable; nothing is kept until it succeeds. */
function stateOf(env: AppEnv): AppState {
  let state = states.get(env);
  if (state === undefined) {
    const config = readAppConfig(env);
    const cache = CacheAside.fromEnv(env);
    state = { config, cache, pages: cache.bytes(), load: loadFromOrigin(config) };
    states.set(env, state);
  }
  return state;
}

export const app = new Hono<{ Bindings: AppEnv }>();

/** The key of a `/v/` request, or the 400 to answer: every bad key gets one, with `x-cache`. */
function requestKey(url: string): string | Response {
  const key = keyFromPath(new URL(url).pathname);
  if (key === null) return reply(400, `key must be a non-empty UTF-8 string of at most ${MAX_KEY_BYTES} bytes\n`, 'none');
  if (key.startsWith(PLACEHOLDER_PREFIX)) return reply(400, `keys starting with "${PLACEHOLDER_PREFIX}" are reserved for locks and liveness markers\n`, 'none');
  return key;
}

app.get('/v/*', async (c) => {
  const key = requestKey(c.req.url);
  if (key instanceof Response) return key;
  try {
    const { config, pages, load } = stateOf(c.env);
    const ttlParam = c.req.query('ttl');
    const ttlMs = ttlParam === undefined ? config.cacheTtlMs : parseTtlMs(ttlParam);
    if (ttlMs === null) return reply(400, '?ttl= must be a whole number of milliseconds between 1 and 86400000\n', 'none');
    const { value, outcome } = await pages.getWithOutcome(key, ttlMs, load, {
      timeoutMs: Math.min(ttlMs, REQUEST_DEADLINE_MS),
    });
    if (value === null) return reply(502, 'no value\n', outcome);
    const page = decodePage(value);
    return page.status === 200 ? reply(200, page.body, outcome, page.contentType) : reply(404, 'not found\n', outcome);
  } catch (err) {
    return errorReply(err);
  }
});

app.delete('/v/*', async (c) => {
  const key = requestKey(c.req.url);
  if (key instanceof Response) return key;
  try {
    await stateOf(c.env).cache.del(key, { timeoutMs: REQUEST_DEADLINE_MS });
    return reply(204, null, 'del');
  } catch (err) {
    return errorReply(err);
  }
});

app.get('/healthz', async (c) => {
  try {
    await stateOf(c.env).cache.ping({ timeoutMs: 2_000 });
    return c.json({ ok: true });
  } catch (err) {
    return c.json({ ok: false, error: err instanceof Error ? err.message : String(err) }, 503);
  }
});

export default app;
