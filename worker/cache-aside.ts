// CacheAside: the caller-side API. It picks the key's coordinator, hands it the loader as an RPC callback (so the
// loader runs here, with this Worker's bindings), keeps the loader's own error object, and enforces the deadline.
import { ConnectionError, TimeoutError, ValkeyasideError } from '../shared/errors.ts';
import { PLACEHOLDER_PREFIX } from '../shared/valkeyaside.ts';
import type { CacheAsideCoordinator } from './coordinator.ts';
import { fromWireError } from './errors.ts';
import { CACHE_ASIDE_DEFAULTS, MAX_TIMER_MS, positiveMs, resolveCacheAsideOptions, resolveCoordinatorSettings } from './options.ts';
import type { CacheAsideOptions, CoordinatorEnv, FromEnvOptions, ResolvedCacheAsideOptions } from './options.ts';
import { coordinatorName } from './placement.ts';
import type { GetOutcome, GetReply, DelReply, LoaderCallback } from './rpc.ts';
import { TypedCacheAside } from './typed-cache-aside.ts';
import type { Codec } from './typed-cache-aside.ts';

/** What a loader gets besides the key. */
export interface LoaderContext {
  readonly key: string;
  /** The get's ttl (ms): the lock's ttl and, unless `setTtl` is called, the stored value's. */
  readonly ttlMs: number;
  /** Aborts when the get's deadline passes or the caller's signal fires; pass it to `fetch`. */
  readonly signal: AbortSignal;
  /** Stores the returned value with this ttl (ms) instead, e.g. a short one for a "not found" marker. */
  setTtl(ttlMs: number): void;
}

/** Loads a value on a miss. It runs in the calling Worker; whatever it throws is what `get` throws. */
export type Loader<T = string> = (key: string, ctx: LoaderContext) => T | Promise<T>;

/** Per-call options of `get` and `del`. */
export interface GetOptions {
  /** Gives up when it aborts, with a TimeoutError (`cause` = the signal's reason). */
  signal?: AbortSignal;
  /** Deadline in ms; a get's deadline is the smaller of this and its ttl. */
  timeoutMs?: number;
}

export type DelOptions = GetOptions;

export interface GetResult<T> {
  readonly value: T | null;
  readonly outcome: GetOutcome;
}

type Stub = DurableObjectStub<CacheAsideCoordinator>;

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new TypeError(`key must be a string; got ${typeof key}`);
  if (key.startsWith(PLACEHOLDER_PREFIX)) {
    throw new TypeError(`key ${JSON.stringify(key)} is reserved: keys starting with "${PLACEHOLDER_PREFIX}" are lock ids and liveness markers`);
  }
}

function checkLoaded(key: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') {
    throw new TypeError(`the loader for ${JSON.stringify(key)} returned ${value === null ? 'null' : typeof value}; it must return a string (use cache.typed() for other values)`);
  }
  if (value.startsWith(PLACEHOLDER_PREFIX)) {
    throw new TypeError(`the loader for ${JSON.stringify(key)} returned a value starting with "${PLACEHOLDER_PREFIX}", which readers would take for a lock`);
  }
}

/** An RPC that failed as a whole (not an error reply): config errors from the coordinator's constructor stay as they are. */
function rpcFailure(error: unknown, name: string): unknown {
  if (error instanceof TypeError || error instanceof RangeError || error instanceof ValkeyasideError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/^(TypeError|RangeError): /.test(message)) return error;
  return new ConnectionError(`coordinator ${JSON.stringify(name)} failed: ${message}`, { cause: error });
}

/** One get's caller-side state, shared by its loader wrapper and its deadline handling. */
interface CallState {
  /** Aborts the loader's `ctx.signal` when the get gives up. */
  readonly abort: AbortController;
  /** Set when the get gave up (deadline or signal), with the error's message and cause. */
  cancelled?: { message: string; cause: unknown };
  /** The loader's value, once it returned. */
  loaded?: { value: string };
  /** What the loader threw: kept here, never sent over RPC, so the caller rethrows the very object. */
  loaderError?: { error: unknown };
}

/**
 * The function the coordinator calls back over RPC when this get holds the lock: it runs the loader here, keeps
 * its error, and answers `{ ok, value, ttlMs?, cancelled }`.
 */
function wrapLoader(loader: Loader, state: CallState): LoaderCallback {
  return async (key, lockTtlMs) => {
    if (state.cancelled !== undefined) return { ok: false, cancelled: true };
    let ttlOverrideMs: number | undefined;
    const ctx: LoaderContext = {
      key,
      ttlMs: lockTtlMs,
      signal: state.abort.signal,
      setTtl(ms: number) { ttlOverrideMs = positiveMs('setTtl(ttlMs)', ms); },
    };
    try {
      const value = await loader(key, ctx);
      checkLoaded(key, value);
      state.loaded = { value };
      const cancelled = state.cancelled !== undefined;
      return ttlOverrideMs === undefined ? { ok: true, value, cancelled } : { ok: true, value, ttlMs: ttlOverrideMs, cancelled };
    } catch (error) {
      state.loaderError = { error };
      return { ok: false, cancelled: state.cancelled !== undefined };
    }
  };
}

