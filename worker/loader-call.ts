// A get's loader as the RPC callback the coordinator calls when the get holds the lock: the loader runs here, in the
// calling Worker (with its bindings); its value crosses as bytes, its error object stays here for the caller to rethrow.
import { positiveMs } from './options.ts';
import type { ValueForm } from './coordinator-client.ts';
import type { LoaderCallback } from './rpc.ts';

/** What a loader gets besides the key. */
export interface LoaderContext<K = string> {
  /** The key, as the caller passed it. */
  readonly key: K;
  /** The get's ttl (ms): the lock's ttl and, unless `setTtl` is called, the stored value's. */
  readonly ttlMs: number;
  /** Aborts when the get's deadline passes or the caller's signal fires; pass it to `fetch`. */
  readonly signal: AbortSignal;
  /** Stores the returned value with this ttl (ms) instead, e.g. a short one for a "not found" marker. */
  setTtl(ttlMs: number): void;
}

/** Loads a value on a miss. It runs in the calling Worker; whatever it throws is what `get` throws. */
export type Loader<T = string, K = string> = (key: K, ctx: LoaderContext<K>) => T | Promise<T>;

/** One get's caller-side state, shared by its loader wrapper and its deadline handling. */
export interface CallState<T> {
  /** Aborts the loader's `ctx.signal` when the get gives up. */
  readonly abort: AbortController;
  /** Set when the get gave up (deadline or signal), with the error's message and cause. */
  cancelled?: { message: string; cause: unknown };
  /** The loader's value, once it returned. */
  loaded?: { value: T };
  /** What the loader threw: kept here, never sent over RPC, so the caller rethrows the very object. */
  loaderError?: { error: unknown };
}

export function loaderContext<K>(key: K, ttlMs: number, signal: AbortSignal, onTtl: (ms: number) => void): LoaderContext<K> {
  return { key, ttlMs, signal, setTtl(ms: number) { onTtl(positiveMs('setTtl(ttlMs)', ms)); } };
}

/**
 * The function the coordinator calls back over RPC when this get holds the lock: it runs the loader here, keeps
 * its error, and answers `{ ok, value (bytes), ttlMs?, cancelled }`.
 */
export function wrapLoader<T, K>(loader: Loader<T, K>, key: K, form: ValueForm<T, K>, state: CallState<T>): LoaderCallback {
  return async (_binaryKey, lockTtlMs) => {
    if (state.cancelled !== undefined) return { ok: false, cancelled: true };
    let ttlOverrideMs: number | undefined;
    try {
      const value = await loader(key, loaderContext(key, lockTtlMs, state.abort.signal, (ms) => { ttlOverrideMs = ms; }));
      const bytes = form.toBytes(value, key);
      state.loaded = { value };
      const cancelled = state.cancelled !== undefined;
      return ttlOverrideMs === undefined ? { ok: true, value: bytes, cancelled } : { ok: true, value: bytes, ttlMs: ttlOverrideMs, cancelled };
    } catch (error) {
      state.loaderError = { error };
      return { ok: false, cancelled: state.cancelled !== undefined };
    }
  };
}
