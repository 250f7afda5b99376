// The RPC contract between CacheAside (the caller) and its CacheAsideCoordinator: request and reply shapes, and the
// checks the coordinator runs on them, since an RPC argument is whatever the calling Worker sent. Keys cross as binary
// strings (shared/bytes.ts: one char per byte, an ASCII key unchanged), values as the exact bytes.
import { ValkeyasideError } from '../shared/errors.ts';
import { toWireError } from './errors.ts';
import type { WireError } from './errors.ts';

/**
 * How a get was answered, for metrics:
 * - `hit`: from the coordinator's local copy; `server-hit`: read from Valkey through the bridge;
 * - `miss`: no value and no loader, resolved to null;
 * - `loaded`: this get held the lock, ran its loader and stored the value;
 * - `took-over`: as `loaded`, after releasing a lock whose holder's marker was gone;
 * - `not-cached`: this get ran its loader but the value was not stored (the key changed meanwhile, or the store failed);
 * - `waited`: another client held the lock; this get waited for its push and returned what it stored;
 * - `bypass`: the cache could not serve (`onUnavailable: 'load'`): the loader ran without lock or cache.
 */
export type GetOutcome = 'hit' | 'server-hit' | 'miss' | 'loaded' | 'took-over' | 'not-cached' | 'waited' | 'bypass';

/** RPC: one get. `timeoutMs` is the get's deadline from now; `requestId` lets `cancelGet` reach it. */
export interface GetRequest {
  /** The key as a binary string. */
  readonly key: string;
  readonly ttlMs: number;
  readonly timeoutMs: number;
  readonly requestId: string;
}

/** What the caller's loader wrapper answers. `cancelled`: the caller gave up before the loader returned. */
export type LoaderReply =
  | { readonly ok: true; readonly value: Uint8Array; readonly ttlMs?: number; readonly cancelled: boolean }
  | { readonly ok: false; readonly cancelled: boolean };

/** The caller's loader wrapper, called back over RPC with the key and the lock's ttl. */
export type LoaderCallback = (key: string, ttlMs: number) => Promise<LoaderReply>;

/** RPC reply of `getValue`. `loader-error`: the caller rethrows its loader's own error, which never left it. */
export type GetReply =
  | { readonly kind: 'value'; readonly value: Uint8Array | null; readonly outcome: GetOutcome }
  | { readonly kind: 'loader-error' }
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
}

/** The error reply for a malformed request (code `ERR_BAD_REQUEST`). */
export function badRequest(message: string): { kind: 'error'; error: WireError } {
  return { kind: 'error', error: toWireError(new ValkeyasideError('ERR_BAD_REQUEST', message)) };
}

/** True when `key` is a string and `ms` a positive safe integer: the shape of every request's key and duration. */
export function validRequest(key: unknown, ms: unknown): boolean {
  return typeof key === 'string' && typeof ms === 'number' && Number.isSafeInteger(ms) && ms > 0;
}
