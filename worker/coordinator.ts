// The Durable Object every get and del of a key goes through: it ties together the bridge socket, the tracked reads
// (local copy), the client id, the locks and the per-key waiters, and runs Go valkeyaside's Get algorithm (aside.go)
// so one key's loader runs once however many isolates ask. The loader itself runs in the caller, called back over RPC.
// Keys are binary strings (shared/bytes.ts), values the exact bytes: nothing here decodes text.
import { DurableObject } from 'cloudflare:workers';
import { binaryBytes, binaryString, describeKey, utf8Text, wireKey } from '../shared/bytes.ts';
import { ConnectionError, TimeoutError, ValkeyasideError } from '../shared/errors.ts';
import { RespSimple } from '../shared/resp/index.ts';
import type { RespValue } from '../shared/resp/index.ts';
import { SCRIPT_SHA, isPlaceholder } from '../shared/valkeyaside.ts';
import { isDropped } from './bridge-errors.ts';
import { BridgeSocket } from './bridge-socket.ts';
import { ClientId } from './client-id.ts';
import { toWireError } from './errors.ts';
import { IdleClock } from './idle-clock.ts';
import { Locks } from './locks.ts';
import { resolveCoordinatorSettings } from './options.ts';
import type { CoordinatorEnv, CoordinatorSettings } from './options.ts';
import { badRequest, validRequest } from './rpc.ts';
import type { CoordinatorStats, DelReply, DelRequest, GetOutcome, GetReply, GetRequest, LoaderCallback, LoaderReply } from './rpc.ts';
import { TrackedReads } from './tracked-reads.ts';
import { Deadline, Waiters } from './waiters.ts';
import type { Watch } from './waiters.ts';

function isOk(reply: RespValue): boolean {
  return (reply instanceof RespSimple && reply.value === 'OK') || (reply instanceof Uint8Array && reply.length === 2 && reply[0] === 0x4f && reply[1] === 0x4b);
}

/**
 * The Durable Object class a Worker re-exports and binds (default binding name `CACHE_ASIDE`). Settings come from
 * the Worker's env vars (see `CoordinatorEnv`); the constructor validates them.
 * @throws TypeError or RangeError from the constructor when an env var is missing or invalid.
 */
export class CacheAsideCoordinator extends DurableObject<CoordinatorEnv> {
  readonly #settings: CoordinatorSettings;
  readonly #waiters = new Waiters();
  readonly #bridge: BridgeSocket;
  readonly #reads: TrackedReads;
  readonly #clientId: ClientId;
  readonly #locks: Locks;
  /** Keys whose loader runs in this coordinator now, with the lock id it holds. */
  readonly #loading = new Map<string, string>();
  readonly #deadlines = new Map<string, Deadline>();
  #activeGets = 0;
  #waitingGets = 0;
  readonly #idle: IdleClock;