function isNamespace(value: unknown): value is DurableObjectNamespace<CacheAsideCoordinator> {
  return typeof value === 'object' && value !== null && typeof (value as { getByName?: unknown }).getByName === 'function';
}

/**
 * Cache-aside backed by Valkey through the bridge, with a local copy per coordinator kept fresh by invalidation
 * pushes and one loader per key across every isolate (Go valkeyaside's algorithm, byte-compatible with it).
 *
 * @example
 * export { CacheAsideCoordinator } from 'valkeyaside-edge/worker';
 * export default {
 *   async fetch(request, env) {
 *     const cache = CacheAside.fromEnv(env);
 *     const user = await cache.get('user:1', 60_000, async (key, ctx) => {
 *       const res = await fetch(`https://origin.example.com/${key}`, { signal: ctx.signal });
 *       return res.text();
 *     });
 *     return new Response(user);
 *   },
 * };
 */
export class CacheAside {
  readonly #namespace: DurableObjectNamespace<CacheAsideCoordinator>;
  readonly #options: ResolvedCacheAsideOptions;

  /** @throws TypeError or RangeError for an invalid option. */
  constructor(namespace: DurableObjectNamespace<CacheAsideCoordinator>, options?: CacheAsideOptions) {
    if (!isNamespace(namespace)) throw new TypeError('CacheAside needs a Durable Object namespace bound to CacheAsideCoordinator');
    this.#namespace = namespace;
    this.#options = resolveCacheAsideOptions(options);
  }

  /**
   * A CacheAside on `env.CACHE_ASIDE` (or `options.binding`). When `env` holds BRIDGE_URL or BRIDGE_TOKEN they are
   * checked here too, so a misconfiguration fails in the caller with the coordinator's own message.
   * @throws TypeError when the binding is missing or an env var is invalid.
   */
  static fromEnv(env: object, options: FromEnvOptions = {}): CacheAside {
    const binding = options.binding ?? CACHE_ASIDE_DEFAULTS.binding;
    const namespace = (env as Record<string, unknown>)[binding];
    if (!isNamespace(namespace)) {
      throw new TypeError(`env.${binding} is not a Durable Object namespace: bind the class in wrangler.toml ` +
        `([[durable_objects.bindings]] name = "${binding}", class_name = "CacheAsideCoordinator") and re-export it from your Worker`);
    }
    if ('BRIDGE_URL' in env || 'BRIDGE_TOKEN' in env) resolveCoordinatorSettings(env as CoordinatorEnv);
    return new CacheAside(namespace, options);
  }

