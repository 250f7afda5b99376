// The Durable Object every get and del of a key goes through: it owns the WebSocket to the bridge, the local cache,
// the client id (liveness marker) and the per-key waiters, and runs Go valkeyaside's Get algorithm (aside.go) so
// one key's loader runs once however many isolates ask. The loader itself runs in the caller, called back over RPC.
import { DurableObject } from 'cloudflare:workers';
import { ConnectionError, ProtocolError, TimeoutError, ValkeyasideError } from '../shared/errors.ts';
import { TRACKED_GET } from '../shared/protocol.ts';
import { RespSimple } from '../shared/resp/index.ts';
import type { RespValue } from '../shared/resp/index.ts';
import { SCRIPT_SHA, isPlaceholder, newClientId } from '../shared/valkeyaside.ts';
import { BridgeSocket, droppedError, isDropped } from './bridge-socket.ts';
import { toWireError } from './errors.ts';
import type { WireError } from './errors.ts';
import { LocalCache } from './local-cache.ts';
import { resolveCoordinatorSettings } from './options.ts';
import type { CoordinatorEnv, CoordinatorSettings } from './options.ts';
import { Deadline, Waiters } from './waiters.ts';
import type { Watch } from './waiters.ts';

/**
 * How a get was answered, for metrics:
 * - `hit`: from the coordinator's local copy; `server-hit`: read from Valkey through the bridge;
 * - `miss`: no value and no loader, resolved to null;
 * - `loaded`: this get held the lock, ran its loader and stored the value;
 * - `took-over`: as `loaded`, after releasing a lock whose holder's marker was gone;
 * - `not-cached`: this get ran its loader but the value was not stored (the key changed meanwhile, or the store failed);
 * - `waited`: another client held the lock; this get waited for its push and returned what it stored.
 */
export type GetOutcome = 'hit' | 'server-hit' | 'miss' | 'loaded' | 'took-over' | 'not-cached' | 'waited';

/** RPC: one get. `timeoutMs` is the get's deadline from now; `requestId` lets `cancelGet` reach it. */
export interface GetRequest {
  readonly key: string;
  readonly ttlMs: number;
  readonly timeoutMs: number;
  readonly requestId: string;
}

/** What the caller's loader wrapper answers. `cancelled`: the caller gave up before the loader returned. */
export type LoaderReply =
  | { readonly ok: true; readonly value: string; readonly ttlMs?: number; readonly cancelled: boolean }
  | { readonly ok: false; readonly cancelled: boolean };

/** The caller's loader wrapper, called back over RPC with the key and the lock's ttl. */
export type LoaderCallback = (key: string, ttlMs: number) => Promise<LoaderReply>;

/** RPC reply of `getValue`. `loader-error`: the caller rethrows its loader's own error, which never left it. */
export type GetReply =
  | { readonly kind: 'value'; readonly value: string | null; readonly outcome: GetOutcome }
  | { readonly kind: 'loader-error' }
  | { readonly kind: 'error'; readonly error: WireError };

export interface DelRequest {
  readonly key: string;
  readonly timeoutMs: number;
}

export type DelReply = { readonly kind: 'ok' } | { readonly kind: 'error'; readonly error: WireError };

