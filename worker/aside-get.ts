// Go valkeyaside's Get algorithm (aside.go) for one coordinator: read the tracked copy; on a miss take the lock and
// run the caller's loader, then compare-and-set; on a placeholder wait for a push (or take over an abandoned lock).
// The coordinator owns the RPC surface and the lifecycle; this owns what one get does between them.
import { binaryBytes, binaryString, wireKey } from '../shared/bytes.ts';
import { ConnectionError, TimeoutError, ValkeyasideError } from '../shared/errors.ts';
import { RespSimple } from '../shared/resp/index.ts';
import type { RespValue } from '../shared/resp/index.ts';
import { SCRIPT_SHA, isPlaceholder } from '../shared/valkeyaside.ts';
import { isDropped } from './bridge-errors.ts';
import { errorMessage } from './errors.ts';
import type { BridgeSocket } from './bridge-socket.ts';
import type { ClientId } from './client-id.ts';
import type { Locks } from './locks.ts';
import type { CoordinatorSettings } from './coordinator-settings.ts';
import type { GetOutcome, GetReply, LoaderCallback, LoaderReply } from './rpc.ts';
import type { ReadResult, TrackedReads } from './tracked-reads.ts';
import { storeLoaded } from './tracked-store.ts';
import type { Deadline, Waiters, Watch } from './waiters.ts';

/** True for `OK` as a status or a bulk string (the setkey script's answer when it stored). */
export function isOk(reply: RespValue): boolean {
  return (reply instanceof RespSimple && reply.value === 'OK') || (reply instanceof Uint8Array && reply.length === 2 && reply[0] === 0x4f && reply[1] === 0x4b);
}

/** What a get works with: the coordinator's parts, shared by all of its gets. */
export interface AsideGetParts {
  readonly bridge: BridgeSocket;
  readonly reads: TrackedReads;
  readonly locks: Locks;
  readonly waiters: Waiters;
  readonly clientId: ClientId;
  readonly config: Pick<CoordinatorSettings, 'localTtlCapMs' | 'clientTtlMs' | 'untrackedRetryMs'>;
}

/** Runs gets for one coordinator; keeps what they share (keys loading here, how many are waiting). */
export class AsideGet {
  readonly #bridge: BridgeSocket;
  readonly #reads: TrackedReads;
  readonly #locks: Locks;
  readonly #waiters: Waiters;
  readonly #clientId: ClientId;
  readonly #config: AsideGetParts['config'];
  /** Keys whose loader runs in this coordinator now, with the lock id it holds. */
  readonly #loading = new Map<string, string>();
  #waitingGets = 0;

  constructor(parts: AsideGetParts) {
    this.#bridge = parts.bridge;
    this.#reads = parts.reads;
    this.#locks = parts.locks;
    this.#waiters = parts.waiters;
    this.#clientId = parts.clientId;
    this.#config = parts.config;
  }

  /** Gets parked on a placeholder now. */
  get waiting(): number {
    return this.#waitingGets;
  }

