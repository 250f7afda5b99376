// The caller-side CacheAside options, their defaults and their validation (the coordinator's own settings, from env
// vars, are coordinator-settings.ts).

/** Longest delay a timer takes (setTimeout's 32-bit limit); longer deadlines are clamped to it. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Which coordinator (Durable Object name) serves a key.
 * - `{ shards: n }`: n coordinators, chosen by a hash of the key (default `{ shards: 16 }`);
 * - `'per-key'`: one coordinator per key;
 * - a function returning the name for a key. It receives the key as a binary string (one char per byte: an ASCII
 *   key is itself; other text keys are their UTF-8 bytes), so the text and bytes views of one key agree.
 */
export type Placement = { readonly shards: number } | 'per-key' | ((key: string) => string);

/**
 * What keeps a stale-while-revalidate refresh alive after the response: a Worker's `ExecutionContext` (the `ctx` of
 * `fetch(request, env, ctx)`), or any object with a `waitUntil` method.
 */
export interface WaitUntilContext {
  waitUntil(promise: Promise<unknown>): void;
}

/** Options of {@link CacheAside}. */
export interface CacheAsideOptions {
  /** Coordinator placement. Default `{ shards: 16 }`. */
  placement?: Placement;
  /** Prefix of coordinator names, so two caches on one binding stay apart. Default `"valkeyaside"`. */
  namePrefix?: string;
  /**
   * Keeps this cache's coordinators apart per region: the region is folded into every coordinator name, so each
   * region has its own coordinators of a key (and its own local copies, kept coherent by Valkey's pushes). A Durable
   * Object location hint (`'weur'`, `'apac'`, … see `nearestRegion(request)`) is also passed as `locationHint`;
   * any other name (1–64 of `A-Z a-z 0-9 _ -`, e.g. `request.cf.colo`) only separates. Default: none (one set of
   * coordinators for the whole world). docs/bridge.md, "Regional coordinators".
   */
  region?: string | undefined;
  /** Deadline of a get when the caller gives none (ms). Default: the get's ttl. */
  timeoutMs?: number;
  /** Deadline of a del when the caller gives none (ms). Default 10000. */
  delTimeoutMs?: number;
  /**
   * What a get does when the cache cannot serve (no bridge, a bridge without Valkey: an `UnavailableError`).
   * `'throw'` (default) throws it; `'load'` runs the loader without lock or cache and answers with outcome `bypass`,
   * at most `maxBypassLoads` at a time in this isolate (more throw the UnavailableError).
   */
  onUnavailable?: 'throw' | 'load';
  /** Loads one isolate runs at once while bypassing an unavailable cache. Default 8. */
  maxBypassLoads?: number;
  /**
   * Stale-while-revalidate window (ms) of every get that gives none: values are stored with PX ttl+staleMs and,
   * once past their ttl, served at once (outcome `stale`) while one refresh runs in the background. Default 0 (off).
   */
  staleMs?: number;
  /** Keeps background refreshes alive (`ctx.waitUntil`) when a get gives no `ctx` of its own. Default: none. */
  ctx?: WaitUntilContext;
  /**
   * Concurrent gets (and getMany keys) of one key in one request share one coordinator call and the first caller's
   * loader (README, "Coalescing"). Default true; false sends every get on its own.
   */
  coalesce?: boolean;
}

/** Options of {@link CacheAside.fromEnv}: the binding's name, plus the {@link CacheAsideOptions}. */
export interface FromEnvOptions extends CacheAsideOptions {
  /** Name of the Durable Object binding. Default `"CACHE_ASIDE"`. */
  binding?: string;
}

export interface ResolvedCacheAsideOptions {
  readonly placement: Placement;
  readonly namePrefix: string;
  readonly region: string | undefined;
  readonly timeoutMs: number | undefined;
  readonly delTimeoutMs: number;
  readonly onUnavailable: 'throw' | 'load';
  readonly maxBypassLoads: number;
  readonly staleMs: number;
  readonly ctx: WaitUntilContext | undefined;
  readonly coalesce: boolean;
}