  /** The coordinator (Durable Object name) that serves `key`. */
  coordinatorFor(key: string): string {
    checkKey(key);
    return coordinatorName(key, this.#options.placement, this.#options.namePrefix);
  }

  /**
   * The value of `key`: the local copy, Valkey's, or (on a miss) what `loader` returns, stored with PX `ttlMs`.
   * Without a loader a miss resolves to null. Concurrent gets of one key run one loader between them.
   * @throws whatever the loader threw (the same object); TimeoutError when the deadline (the ttl, or the caller's
   *   tighter `timeoutMs`/`signal`) passes, with `.value` set when the loader had already returned;
   *   ConnectionError/ReplyError when the bridge fails; TypeError/RangeError for invalid arguments.
   */
  async get(key: string, ttlMs: number, loader?: Loader, options?: GetOptions): Promise<string | null> {
    return (await this.getWithOutcome(key, ttlMs, loader, options)).value;
  }

  /** As `get`, and says how the value was obtained (see `GetOutcome`). */
  async getWithOutcome(key: string, ttlMs: number, loader?: Loader, options: GetOptions = {}): Promise<GetResult<string>> {
    checkKey(key);
    positiveMs('ttlMs', ttlMs);
    if (loader !== undefined && typeof loader !== 'function') throw new TypeError(`loader must be a function; got ${typeof loader}`);
    const callerTimeoutMs = options.timeoutMs === undefined ? this.#options.timeoutMs : positiveMs('timeoutMs', options.timeoutMs);
    const timeoutMs = Math.min(ttlMs, callerTimeoutMs ?? ttlMs, MAX_TIMER_MS);
    const what = `get(${JSON.stringify(key)})`;
    const signal = options.signal;
    if (signal?.aborted) throw new TimeoutError(`${what} was aborted before it started`, { cause: signal.reason });

    const name = this.coordinatorFor(key);
    const stub: Stub = this.#namespace.getByName(name);
    // Hits first, through a call with primitive arguments and no loader stub: most gets of a cache end here.
    let hit: string | undefined;
    try {
      hit = await stub.peekValue(key);
    } catch (error) {
      throw rpcFailure(error, name);
    }
    if (typeof hit === 'string') return { value: hit, outcome: 'hit' };

    const requestId = crypto.randomUUID();
    const state: CallState = { abort: new AbortController() };
    const callback = loader && wrapLoader(loader, state);

    return new Promise<GetResult<string>>((resolve, reject) => {
      let settled = false;
      const finish = (settle: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        settle();
      };
      // Give up one macrotask later, so a loader returning right as the deadline passes still hands us its value.
      const giveUp = (message: string, cause?: unknown) => {
        if (state.cancelled !== undefined) return;
        state.cancelled = { message, cause };
        state.abort.abort(new TimeoutError(message, { cause }));
        setTimeout(() => finish(() => {
          stub.cancelGet(requestId).catch(() => {});
          reject(new TimeoutError(message, { cause, value: state.loaded?.value }));
        }), 0);
      };
      const onAbort = () => giveUp(`${what} was aborted by the caller's signal`, signal?.reason);
      const timer = setTimeout(() => giveUp(`${what} timed out after ${timeoutMs} ms`), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });

      (stub.getValue({ key, ttlMs, timeoutMs, requestId }, callback) as Promise<GetReply>).then((reply) => finish(() => {
        if (reply.kind === 'value') {
          resolve({ value: reply.value, outcome: reply.outcome });
        } else if (state.cancelled !== undefined) {
          // We gave up first (deadline or signal): whatever failed after that failed because of it.
          reject(new TimeoutError(state.cancelled.message, { cause: state.cancelled.cause, value: state.loaded?.value }));
        } else if (reply.kind === 'loader-error') {
          reject(state.loaderError !== undefined
            ? state.loaderError.error
            : new ValkeyasideError('ERR_INTERNAL', `${what}: the loader failed but its error was lost`));
        } else {
          const error = fromWireError(reply.error);
          reject(error instanceof TimeoutError ? new TimeoutError(error.message, { value: error.value ?? state.loaded?.value }) : error);
        }
      }), (error: unknown) => finish(() => reject(rpcFailure(error, name))));
    });
  }

  /**
   * Deletes `key` in Valkey. The key's coordinator drops its copy at once (a later get there never sees the old
   * value); every other coordinator drops its copy on the bridge's push.
   * @throws TimeoutError past `timeoutMs` (default 10000) or on abort; ConnectionError/ReplyError from the bridge.
   */
  async del(key: string, options: DelOptions = {}): Promise<void> {
    checkKey(key);
    await this.#call(`del(${JSON.stringify(key)})`, key, options, (stub, timeoutMs) => stub.deleteKey({ key, timeoutMs }));
  }

  /**
   * Checks that the coordinator serving `options.key` (default: the empty key's) reaches the bridge: a PING
   * through its socket, opening it if needed. For health checks.
   * @throws as `del`.
   */
  async ping(options: DelOptions & { key?: string } = {}): Promise<void> {
    const key = options.key ?? '';
    checkKey(key);
    await this.#call('ping', key, options, (stub, timeoutMs) => stub.pingBridge({ timeoutMs }));
  }

  /** One RPC with a deadline (`timeoutMs`, default `delTimeoutMs`) and the caller's signal. */
  async #call(what: string, key: string, options: DelOptions, send: (stub: Stub, timeoutMs: number) => unknown): Promise<void> {
    const timeoutMs = Math.min(options.timeoutMs === undefined ? this.#options.delTimeoutMs : positiveMs('timeoutMs', options.timeoutMs), MAX_TIMER_MS);
    const signal = options.signal;
    if (signal?.aborted) throw new TimeoutError(`${what} was aborted before it started`, { cause: signal.reason });
    const name = this.coordinatorFor(key);
    const stub: Stub = this.#namespace.getByName(name);
    const reply = await new Promise<DelReply>((resolve, reject) => {
      let settled = false;
      const finish = (settle: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        settle();
      };
      const onAbort = () => finish(() => reject(new TimeoutError(`${what} was aborted by the caller's signal`, { cause: signal?.reason })));
      const timer = setTimeout(() => finish(() => reject(new TimeoutError(`${what} timed out after ${timeoutMs} ms`))), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      (send(stub, timeoutMs) as Promise<DelReply>).then(
        (value) => finish(() => resolve(value)),
        (error: unknown) => finish(() => reject(rpcFailure(error, name))));
    });
    if (reply.kind === 'error') throw fromWireError(reply.error);
  }

  /**
   * A view of this cache for values of type T, stored as text by `codec` (JSON by default).
   * @example const users = cache.typed<User>(); const user = await users.get('user:1', 60_000, loadUser);
   */
  typed<T>(codec?: Codec<T>): TypedCacheAside<T> {
    return new TypedCacheAside<T>(this, codec);
  }
}
