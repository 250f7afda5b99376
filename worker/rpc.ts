// The RPC contract between CacheAside (the caller) and its CacheAsideCoordinator: request and reply shapes, and the
// checks the coordinator runs on them, since an RPC argument is whatever the calling Worker sent. Keys cross as binary
// strings (shared/bytes.ts: one char per byte, an ASCII key unchanged), values as the exact bytes.
import { ValkeyasideError } from '../shared/errors.ts';
import { toWireError } from './errors.ts';
import type { WireError } from './errors.ts';

/**
 * How a get was answered, for metrics:
 * - `hit`: from the coordinator's local copy; `server-hit`: read from Valkey through the bridge;
 * - `miss`: no value and no loader, resolved to null (or, in `getMany`, a key its loader left out: not cached);
 * - `loaded`: this get held the lock, ran its loader and stored the value;
 * - `took-over`: as `loaded`, after releasing a lock whose holder's marker was gone;
 * - `not-cached`: this get ran its loader but the value was not stored (the key changed meanwhile, or the store failed);
 * - `waited`: another client held the lock; this get waited for its push and returned what it stored;
 * - `bypass`: the cache could not serve (`onUnavailable: 'load'`): the loader ran without lock or cache;
 * - `stale`: with `staleMs`, the value is past its ttl but inside its stale window; one refresh runs in the background.
 */
export type GetOutcome = 'hit' | 'server-hit' | 'miss' | 'loaded' | 'took-over' | 'not-cached' | 'waited' | 'bypass' | 'stale';

/** RPC: one get. `timeoutMs` is the get's deadline from now; `requestId` lets `cancelGet` reach it. */
export interface GetRequest {
  /** The key as a binary string. */
  readonly key: string;
  readonly ttlMs: number;
  readonly timeoutMs: number;
  readonly requestId: string;
  /** Stale-while-revalidate window (ms) past the ttl; absent or 0: off. */
  readonly staleMs?: number;
}

/** RPC: one background refresh (see `RefreshReply`); `requestId` lets `cancelGet` reach it. */
export interface RefreshRequest extends GetRequest {
  readonly staleMs: number;
}

/** What the caller's loader wrapper answers. `cancelled`: the caller gave up before the loader returned. */
export type LoaderReply =
  | { readonly ok: true; readonly value: Uint8Array; readonly ttlMs?: number; readonly cancelled: boolean }
  | { readonly ok: false; readonly cancelled: boolean };

/** The caller's loader wrapper, called back over RPC with the key and the lock's ttl. */
export type LoaderCallback = (key: string, ttlMs: number) => Promise<LoaderReply>;

/** One key's answer (getValue, getManyValues). `loader-error`: the caller rethrows its loader's own error, which never left it. */
export type GetReply =
  | { readonly kind: 'value'; readonly value: Uint8Array | null; readonly outcome: GetOutcome; readonly refresh?: boolean }
  | { readonly kind: 'loader-error' }
  | { readonly kind: 'error'; readonly error: WireError };

/** RPC reply of `getValue`: a GetReply, or `own` when this get's loader produced the value, which the caller still holds (not sent back). */
export type GetValueReply = GetReply | { readonly kind: 'own'; readonly outcome: 'loaded' | 'took-over' | 'not-cached' };

/** RPC: one coordinator's share of a getMany (distinct keys, binary strings), under one deadline. */
export interface GetManyRequest {
  readonly keys: readonly string[];
  readonly ttlMs: number;
  readonly timeoutMs: number;
  readonly requestId: string;
}

/**
 * What the caller's loadMany wrapper answers for the keys it was called with: `values[i]` is the bytes for
 * `keys[i]`, or null when the loader left that key out (then it is not cached and comes back null).
 */
export type LoadManyReply =
  | { readonly ok: true; readonly values: ReadonlyArray<Uint8Array | null>; readonly ttlMs?: number; readonly cancelled: boolean }
  | { readonly ok: false; readonly cancelled: boolean };

/**
 * The caller's loadMany wrapper, called back over RPC with the keys this coordinator locked. The first call of a
 * getMany (possibly with no keys) tells the caller this coordinator has locked all it could lock at once; the caller
 * calls its loader once for every coordinator's first call. Later calls carry keys locked after a wait.
 */
export type LoadManyCallback = (keys: string[], ttlMs: number) => Promise<LoadManyReply>;

/** RPC reply of `getManyValues`: one GetReply per requested key, in order. */
export type GetManyReply =
  | { readonly kind: 'values'; readonly replies: readonly GetReply[] }
  | { readonly kind: 'error'; readonly error: WireError };

/**
 * RPC reply of `refreshValue` (the background refresh a `stale` reply with `refresh` asks its caller to run):
 * `refreshed` stored a new value; `skipped`: another refresh holds the lock, or the key is no longer stale;
 * `not-cached`: the key changed while loading (a del or write won); `loader-error`: the stale value stays.
 */
export type RefreshReply =
  | { readonly kind: 'refreshed' | 'skipped' | 'not-cached' | 'loader-error' }
  | { readonly kind: 'error'; readonly error: WireError };

export interface DelRequest {
  /** The key as a binary string. */
  readonly key: string;
  readonly timeoutMs: number;
}

export type DelReply = { readonly kind: 'ok' } | { readonly kind: 'error'; readonly error: WireError };

/** A coordinator's state, for tests and metrics. */
export interface CoordinatorStats {
  readonly connected: boolean;
  /** The bridge (one of BRIDGE_URL's, `http(s)://…/resp`) the socket is open to, or the next attempt goes to. */
  readonly bridge: string;
  /** The current client id (`valkeyid:…`), also the name of its liveness marker; null until a first lock. */
  readonly clientId: string | null;
  readonly entries: number;
  readonly bytes: number;
  readonly activeGets: number;
  /** Gets parked until a push wakes them (another client holds the lock). */
  readonly waitingGets: number;
  readonly watchedKeys: number;
  readonly commandsInFlight: number;
  /** RPCs served since the coordinator started: hit-path peeks, gets and getManys (one per coordinator per call). */
  readonly peekCalls: number;
  readonly getCalls: number;
  readonly getManyCalls: number;
}

/** The error reply for a malformed request (code `ERR_BAD_REQUEST`). */
export function badRequest(message: string): { kind: 'error'; error: WireError } {
  return { kind: 'error', error: toWireError(new ValkeyasideError('ERR_BAD_REQUEST', message)) };
}

/** True when `staleMs` is absent or a non-negative safe integer. */
export function validStaleMs(staleMs: unknown): boolean {
  return staleMs === undefined || (typeof staleMs === 'number' && Number.isSafeInteger(staleMs) && staleMs >= 0);
}

/** True when `key` is a string and `ms` a positive safe integer: the shape of every request's key and duration. */
export function validRequest(key: unknown, ms: unknown): boolean {
  return typeof key === 'string' && typeof ms === 'number' && Number.isSafeInteger(ms) && ms > 0;
}