export const CACHE_ASIDE_DEFAULTS = Object.freeze({
  placement: Object.freeze({ shards: 16 }) as Placement,
  namePrefix: 'valkeyaside',
  region: undefined as string | undefined,
  timeoutMs: undefined as number | undefined,
  delTimeoutMs: 10_000,
  onUnavailable: 'throw' as 'throw' | 'load',
  maxBypassLoads: 8,
  staleMs: 0,
  ctx: undefined as WaitUntilContext | undefined,
  coalesce: true,
  binding: 'CACHE_ASIDE',
});

/** @throws TypeError or RangeError naming the option and the value received. */
export function positiveMs(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer (milliseconds); got ${String(value)}`);
  }
  return value;
}

/** @throws RangeError naming the option when `value` is not a non-negative integer (ms). */
export function staleWindowMs(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be an integer >= 0 (milliseconds; 0 turns stale-while-revalidate off); got ${String(value)}`);
  }
  return value;
}

/** @throws TypeError naming the option when `value` has no `waitUntil` method. */
export function waitUntilContext(name: string, value: unknown): WaitUntilContext | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || typeof (value as { waitUntil?: unknown }).waitUntil !== 'function') {
    throw new TypeError(`${name} must be an object with a waitUntil method, such as the Worker's ExecutionContext; got ${value === null ? 'null' : typeof value}`);
  }
  return value as WaitUntilContext;
}

/** @throws TypeError or RangeError naming the option and the value received. */
export function resolveCacheAsideOptions(options: CacheAsideOptions = {}): ResolvedCacheAsideOptions {
  const placement = options.placement ?? CACHE_ASIDE_DEFAULTS.placement;
  if (typeof placement === 'object' && placement !== null) {
    const count = (placement as { shards?: unknown }).shards;
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 1_000_000) {
      throw new RangeError(`placement.shards must be an integer from 1 to 1000000; got ${String(count)}`);
    }
  } else if (placement !== 'per-key' && typeof placement !== 'function') {
    throw new TypeError(`placement must be { shards: n }, 'per-key' or a function (key) => name; got ${String(placement)}`);
  }
  const onUnavailable = options.onUnavailable ?? CACHE_ASIDE_DEFAULTS.onUnavailable;
  if (onUnavailable !== 'throw' && onUnavailable !== 'load') {
    throw new TypeError(`onUnavailable must be 'throw' or 'load'; got ${JSON.stringify(onUnavailable)}`);
  }
  const maxBypassLoads = options.maxBypassLoads ?? CACHE_ASIDE_DEFAULTS.maxBypassLoads;
  if (typeof maxBypassLoads !== 'number' || !Number.isSafeInteger(maxBypassLoads) || maxBypassLoads < 1) {
    throw new RangeError(`maxBypassLoads must be a positive integer; got ${String(maxBypassLoads)}`);
  }
  const namePrefix = options.namePrefix ?? CACHE_ASIDE_DEFAULTS.namePrefix;
  if (typeof namePrefix !== 'string') throw new TypeError(`namePrefix must be a string; got ${typeof namePrefix}`);
  const coalesce = options.coalesce ?? CACHE_ASIDE_DEFAULTS.coalesce;
  if (typeof coalesce !== 'boolean') throw new TypeError(`coalesce must be true or false; got ${String(coalesce)}`);
  const region = options.region ?? CACHE_ASIDE_DEFAULTS.region;
  if (region !== undefined && (typeof region !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(region))) {
    throw new TypeError(`region must be 1 to 64 letters, digits, '_' or '-' (e.g. 'weur' or request.cf.colo); got ${JSON.stringify(region)}`);
  }
  return Object.freeze({
    placement,
    namePrefix,
    region,
    timeoutMs: options.timeoutMs === undefined ? undefined : positiveMs('timeoutMs', options.timeoutMs),
    delTimeoutMs: positiveMs('delTimeoutMs', options.delTimeoutMs ?? CACHE_ASIDE_DEFAULTS.delTimeoutMs),
    onUnavailable,
    maxBypassLoads,
    staleMs: staleWindowMs('staleMs', options.staleMs ?? CACHE_ASIDE_DEFAULTS.staleMs),
    ctx: waitUntilContext('ctx', options.ctx),
    coalesce,
  });
}