  /**
   * Go's Get: read; on a miss take the lock and load; on a placeholder wait for a push (or take over); retry. With
   * `staleMs` the value is stored with PX ttl+staleMs (stale-while-revalidate, stale-window.ts). `onWait` runs each
   * time the get parks on another holder's lock (getMany's batching needs to know).
   */
  async run(key: string, ttlMs: number, loader: LoaderCallback | undefined, deadline: Deadline, staleMs = 0, onWait?: () => void): Promise<GetReply> {
    const capMs = Math.min(ttlMs, this.#config.localTtlCapMs);
    let waited = false;
    let tookOver = false;
    for (;;) {
      deadline.check();
      // Watch before reading: a push that lands between the read and the wait must still wake us.
      const watch = this.#waiters.watch(key);
      let markerWatch: Watch | undefined;
      try {
        // No local copy and a loader: send the lock right behind the read, in the same message. `SET NX GET` of a key
        // that holds something sets nothing and answers what it holds, so a cold get takes its lock in the read's trip.
        const ownLoad = this.#loading.get(key);
        const speculate = loader !== undefined && this.#reads.peek(key) === undefined && (ownLoad === undefined || ownLoad !== this.#clientId.current);
        const reading = this.#reads.read(key, capMs, deadline.at, false, staleMs);
        const early = speculate ? this.#locks.acquire(key, ttlMs, deadline) : undefined;
        early?.catch(() => {});
        let read: ReadResult;
        try {
          read = await deadline.race(reading);
        } catch (error) {
          early?.then((lock) => { if (lock.mine) this.#locks.release(key, lock.id); }, () => {});
          throw error;
        }
        let { value, local, watched } = read;
        if (early !== undefined && loader !== undefined) {
          const lock = await early;
          if (lock.mine) return await this.#loadHolding(key, ttlMs, lock.id, loader, deadline, tookOver, staleMs);
          if (value === null) {
            // A holder that wrote after our tracked read of the miss is pushed to us like any other change.
            value = lock.holder;
            local = false;
          }
        } else if (value === null && loader !== undefined) {
          // Our own load of the key is still running (a del emptied the key meanwhile): wait for it rather than lock
          // again. Every lock here uses one client id, so a second lock would let the first load's compare-and-set
          // match it and store a value computed before the del. A load under a replaced id cannot store: ignore it.
          const ownLoad = this.#loading.get(key);
          if (ownLoad !== undefined && ownLoad === this.#clientId.current) {
            value = binaryBytes(ownLoad);
            watched = true;
          } else {
            const lock = await this.#locks.acquire(key, ttlMs, deadline);
            if (lock.mine) return await this.#loadHolding(key, ttlMs, lock.id, loader, deadline, tookOver, staleMs);
            // A holder that wrote after our tracked read of the miss is pushed to us like any other change.
            value = lock.holder;
          }
          local = false;
        }
        if (value === null || !isPlaceholder(value)) {
          const outcome: GetOutcome = value === null ? 'miss' : waited ? 'waited' : local ? 'hit' : 'server-hit';
          return { kind: 'value', value, outcome };
        }
        // The marker is the key named by the placeholder's exact bytes, and the lock is released by those bytes.
        const markerKey = binaryString(value);
        markerWatch = this.#waiters.watch(markerKey);
        const marker = await deadline.race(this.#reads.read(markerKey, this.#config.clientTtlMs, deadline.at));
        if (marker.value === null) {
          // The holder is gone (marker expired or deleted): release its lock and start over.
          await deadline.race(this.#bridge.command(['EVALSHA', SCRIPT_SHA.delkey, 1, wireKey(key), value], deadline.at));
          tookOver = true;
          continue;
        }
        waited = true;
        onWait?.();
        this.#waitingGets++;
        try {
          const woken = Promise.race([watch.fired, markerWatch.fired]);
          // No push follows a read the bridge could not track (its tracking was down): read again soon instead.
          await deadline.race(watched && marker.watched ? woken : this.#wokenOrRetry(woken));
        } finally {
          this.#waitingGets--;
        }
      } catch (error) {
        // A command lost with its socket: the disconnect already reset our state; start over on the next socket.
        if (!isDropped(error) || deadline.expired) throw error;
      } finally {
        watch.release();
        markerWatch?.release();
      }
    }
  }

  /** Runs `#load` with the key marked as loading here; when it ends, wakes this coordinator's gets of the key. */
  async #loadHolding(key: string, ttlMs: number, id: string, loader: LoaderCallback, deadline: Deadline, tookOver: boolean, staleMs: number): Promise<GetReply> {
    this.#loading.set(key, id);
    try {
      return await this.#load(key, ttlMs, id, loader, deadline, tookOver, staleMs);
    } finally {
      if (this.#loading.get(key) === id) this.#loading.delete(key);
      // A failed compare-and-set or a lock released without a write sends no push: wake local waiters ourselves.
      this.#waiters.wake(key);
    }
  }

  /** We hold the lock: call the caller's loader, then compare-and-set; release the lock on any failure. */
  async #load(key: string, ttlMs: number, id: string, loader: LoaderCallback, deadline: Deadline, tookOver: boolean, staleMs: number): Promise<GetReply> {
    let reply: LoaderReply;
    try {
      reply = await deadline.race(Promise.resolve(loader(key, ttlMs)));
    } catch (error) {
      this.#locks.release(key, id);
      if (error instanceof TimeoutError) throw error;
      throw new ConnectionError(`calling the loader back in the calling Worker failed: ${errorMessage(error)}`, { cause: error });
    }
    if (reply === null || typeof reply !== 'object' || reply.ok !== true) {
      this.#locks.release(key, id);
      return { kind: 'loader-error' };
    }
    const { value, cancelled } = reply;
    const storeTtlMs = reply.ttlMs ?? ttlMs;
    if (!(value instanceof Uint8Array) || !Number.isSafeInteger(storeTtlMs) || storeTtlMs <= 0) {
      this.#locks.release(key, id);
      throw new ValkeyasideError('ERR_BAD_REQUEST', 'the loader wrapper answered without a byte value or with an invalid ttl');
    }
    if (cancelled || deadline.expired) {
      this.#locks.release(key, id);
      const message = deadline.error?.message ?? (cancelled ? `${deadline.what} was given up by the caller` : `${deadline.what} timed out`);
      throw new TimeoutError(message);
    }
    let stored = false;
    try {
      stored = await storeLoaded(this.#bridge, this.#reads, { key, id, value, storeTtlMs, capMs: Math.min(storeTtlMs, this.#config.localTtlCapMs), staleMs }, deadline);
    } catch (error) {
      this.#locks.release(key, id);
      if (error instanceof TimeoutError) throw error;
      // Any other store failure: the caller still gets the value it loaded; it is just not cached.
    }
    // getValue answers the loading caller with `own` (it holds the value); getMany's replies carry it.
    return { kind: 'value', value, outcome: !stored ? 'not-cached' : tookOver ? 'took-over' : 'loaded' };
  }

  /** `woken`, or `untrackedRetryMs` from now if sooner: the bound on a wait that no push would end. */
  async #wokenOrRetry(woken: Promise<void>): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([woken, new Promise<void>((resolve) => { timer = setTimeout(resolve, this.#config.untrackedRetryMs); })]);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }
}