/** A coordinator's state, for tests and metrics. */
export interface CoordinatorStats {
  readonly connected: boolean;
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

interface ReadResult {
  readonly value: string | null;
  /** True when served from the local copy. */
  readonly local: boolean;
}

/** A lock attempt in flight, shared by the gets of its key in this coordinator until a push names the key. */
interface LockFlight {
  readonly id: string;
  readonly reply: Promise<string | null>;
}

/** A TRACKED.GET in flight; a push for its key poisons it so its reply is not kept. */
interface ReadFlight {
  poisoned: boolean;
  promise: Promise<ReadResult>;
}

const decoder = new TextDecoder();

function stringOrNull(reply: RespValue, what: string): string | null {
  if (reply === null) return null;
  if (reply instanceof Uint8Array) return decoder.decode(reply);
  if (reply instanceof RespSimple) return reply.value;
  throw new ProtocolError('ERR_BRIDGE_REPLY', `unexpected reply to ${what}: expected a string or null`);
}

function parseTrackedGet(reply: RespValue): { value: string | null; ttlMs: number; cacheable: boolean } {
  if (Array.isArray(reply) && reply.length === 3) {
    const [value, ttlMs, cacheable] = reply;
    if ((value === null || value instanceof Uint8Array) && (typeof ttlMs === 'number' || typeof ttlMs === 'bigint') && typeof cacheable === 'boolean') {
      return { value: value === null ? null : decoder.decode(value), ttlMs: Number(ttlMs), cacheable };
    }
  }
  throw new ProtocolError('ERR_BRIDGE_REPLY', `unexpected reply to ${TRACKED_GET}: expected [value, ttlMs, cacheable]`);
}

function isOk(reply: RespValue): boolean {
  return (reply instanceof RespSimple && reply.value === 'OK') || (reply instanceof Uint8Array && decoder.decode(reply) === 'OK');
}

function badRequest(message: string): { kind: 'error'; error: WireError } {
  return { kind: 'error', error: toWireError(new ValkeyasideError('ERR_BAD_REQUEST', message)) };
}

function validRequest(key: unknown, ms: unknown): boolean {
  return typeof key === 'string' && typeof ms === 'number' && Number.isSafeInteger(ms) && ms > 0;
}

/**
 * The Durable Object class a Worker re-exports and binds (default binding name `CACHE_ASIDE`). Settings come from
 * the Worker's env vars (see `CoordinatorEnv`); the constructor validates them.
 * @throws TypeError or RangeError from the constructor when an env var is missing or invalid.
 */
export class CacheAsideCoordinator extends DurableObject<CoordinatorEnv> {
  readonly #settings: CoordinatorSettings;
  readonly #cache: LocalCache;
  readonly #waiters = new Waiters();
  readonly #bridge: BridgeSocket;
  readonly #reads = new Map<string, ReadFlight>();
  readonly #locks = new Map<string, LockFlight>();
  readonly #deadlines = new Map<string, Deadline>();
  #clientId: string | null = null;
  #creatingId: Promise<string> | null = null;
  /** Bumped whenever the client id is replaced, so a marker created across the change is not adopted. */
  #generation = 0;
  /** Markers of replaced ids, deleted as soon as a socket is open. */
  readonly #staleIds = new Set<string>();
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #activeGets = 0;
  #waitingGets = 0;
  /** RPCs in progress (gets, dels, pings): a busy coordinator never goes idle. */
  #busy = 0;
  #lastActivityAt = Date.now();

