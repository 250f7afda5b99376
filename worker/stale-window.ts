// Stale-while-revalidate for one coordinator. A value stored with PX ttl+staleMs is fresh while more than staleMs of
// its PTTL is left and stale for the rest; a stale get is answered at once while one refresh per key runs under a
// refresh lock (a sibling key), storing by compare-and-set against the stale bytes, so a del or a write always wins.
import { TimeoutError, ValkeyasideError } from '../shared/errors.ts';
import { isPlaceholder } from '../shared/valkeyaside.ts';
import { freshness } from './freshness.ts';
import { storeLoaded } from './tracked-store.ts';
import type { BridgeSocket } from './bridge-socket.ts';
import type { Locks } from './locks.ts';
import type { CoordinatorSettings } from './coordinator-settings.ts';
import type { GetReply, LoaderCallback, LoaderReply, RefreshReply } from './rpc.ts';
import type { TrackedReads } from './tracked-reads.ts';
import type { Deadline } from './waiters.ts';

/**
 * The key whose `SET NX GET PX` lock a refresh holds: the data key keeps its stale value meanwhile (nobody's copy
 * is invalidated by the lock), and the suffix keeps it under the same token prefix. Go clients never touch it.
 */
export const REFRESH_LOCK_SUFFIX = '\u0000valkeyaside:refresh';

export interface StaleWindowParts {
  readonly bridge: BridgeSocket;
  readonly reads: TrackedReads;
  readonly locks: Locks;
  readonly config: Pick<CoordinatorSettings, 'localTtlCapMs'>;
}

export class StaleWindow {
  readonly #bridge: BridgeSocket;
  readonly #reads: TrackedReads;
  readonly #locks: Locks;
  readonly #config: StaleWindowParts['config'];
  /** Keys whose refresh a caller of this coordinator was asked to run, until when the claim holds (epoch ms). */
  readonly #claims = new Map<string, number>();

  constructor(parts: StaleWindowParts) {
    this.#bridge = parts.bridge;
    this.#reads = parts.reads;
    this.#locks = parts.locks;
    this.#config = parts.config;
  }

  /**
   * A stale-while-revalidate get's answer when the key holds a value (fresh, or stale with `refresh` set for the
   * one caller that should start the refresh, if it has a loader); `undefined` sends the get down Go's path.
   */
  async serve(key: string, ttlMs: number, staleMs: number, canRefresh: boolean, deadline: Deadline): Promise<GetReply | undefined> {
    const capMs = Math.min(ttlMs, this.#config.localTtlCapMs);
    let read = await deadline.race(this.#reads.read(key, capMs, deadline.at, false, staleMs));
    let judged = freshness(read, staleMs, Date.now());
    // A stale answer (or one a capped copy cannot judge) comes only from a read this get sends: then a del or write
    // acknowledged before the get started, through any coordinator or outside the bridge, has ended the window.
    if ((judged === 'stale' || judged === 'unknown') && read.value !== null) {
      read = await deadline.race(this.#reads.read(key, capMs, deadline.at, true, staleMs));
      judged = freshness(read, staleMs, Date.now());
    }
    const { value } = read;
    if (value === null || isPlaceholder(value)) return undefined;
    if (judged === 'fresh') return { kind: 'value', value, outcome: read.local ? 'hit' : 'server-hit' };
    if (judged !== 'stale') return undefined;
    return { kind: 'value', value, outcome: 'stale', refresh: canRefresh && this.#claim(key, staleMs) };
  }

  /**
   * The background refresh a stale get's caller runs (through its `waitUntil`): one per key across every coordinator
   * and isolate (the refresh lock, held for at most `lockMs`, the refresh's deadline), loading only if the value is
   * still the stale one, and storing only if it still is.
   */
  async refresh(key: string, ttlMs: number, staleMs: number, lockMs: number, loader: LoaderCallback, deadline: Deadline): Promise<RefreshReply> {
    const lockKey = key + REFRESH_LOCK_SUFFIX;
    try {
      const lock = await this.#locks.acquire(lockKey, lockMs, deadline);
      if (!lock.mine) return { kind: 'skipped' };
      try {
        return await this.#refreshHolding(key, ttlMs, staleMs, loader, deadline);
      } finally {
        this.#locks.release(lockKey, lock.id);
      }
    } finally {
      this.#claims.delete(key);
    }
  }

  /** Drops every claim (a flush, a disconnect): a refresh in flight then ends with its compare-and-set. */
  clear(): void {
    this.#claims.clear();
  }

  /** True for the first stale get of a key here until its refresh ends (or the window would, if none ever arrives). */
  #claim(key: string, forMs: number): boolean {
    const now = Date.now();
    if ((this.#claims.get(key) ?? 0) > now) return false;
    this.#claims.set(key, now + forMs);
    return true;
  }

  async #refreshHolding(key: string, ttlMs: number, staleMs: number, loader: LoaderCallback, deadline: Deadline): Promise<RefreshReply> {
    const capMs = Math.min(ttlMs, this.#config.localTtlCapMs);
    // Read under the lock: a refresh that stored before we locked is seen here, and we do not load again.
    const read = await deadline.race(this.#reads.read(key, capMs, deadline.at, true, staleMs));
    const stale = read.value;
    if (stale === null || isPlaceholder(stale) || freshness(read, staleMs, Date.now()) !== 'stale') return { kind: 'skipped' };
    let reply: LoaderReply;
    try {
      reply = await deadline.race(Promise.resolve(loader(key, ttlMs)));
    } catch (error) {
      if (error instanceof TimeoutError) throw error;
      return { kind: 'loader-error' };
    }
    if (reply === null || typeof reply !== 'object' || reply.ok !== true) return { kind: 'loader-error' };
    const storeTtlMs = reply.ttlMs ?? ttlMs;
    if (!(reply.value instanceof Uint8Array) || !Number.isSafeInteger(storeTtlMs + staleMs) || storeTtlMs <= 0) {
      throw new ValkeyasideError('ERR_BAD_REQUEST', 'the loader wrapper answered without a byte value or with an invalid ttl');
    }
    // The caller gave up (its deadline or its isolate): nobody will see this refresh end, and it stores nothing.
    if (reply.cancelled) return { kind: 'not-cached' };
    deadline.check();
    // Compare-and-set on the stale bytes (Go's setkey with them in the placeholder's place): a del or write since
    // our read changed the key, so the value loaded before it is never stored after it. As a lock holder's store:
    // one TRACKED.SETKEY that also refills the local copy (v2), or the script and a read-back (v1).
    const stored = await storeLoaded(this.#bridge, this.#reads, { key, id: stale, value: reply.value, storeTtlMs, capMs, staleMs }, deadline);
    return stored ? { kind: 'refreshed' } : { kind: 'not-cached' };
  }
}
