// The caller's side of the coordinator RPC, shared by every view (text, bytes, typed): it picks the key's coordinator,
// hands it the loader as an RPC callback (loader-call.ts), coalesces gets (get-flights.ts), enforces the deadline, and
// bypasses an unavailable cache when asked to (bypass-load.ts). Values cross as bytes; each view says how its values
// become bytes and back (a ValueForm).
import { ConnectionError, TimeoutError, ValkeyasideError } from '../shared/errors.ts';
import { PLACEHOLDER_PREFIX } from '../shared/valkeyaside.ts';
import { bypassLoad } from './bypass-load.ts';
import type { CacheAsideCoordinator } from './coordinator.ts';
import { fromWireError } from './errors.ts';
import { Flight, flightMode, flightsFor, joinerResult } from './get-flights.ts';
import type { GetFlights, GetResult } from './get-flights.ts';
import { MAX_TIMER_MS, positiveMs, staleWindowMs, waitUntilContext } from './options.ts';
import type { ResolvedCacheAsideOptions, WaitUntilContext } from './options.ts';
import { wrapLoader } from './loader-call.ts';
import type { CallState, Loader } from './loader-call.ts';
import { coordinatorName } from './placement.ts';
import { isLocationHint } from './region.ts';
import { rpcFailure, timeoutError, untilDeadline } from './rpc-deadline.ts';
import type { DelReply, GetValueReply } from './rpc.ts';

/** Per-call options of `get` and `del`. */
export interface GetOptions {
  /** Gives up when it aborts, with a TimeoutError (`cause` = the signal's reason). */
  signal?: AbortSignal;
  /** Deadline in ms; a get's deadline is the smaller of this and its ttl. */
  timeoutMs?: number;
  /**
   * Stale-while-revalidate (gets only): store with PX ttl+staleMs, and past the ttl serve the value at once (outcome
   * `stale`) while one refresh runs in the background. Default: the cache's `staleMs` (0: off).
   */
  staleMs?: number;
  /**
   * Keeps the background refresh alive after the response (gets only): the Worker's `ExecutionContext`. Default: the
   * cache's `ctx`. With none, the get asked to refresh runs the refresh before it answers (still with the stale
   * value); other gets in the window are answered at once.
   */
  ctx?: WaitUntilContext;
}

export type DelOptions = Pick<GetOptions, 'signal' | 'timeoutMs'>;

export type { GetResult } from './get-flights.ts';

/**
 * How a view's values become the bytes stored in Valkey, and back (both may throw: TypeError, SerializationError),
 * and how it asks a coordinator for a local copy: the hit path, so each view takes the cheapest RPC for its form.
 */
export interface ValueForm<T, K> {
  toBytes(value: unknown, key: K): Uint8Array;
  fromBytes(bytes: Uint8Array, key: K): T;
  /** `staleMs`: only a copy fresh for that stale-while-revalidate window counts (undefined: any live copy). */
  peek(stub: CoordinatorStub, binaryKey: string, staleMs: number | undefined): Promise<T | undefined>;
}

/** One get's key in the forms the client needs: as the caller gave it, as a binary string, and for messages. */
export interface KeyForms<K> {
  readonly key: K;
  readonly binary: string;
  readonly display: string;
}

export type CoordinatorStub = DurableObjectStub<CacheAsideCoordinator>;
type Stub = CoordinatorStub;

/** @throws TypeError for a reserved key (one that names a lock placeholder or a liveness marker). */
export function checkNotReserved(binary: string, display: string): void {
  if (binary.startsWith(PLACEHOLDER_PREFIX)) {
    throw new TypeError(`key ${display} is reserved: keys starting with "${PLACEHOLDER_PREFIX}" are lock ids and liveness markers`);
  }
}

export class CoordinatorClient {
  readonly #namespace: DurableObjectNamespace<CacheAsideCoordinator>;
  readonly options: ResolvedCacheAsideOptions;
  /** Coalesced calls in flight in this isolate, shared by every CacheAside on this namespace. */
  readonly flights: GetFlights;
  /** A region named after a location hint also hints where its coordinators are created. */
  readonly #stubOptions: DurableObjectNamespaceGetDurableObjectOptions | undefined;

  constructor(namespace: DurableObjectNamespace<CacheAsideCoordinator>, options: ResolvedCacheAsideOptions) {
    this.#namespace = namespace;
    this.options = options;
    const region = options.region;
    this.#stubOptions = region !== undefined && isLocationHint(region) ? { locationHint: region } : undefined;
    this.flights = flightsFor(namespace);
  }

  /** The stub of the named coordinator. */
  stub(name: string): Stub {
    return this.#namespace.getByName(name, this.#stubOptions);
  }

  /** The get's deadline from now (ms): its ttl, or the caller's (or the default) tighter timeout. */
  timeoutFor(ttlMs: number, options: GetOptions): number {
    const callerTimeoutMs = options.timeoutMs === undefined ? this.options.timeoutMs : positiveMs('timeoutMs', options.timeoutMs);
    return Math.min(ttlMs, callerTimeoutMs ?? ttlMs, MAX_TIMER_MS);
  }