  constructor(ctx: DurableObjectState, env: CoordinatorEnv) {
    super(ctx, env);
    this.#settings = resolveCoordinatorSettings(env);
    this.#cache = new LocalCache({ maxEntries: this.#settings.maxEntries, maxBytes: this.#settings.maxBytes });
    this.#bridge = new BridgeSocket({
      url: this.#settings.bridgeUrl,
      token: this.#settings.bridgeToken,
      connectTimeoutMs: this.#settings.connectTimeoutMs,
      reconnectBaseMs: this.#settings.reconnectBaseMs,
      reconnectMaxMs: this.#settings.reconnectMaxMs,
      maxQueuedCommands: this.#settings.maxQueuedCommands,
      replyTimeoutMs: this.#settings.replyTimeoutMs,
    }, {
      onPush: (keys) => this.#onPush(keys),
      onOpen: () => this.#deleteStaleMarkers(),
      onClose: () => {
        this.#forgetEverything();
        this.#replaceClientId();
      },
    });
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
    this.#activeGets++;
    this.#busy++;
    this.#touch();
    const deadline = new Deadline(timeoutMs, `get(${JSON.stringify(key)})`);
    this.#deadlines.set(requestId, deadline);
    try {
      return await this.#get(key, ttlMs, loader, deadline);
    } catch (error) {
      return { kind: 'error', error: toWireError(error) };
    } finally {
      deadline.dispose();
      if (this.#deadlines.get(requestId) === deadline) this.#deadlines.delete(requestId);
      this.#activeGets--;
      this.#busy--;
      this.#touch();
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
    this.#busy++;
    this.#touch();
    // Drop the copy and poison reads in flight, so no get that starts after this del can see the old value.
    this.#invalidate(key);
    const deadline = new Deadline(timeoutMs, `del(${JSON.stringify(key)})`);
    try {
      await deadline.race(this.#bridge.command(['DEL', key], deadline.at));
      return { kind: 'ok' };
    } catch (error) {
      return { kind: 'error', error: toWireError(error) };
    } finally {
      deadline.dispose();
      this.#busy--;
      this.#touch();
    }
  }

  /** RPC: sends PING through the bridge (opening the socket if needed): a health check. */
  async pingBridge(request: { readonly timeoutMs: number }): Promise<DelReply> {
    const { timeoutMs } = request ?? {};
    if (!validRequest('', timeoutMs)) return badRequest('pingBridge needs { timeoutMs: positive integer }');
    this.#busy++;
    this.#touch();
    const deadline = new Deadline(timeoutMs, 'ping');
    try {
      await deadline.race(this.#bridge.command(['PING'], deadline.at));
      return { kind: 'ok' };
    } catch (error) {
      return { kind: 'error', error: toWireError(error) };
    } finally {
      deadline.dispose();
      this.#busy--;
      this.#touch();
    }
  }

  /** RPC: counters for tests and metrics. */
  getStats(): CoordinatorStats {
    return {
      connected: this.#bridge.isOpen,
      clientId: this.#clientId,
      entries: this.#cache.size,
      bytes: this.#cache.bytes,
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
        let { value, local } = await deadline.race(this.#read(key, capMs, deadline));
        if (value === null && loader !== undefined) {
          const lock = await this.#acquire(key, ttlMs, deadline);
          if (lock.mine) return await this.#load(key, ttlMs, lock.id, loader, deadline, tookOver);
          value = lock.holder;
          local = false;
        }
        if (value === null || !isPlaceholder(value)) {
          const outcome: GetOutcome = value === null ? 'miss' : waited ? 'waited' : local ? 'hit' : 'server-hit';
          return { kind: 'value', value, outcome };
        }
        markerWatch = this.#waiters.watch(value);
        const marker = await deadline.race(this.#read(value, this.#settings.clientTtlMs, deadline));
        if (marker.value === null) {
          // The holder is gone (marker expired or deleted): release its lock and start over.
          await deadline.race(this.#bridge.command(['EVALSHA', SCRIPT_SHA.delkey, 1, key, value], deadline.at));
          tookOver = true;
          continue;
        }
        waited = true;
        this.#waitingGets++;
        try {
          await deadline.race(Promise.race([watch.fired, markerWatch.fired]));
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

  /** We hold the lock: call the caller's loader, then compare-and-set; release the lock on any failure. */
  async #load(key: string, ttlMs: number, id: string, loader: LoaderCallback, deadline: Deadline, tookOver: boolean): Promise<GetReply> {
    let reply: LoaderReply;
    try {
      reply = await deadline.race(Promise.resolve(loader(key, ttlMs)));
    } catch (error) {
      this.#release(key, id);
      if (error instanceof TimeoutError) throw error;
      throw new ConnectionError(`calling the loader back in the calling Worker failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    if (reply === null || typeof reply !== 'object' || reply.ok !== true) {
      this.#release(key, id);
      return { kind: 'loader-error' };
    }
    const { value, cancelled } = reply;
    const storeTtlMs = reply.ttlMs ?? ttlMs;
    if (typeof value !== 'string' || !Number.isSafeInteger(storeTtlMs) || storeTtlMs <= 0) {
      this.#release(key, id);
      throw new ValkeyasideError('ERR_BAD_REQUEST', 'the loader wrapper answered without a string value or with an invalid ttl');
    }
    if (cancelled || deadline.expired) {
      this.#release(key, id);
      const message = deadline.error?.message ?? (cancelled ? `${deadline.what} was given up by the caller` : `${deadline.what} timed out`);
      throw new TimeoutError(message, { value });
    }
    const store = this.#bridge.command(['EVALSHA', SCRIPT_SHA.setkey, 1, key, id, value, storeTtlMs], deadline.at);
    let stored = false;
    try {
      stored = isOk(await deadline.race(store));
    } catch (error) {
      this.#release(key, id);
      if (error instanceof TimeoutError) throw new TimeoutError(error.message, { value });
      // Any other store failure: the caller still gets the value it loaded; it is just not cached.
    }
    // Read it back once stored (not pipelined: our own store's push would poison a read sent with it). The tracked
    // read re-registers this coordinator for the key's pushes and fills the local copy for the next get.
    if (stored) await deadline.race(this.#read(key, Math.min(storeTtlMs, this.#settings.localTtlCapMs), deadline, true)).catch(() => {});
    return { kind: 'value', value, outcome: !stored ? 'not-cached' : tookOver ? 'took-over' : 'loaded' };
  }

  /**
   * Takes the lock: `SET key id NX GET PX ttl` (or the Lua lock). `mine` when we now hold it, else `holder` is the
   * key's value. Concurrent gets of a key here share one attempt: only its sender can hold the lock; the others see
   * our own id as the holder and wait for the push like any waiter (one command per coordinator, not per get).
   */
  async #acquire(key: string, ttlMs: number, deadline: Deadline): Promise<{ mine: true; id: string } | { mine: false; holder: string }> {
    let shared = this.#locks.get(key);
    if (shared === undefined) {
      const id = await this.#ensureClientId(deadline);
      shared = this.#locks.get(key);
      if (shared === undefined) return this.#tryLock(key, id, ttlMs, deadline);
    }
    const holder = await deadline.race(shared.reply);
    return { mine: false, holder: holder ?? shared.id };
  }

  async #tryLock(key: string, id: string, ttlMs: number, deadline: Deadline): Promise<{ mine: true; id: string } | { mine: false; holder: string }> {
    const args = this.#settings.useLuaLock
      ? ['EVALSHA', SCRIPT_SHA.acquireLock, 1, key, id, ttlMs]
      : ['SET', key, id, 'NX', 'GET', 'PX', ttlMs];
    const reply = this.#bridge.command(args, deadline.at).then((r) => stringOrNull(r, 'the lock'));
    const flight: LockFlight = { id, reply };
    this.#locks.set(key, flight);
    const done = () => { if (this.#locks.get(key) === flight) this.#locks.delete(key); };
    reply.then(done, done);
    try {
      const holder = await deadline.race(reply);
      return holder === null ? { mine: true, id } : { mine: false, holder };
    } catch (error) {
      // The lock may still land after we gave up; then nobody would fill it, so release it.
      if (deadline.expired) reply.then((late) => { if (late === null) this.#release(key, id); }, () => {});
      throw error;
    }
  }

  /** A local copy, a shared in-flight read of the key, or a new TRACKED.GET (`fresh` forces the latter). */
  #read(key: string, capMs: number, deadline: Deadline, fresh = false): Promise<ReadResult> {
    if (!fresh) {
      const value = this.#cache.get(key);
      if (value !== undefined) return Promise.resolve({ value, local: true });
      const flight = this.#reads.get(key);
      if (flight !== undefined) return flight.promise;
    }
    const flight: ReadFlight = { poisoned: false, promise: Promise.resolve({ value: null, local: false }) };
    const sentAt = Date.now();
    const done = () => { if (this.#reads.get(key) === flight) this.#reads.delete(key); };
    flight.promise = this.#bridge.command([TRACKED_GET, key, Math.max(1, Math.floor(capMs))], deadline.at).then((reply) => {
      done();
      const { value, ttlMs, cacheable } = parseTrackedGet(reply);
      if (cacheable && !flight.poisoned && ttlMs > 0) this.#cache.set(key, value, ttlMs, sentAt);
      return { value, local: false };
    }, (error: unknown) => {
      done();
      throw error;
    });
    this.#reads.set(key, flight);
    return flight.promise;
  }

  /** Compare-and-delete of our lock, in the background: nobody waits for it. */
  #release(key: string, id: string): void {
    this.#bridge.command(['EVALSHA', SCRIPT_SHA.delkey, 1, key, id]).catch(() => {});
  }

  /** The client id, creating it (and its marker, `SET id "" PX clientTtlMs`) on first use. */
  #ensureClientId(deadline: Deadline): Promise<string> {
    if (this.#clientId !== null) return Promise.resolve(this.#clientId);
    if (this.#creatingId === null) {
      const generation = this.#generation;
      const id = newClientId();
      const creating = this.#bridge.command(['SET', id, '', 'PX', this.#settings.clientTtlMs], deadline.at).then(() => {
        if (generation !== this.#generation) {
          this.#staleIds.add(id);
          this.#deleteStaleMarkers();
          throw droppedError('the client id was replaced while its marker was being created');
        }
        this.#clientId = id;
        this.#scheduleRefresh(id);
        return id;
      });
      this.#creatingId = creating;
      const clear = () => { if (this.#creatingId === creating) this.#creatingId = null; };
      creating.then(clear, clear);
    }
    return deadline.race(this.#creatingId);
  }

  /** Refreshes the marker every half of its ttl while the id lives (Go's refresh goroutine). */
  #scheduleRefresh(id: string): void {
    if (this.#refreshTimer !== undefined) clearTimeout(this.#refreshTimer);
    const { clientTtlMs } = this.#settings;
    this.#refreshTimer = setTimeout(() => {
      if (this.#clientId !== id) return;
      this.#bridge.command(['SET', id, '', 'PX', clientTtlMs]).catch(() => {});
      this.#scheduleRefresh(id);
    }, Math.max(1, Math.floor(clientTtlMs / 2)));
  }

  #onPush(keys: string[] | null): void {
    if (keys !== null) {
      for (const key of keys) this.#invalidate(key);
      return;
    }
    // Drop everything (FLUSHALL, or the bridge lost Valkey): as on a disconnect, our locks are abandoned too.
    this.#forgetEverything();
    this.#replaceClientId();
    this.#deleteStaleMarkers();
  }

  #invalidate(key: string): void {
    this.#cache.delete(key);
    // Gets arriving after a push send their own lock attempt: the shared one may predate the change.
    this.#locks.delete(key);
    const flight = this.#reads.get(key);
    if (flight !== undefined) {
      flight.poisoned = true;
      this.#reads.delete(key);
    }
    this.#waiters.wake(key);
  }

  #forgetEverything(): void {
    this.#cache.clear();
    this.#locks.clear();
    for (const flight of this.#reads.values()) flight.poisoned = true;
    this.#reads.clear();
    this.#waiters.wakeAll();
  }

  /** Go's onInvalidation(nil): a new id for new locks; the old marker goes, so its locks look abandoned. */
  #replaceClientId(): void {
    this.#generation++;
    if (this.#clientId !== null) this.#staleIds.add(this.#clientId);
    this.#clientId = null;
    this.#creatingId = null;
    if (this.#refreshTimer !== undefined) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
  }

  #deleteStaleMarkers(): void {
    if (this.#staleIds.size === 0 || !this.#bridge.isOpen) return;
    const ids = [...this.#staleIds];
    this.#staleIds.clear();
    this.#bridge.command(['DEL', ...ids]).catch(() => {});
  }

  #touch(): void {
    this.#lastActivityAt = Date.now();
    this.#bridge.autoReconnect = true;
    if (this.#idleTimer === undefined) this.#idleTimer = setTimeout(() => this.#checkIdle(), this.#settings.idleMs);
  }

  #checkIdle(): void {
    this.#idleTimer = undefined;
    const { idleMs } = this.#settings;
    const quietMs = Date.now() - this.#lastActivityAt;
    if (this.#busy > 0 || quietMs < idleMs) {
      this.#idleTimer = setTimeout(() => this.#checkIdle(), this.#busy > 0 ? idleMs : idleMs - quietMs);
      return;
    }
    void this.#goIdle();
  }

  /** Idle: delete our markers, close the socket and drop the local cache (without a socket no push can reach it). */
  async #goIdle(): Promise<void> {
    const ids = [...this.#staleIds];
    if (this.#clientId !== null) ids.push(this.#clientId);
    this.#replaceClientId();
    this.#staleIds.clear();
    this.#bridge.autoReconnect = false;
    if (ids.length > 0 && this.#bridge.isOpen) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const limit = new Promise((resolve) => { timer = setTimeout(resolve, this.#settings.connectTimeoutMs); });
      await Promise.race([this.#bridge.command(['DEL', ...ids]).catch(() => {}), limit]);
      if (timer !== undefined) clearTimeout(timer);
    }
    // A get or del that arrived meanwhile keeps the coordinator awake.
    if (this.#busy > 0 || this.#idleTimer !== undefined) return;
    this.#bridge.close('idle');
    this.#forgetEverything();
  }
}