  constructor(ctx: DurableObjectState, env: CoordinatorEnv) {
    super(ctx, env);
    this.#settings = resolveCoordinatorSettings(env);
    this.#idle = new IdleClock(this.#settings.idleMs, () => void this.#goIdle());
    this.#bridge = new BridgeSocket({
      url: this.#settings.bridgeUrl,
      token: this.#settings.bridgeToken,
      connectTimeoutMs: this.#settings.connectTimeoutMs,
      reconnectBaseMs: this.#settings.reconnectBaseMs,
      reconnectMaxMs: this.#settings.reconnectMaxMs,
      maxQueuedCommands: this.#settings.maxQueuedCommands,
      replyTimeoutMs: this.#settings.replyTimeoutMs,
      heartbeatMs: this.#settings.heartbeatMs,
    }, {
      onPush: (keys) => this.#onPush(keys),
      onOpen: () => this.#clientId.deleteStale(),
      onClose: () => {
        this.#forgetEverything();
        this.#clientId.replace();
      },
    });
    this.#reads = new TrackedReads(this.#bridge, { maxEntries: this.#settings.maxEntries, maxBytes: this.#settings.maxBytes });
    this.#clientId = new ClientId(this.#bridge, this.#settings.clientTtlMs);
    this.#locks = new Locks(this.#bridge, this.#clientId, this.#settings.useLuaLock);
  }

  /**
   * RPC: the local copy of `key` (a binary string) when there is one with a value, else undefined (then call
   * `getValue`). No deadline, watch or loader stub: a hit costs little more than a bare RPC (docs/benchmarks.md).
   */
  peekValue(key: string): Uint8Array | undefined {
    if (typeof key !== 'string') return undefined;
    const local = this.#reads.peek(key);
    if (local == null || isPlaceholder(local)) return undefined;
    this.#touch();
    return local;
  }

  /**
   * RPC: as `peekValue`, as text: the local copy when it is valid UTF-8 (else undefined, and `getValue` reports it).
   * Text crosses RPC cheaper than bytes, so the text view's hits take this one.
   */
  peekText(key: string): string | undefined {
    const local = this.peekValue(key);
    return local === undefined ? undefined : utf8Text(local);
  }

  /** RPC: a get (see `CacheAside.get`). Never throws; errors come back as `{ kind: 'error' }`. */
  async getValue(request: GetRequest, loader?: LoaderCallback): Promise<GetReply> {
    const { key, ttlMs, timeoutMs, requestId } = request ?? {};
    if (!validRequest(key, ttlMs) || !validRequest(requestId, timeoutMs)) {
      return badRequest('getValue needs { key: string, ttlMs: positive integer, timeoutMs: positive integer, requestId: string }');
    }
    if (loader !== undefined && typeof loader !== 'function') return badRequest('getValue: loader must be a function');
    if (this.#activeGets >= this.#settings.maxPendingGets) {
      return { kind: 'error', error: toWireError(new ValkeyasideError('ERR_OVERLOADED',
        `coordinator has ${this.#activeGets} gets in progress (VALKEYASIDE_MAX_PENDING_GETS); retry later or use more shards`)) };
    }
    // Hits with a value were answered by peekValue; a cached miss asked for without a loader needs no deadline or
    // watch either. Everything else takes the full path.
    if (loader === undefined && this.#reads.peek(key) === null) {
      this.#touch();
      return { kind: 'value', value: null, outcome: 'miss' };
    }
    this.#activeGets++;
    this.#touch();
    this.#idle.begin();
    const deadline = new Deadline(timeoutMs, `get(${describeKey(key)})`);
    this.#deadlines.set(requestId, deadline);
    try {
      return await this.#get(key, ttlMs, loader, deadline);
    } catch (error) {
      return { kind: 'error', error: toWireError(error) };
    } finally {
      deadline.dispose();
      if (this.#deadlines.get(requestId) === deadline) this.#deadlines.delete(requestId);
      this.#activeGets--;
      this.#idle.end();
    }
  }

  /** RPC: the caller's AbortSignal fired; the get gives up now (releasing its lock if it holds one). */
  cancelGet(requestId: string): void {
    this.#deadlines.get(requestId)?.cancel('was aborted by the caller');
  }

  /** RPC: deletes the key on the server; this coordinator drops its copy first, every other one on the push. */
  async deleteKey(request: DelRequest): Promise<DelReply> {
    const { key, timeoutMs } = request ?? {};
    if (!validRequest(key, timeoutMs)) return badRequest('deleteKey needs { key: string, timeoutMs: positive integer }');
    // Drop the copy and poison reads in flight, so no get that starts after this del can see the old value.
    this.#invalidate(key);
    return this.#runCommand(['DEL', wireKey(key)], timeoutMs, `del(${describeKey(key)})`);
  }

  /**
   * RPC: sends PING through the bridge (opening the socket if needed): a health check of the whole path, since the
   * bridge answers `TRYAGAIN` (a ConnectionError here) while it has no tracked connection to Valkey.
   */
  async pingBridge(request: { readonly timeoutMs: number }): Promise<DelReply> {
    const { timeoutMs } = request ?? {};
    if (!validRequest('', timeoutMs)) return badRequest('pingBridge needs { timeoutMs: positive integer }');
    return this.#runCommand(['PING'], timeoutMs, 'ping');
  }

  /** One bridge command within `timeoutMs`, counted as activity (a busy coordinator never goes idle). */
  async #runCommand(args: ReadonlyArray<string | number | Uint8Array>, timeoutMs: number, what: string): Promise<DelReply> {
    this.#touch();
    this.#idle.begin();
    const deadline = new Deadline(timeoutMs, what);
    try {
      await deadline.race(this.#bridge.command(args, deadline.at));
      return { kind: 'ok' };
    } catch (error) {
      return { kind: 'error', error: toWireError(error) };
    } finally {
      deadline.dispose();
      this.#idle.end();
    }
  }

  /** RPC: counters for tests and metrics. */
  getStats(): CoordinatorStats {
    return {
      connected: this.#bridge.isOpen,
      clientId: this.#clientId.current,
      entries: this.#reads.size,
      bytes: this.#reads.bytes,
      activeGets: this.#activeGets,
      waitingGets: this.#waitingGets,
      watchedKeys: this.#waiters.size,
      commandsInFlight: this.#bridge.inFlight,
    };
  }

  /** Go's Get: read; on a miss take the lock and load; on a placeholder wait for a push (or take over); retry. */
  async #get(key: string, ttlMs: number, loader: LoaderCallback | undefined, deadline: Deadline): Promise<GetReply> {
    const capMs = Math.min(ttlMs, this.#settings.localTtlCapMs);
    let waited = false;
    let tookOver = false;
    for (;;) {
      deadline.check();
      // Watch before reading: a push that lands between the read and the wait must still wake us.
      const watch = this.#waiters.watch(key);
      let markerWatch: Watch | undefined;
      try {
        let { value, local, watched } = await deadline.race(this.#reads.read(key, capMs, deadline.at));
        if (value === null && loader !== undefined) {
          // Our own load of the key is still running (a del emptied the key meanwhile): wait for it rather than lock
          // again. Every lock here uses one client id, so a second lock would let the first load's compare-and-set
          // match it and store a value computed before the del. A load under a replaced id cannot store: ignore it.
          const ownLoad = this.#loading.get(key);
          if (ownLoad !== undefined && ownLoad === this.#clientId.current) {
            value = binaryBytes(ownLoad);
            watched = true;
          } else {
            const lock = await this.#locks.acquire(key, ttlMs, deadline);
            if (lock.mine) return await this.#loadHolding(key, ttlMs, lock.id, loader, deadline, tookOver);
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
        const marker = await deadline.race(this.#reads.read(markerKey, this.#settings.clientTtlMs, deadline.at));
        if (marker.value === null) {
          // The holder is gone (marker expired or deleted): release its lock and start over.
          await deadline.race(this.#bridge.command(['EVALSHA', SCRIPT_SHA.delkey, 1, wireKey(key), value], deadline.at));
          tookOver = true;
          continue;
        }
        waited = true;
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
  async #loadHolding(key: string, ttlMs: number, id: string, loader: LoaderCallback, deadline: Deadline, tookOver: boolean): Promise<GetReply> {
    this.#loading.set(key, id);
    try {
      return await this.#load(key, ttlMs, id, loader, deadline, tookOver);
    } finally {
      if (this.#loading.get(key) === id) this.#loading.delete(key);
      // A failed compare-and-set or a lock released without a write sends no push: wake local waiters ourselves.
      this.#waiters.wake(key);
    }
  }

  /** We hold the lock: call the caller's loader, then compare-and-set; release the lock on any failure. */
  async #load(key: string, ttlMs: number, id: string, loader: LoaderCallback, deadline: Deadline, tookOver: boolean): Promise<GetReply> {
    let reply: LoaderReply;
    try {
      reply = await deadline.race(Promise.resolve(loader(key, ttlMs)));
    } catch (error) {
      this.#locks.release(key, id);
      if (error instanceof TimeoutError) throw error;
      throw new ConnectionError(`calling the loader back in the calling Worker failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
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
    const store = this.#bridge.command(['EVALSHA', SCRIPT_SHA.setkey, 1, wireKey(key), id, value, storeTtlMs], deadline.at);
    let stored = false;
    try {
      stored = isOk(await deadline.race(store));
    } catch (error) {
      this.#locks.release(key, id);
      if (error instanceof TimeoutError) throw error;
      // Any other store failure: the caller still gets the value it loaded; it is just not cached.
    }
    // Read it back once stored (not pipelined: our own store's push would poison a read sent with it). The tracked
    // read re-registers this coordinator for the key's pushes and fills the local copy for the next get.
    if (stored) await deadline.race(this.#reads.read(key, Math.min(storeTtlMs, this.#settings.localTtlCapMs), deadline.at, true)).catch(() => {});
    return { kind: 'value', value, outcome: !stored ? 'not-cached' : tookOver ? 'took-over' : 'loaded' };
  }

  /** `woken`, or `untrackedRetryMs` from now if sooner: the bound on a wait that no push would end. */
  async #wokenOrRetry(woken: Promise<void>): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([woken, new Promise<void>((resolve) => { timer = setTimeout(resolve, this.#settings.untrackedRetryMs); })]);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  #onPush(keys: string[] | null): void {
    if (keys !== null) {
      for (const key of keys) this.#invalidate(key);
      return;
    }
    // Drop everything (FLUSHALL, or the bridge lost Valkey): as on a disconnect, our locks are abandoned too.
    this.#forgetEverything();
    this.#clientId.replace();
    this.#clientId.deleteStale();
  }

  #invalidate(key: string): void {
    this.#reads.invalidate(key);
    // Gets arriving after a push send their own lock attempt: the shared one may predate the change.
    this.#locks.forget(key);
    this.#waiters.wake(key);
  }

  #forgetEverything(): void {
    this.#reads.clear();
    this.#locks.clear();
    this.#waiters.wakeAll();
  }

  /** Activity: the socket reconnects on its own again, and the idle period starts over. */
  #touch(): void {
    this.#bridge.autoReconnect = true;
    this.#idle.touch();
  }

  /** Idle: delete our markers, close the socket and drop the local cache (without a socket no push can reach it). */
  async #goIdle(): Promise<void> {
    const ids = this.#clientId.retire();
    this.#bridge.autoReconnect = false;
    if (ids.length > 0 && this.#bridge.isOpen) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const limit = new Promise((resolve) => { timer = setTimeout(resolve, this.#settings.connectTimeoutMs); });
      await Promise.race([this.#bridge.command(['DEL', ...ids]).catch(() => {}), limit]);
      if (timer !== undefined) clearTimeout(timer);
    }
    // A get or del that arrived meanwhile keeps the coordinator awake.
    if (this.#idle.awake) return;
    this.#bridge.close('idle');
    this.#forgetEverything();
  }
}