  /** The coordinator (Durable Object name) that serves the key. */
  nameFor(binary: string): string {
    return coordinatorName(binary, this.options.placement, this.options.namePrefix, this.options.region);
  }

  /**
   * A get in any view (see `CacheAside.getWithOutcome`). Concurrent gets of the key in this isolate, in the same view
   * and all with or all without a loader, share one call (get-flights.ts): the first caller's loader and ttl serve all.
   */
  async get<T, K>(keys: KeyForms<K>, ttlMs: number, loader: Loader<T, K> | undefined, form: ValueForm<T, K>, options: GetOptions = {}): Promise<GetResult<T>> {
    positiveMs('ttlMs', ttlMs);
    if (loader !== undefined && typeof loader !== 'function') throw new TypeError(`loader must be a function; got ${typeof loader}`);
    const callerTimeoutMs = options.timeoutMs === undefined ? this.options.timeoutMs : positiveMs('timeoutMs', options.timeoutMs);
    const timeoutMs = Math.min(ttlMs, callerTimeoutMs ?? ttlMs, MAX_TIMER_MS);
    const what = `get(${keys.display})`;
    const signal = options.signal;
    const staleMs = options.staleMs === undefined ? this.options.staleMs : staleWindowMs('staleMs', options.staleMs);
    const ctx = options.ctx === undefined ? this.options.ctx : waitUntilContext('ctx', options.ctx);
    if (signal?.aborted) throw new TimeoutError(`${what} was aborted before it started`, { cause: signal.reason });
    // A refresh is worth running while the stale window lasts, however short the get's own deadline (its ttl).
    const swr = { staleMs, ctx, refreshMs: Math.min(callerTimeoutMs ?? staleMs, staleMs, MAX_TIMER_MS) };
    const name = this.nameFor(keys.binary);
    if (!this.options.coalesce) return this.#loadOne(keys, name, ttlMs, timeoutMs, loader, form, signal, swr);
    // Gets with different stale windows read differently (a copy fresh for one may be stale for the other).
    const mode = `${flightMode(form, loader !== undefined)}:${staleMs}`;
    const pending = this.flights.find<T>(name, keys.binary, mode);
    if (pending !== undefined) return joinerResult((await pending.join(timeoutMs, signal, what)).get(keys.binary)!);
    const flight = new Flight<T>(async (flightTimeoutMs, flightSignal) =>
      new Map([[keys.binary, await this.#loadOne(keys, name, ttlMs, flightTimeoutMs, loader, form, flightSignal, swr)]]), timeoutMs);
    const slots = [[name, keys.binary]] as const;
    this.flights.open(flight as Flight<unknown>, slots, mode);
    // One microtask: the gets of this key that start in this turn join; then the call takes no more.
    await undefined;
    const shared = this.flights.send(flight, slots, mode, signal, what);
    return shared === undefined ? this.#loadOne(keys, name, ttlMs, timeoutMs, loader, form, signal, swr) : (await shared).get(keys.binary)!;
  }

  /** One get's call to its coordinator, and the bypass when the cache is unavailable and the caller chose it. */
  async #loadOne<T, K>(keys: KeyForms<K>, name: string, ttlMs: number, timeoutMs: number, loader: Loader<T, K> | undefined, form: ValueForm<T, K>,
    signal: AbortSignal | undefined, swr: { staleMs: number; ctx: WaitUntilContext | undefined; refreshMs: number }): Promise<GetResult<T>> {
    const { staleMs, ctx } = swr;
    const state: CallState<T> = { abort: new AbortController() };
    try {
      const result = await this.#get(keys, name, ttlMs, timeoutMs, loader, form, signal, state, staleMs);
      if (result.refresh === undefined) return result;
      if (loader !== undefined) {
        const refreshed = this.#refresh(keys, ttlMs, swr.refreshMs, staleMs, loader, form, result.refresh);
        // Without waitUntil the runtime cuts work off when the response is sent: refresh before answering instead.
        if (ctx === undefined) await refreshed;
        else ctx.waitUntil(refreshed);
      }
      return { value: result.value, outcome: result.outcome };
    } catch (error) {
      if (!(error instanceof ConnectionError) || loader === undefined || this.options.onUnavailable !== 'load') throw error;
      if (state.loaded !== undefined) return { value: state.loaded.value, outcome: 'bypass' };
      return bypassLoad(keys, ttlMs, timeoutMs, loader, form, signal, error, this.options.maxBypassLoads);
    }
  }

  /**
   * A del in any view (see `CacheAside.del`). It detaches the key's coalesced calls when it starts and when it ends,
   * so no get of this isolate joins a call that may have been answered before the del.
   */
  async del(keys: KeyForms<unknown>, options: DelOptions = {}): Promise<void> {
    const name = this.nameFor(keys.binary);
    this.flights.detach(name, keys.binary);
    try {
      await this.call(`del(${keys.display})`, keys.binary, options, (stub, timeoutMs) => stub.deleteKey({ key: keys.binary, timeoutMs }));
    } finally {
      this.flights.detach(name, keys.binary);
    }
  }

  /** One RPC with a deadline (`timeoutMs`, default `delTimeoutMs`) and the caller's signal. */
  async call(what: string, binary: string, options: DelOptions, send: (stub: Stub, timeoutMs: number) => unknown): Promise<void> {
    const timeoutMs = Math.min(options.timeoutMs === undefined ? this.options.delTimeoutMs : positiveMs('timeoutMs', options.timeoutMs), MAX_TIMER_MS);
    const signal = options.signal;
    if (signal?.aborted) throw new TimeoutError(`${what} was aborted before it started`, { cause: signal.reason });
    const name = this.nameFor(binary);
    const stub = this.stub(name);
    const sent = (send(stub, timeoutMs) as Promise<DelReply>).catch((error: unknown) => { throw rpcFailure(error, name); });
    const reply = await untilDeadline(sent, what, timeoutMs, signal, timeoutError);
    if (reply.kind === 'error') throw fromWireError(reply.error);
  }

  /**
   * The background refresh a stale reply asked this caller for (see `StaleWindow.refresh`). It never rejects: a
   * failed refresh leaves the stale value in place.
   */
  #refresh<T, K>(keys: KeyForms<K>, ttlMs: number, timeoutMs: number, staleMs: number, loader: Loader<T, K>, form: ValueForm<T, K>,
    stub: Stub): Promise<void> {
    const state: CallState<T> = { abort: new AbortController() };
    const requestId = crypto.randomUUID();
    const sent = stub.refreshValue({ key: keys.binary, ttlMs, timeoutMs, requestId, staleMs }, wrapLoader(loader, keys.key, form, state)) as Promise<unknown>;
    return untilDeadline(sent, `refresh(${keys.display})`, timeoutMs, undefined, (message, cause) => {
      state.cancelled = { message, cause };
      state.abort.abort(new TimeoutError(message, { cause }));
      return () => {
        stub.cancelGet(requestId).catch(() => {});
        return new TimeoutError(message);
      };
    }).then(() => {}, () => {});
  }

  async #get<T, K>(keys: KeyForms<K>, name: string, ttlMs: number, timeoutMs: number, loader: Loader<T, K> | undefined, form: ValueForm<T, K>,
    signal: AbortSignal | undefined, state: CallState<T>, staleMs: number): Promise<GetResult<T> & { refresh?: Stub }> {
    const what = `get(${keys.display})`;
    const stub = this.stub(name);
    // Hits first, through a call with primitive arguments and no loader stub: most gets of a cache end here.
    let hit: T | undefined;
    try {
      hit = await form.peek(stub, keys.binary, staleMs > 0 ? staleMs : undefined);
    } catch (error) {
      throw rpcFailure(error, name);
    }
    if (hit !== undefined) return { value: hit, outcome: 'hit' };

    const requestId = crypto.randomUUID();
    const callback = loader && wrapLoader(loader, keys.key, form, state);
    const request = staleMs > 0 ? { key: keys.binary, ttlMs, timeoutMs, requestId, staleMs } : { key: keys.binary, ttlMs, timeoutMs, requestId };
    const answered = (stub.getValue(request, callback) as Promise<GetValueReply>).then((answer) => {
      if (answer.kind === 'value' || answer.kind === 'own') return answer;
      // We gave up first (deadline or signal): whatever failed after that failed because of it.
      if (state.cancelled !== undefined) throw new TimeoutError(state.cancelled.message, { cause: state.cancelled.cause, value: state.loaded?.value });
      if (answer.kind === 'loader-error') {
        throw state.loaderError !== undefined
          ? state.loaderError.error
          : new ValkeyasideError('ERR_INTERNAL', `${what}: the loader failed but its error was lost`);
      }
      const error = fromWireError(answer.error);
      throw error instanceof TimeoutError ? new TimeoutError(error.message, { value: state.loaded?.value }) : error;
    }, (error: unknown) => { throw rpcFailure(error, name); });
    const reply = await untilDeadline(answered, what, timeoutMs, signal, (message, cause) => {
      state.cancelled = { message, cause };
      state.abort.abort(new TimeoutError(message, { cause }));
      return () => {
        stub.cancelGet(requestId).catch(() => {});
        return new TimeoutError(message, { cause, value: state.loaded?.value });
      };
    }, true);
    if (reply.kind === 'own') {
      // What our own loader returned is handed back as it was, not re-read from its bytes.
      if (state.loaded === undefined) throw new ValkeyasideError('ERR_INTERNAL', `${what}: the coordinator stored a value this get's loader never returned`);
      return { value: state.loaded.value, outcome: reply.outcome };
    }
    if (reply.value === null) return { value: null, outcome: reply.outcome };
    if (reply.outcome === 'stale') return { value: form.fromBytes(reply.value, keys.key), outcome: 'stale', ...(reply.refresh === true ? { refresh: stub } : {}) };
    return { value: form.fromBytes(reply.value, keys.key), outcome: reply.outcome };
  }
}
