// The Durable Object every get and del of a key goes through: it ties together the bridge socket, the tracked reads
// (local copy), the client id, the locks and the per-key waiters, and runs Go valkeyaside's Get algorithm
// (aside-get.ts) so one key's loader runs once however many isolates ask. The loader runs in the caller, over RPC.
// Keys are binary strings (shared/bytes.ts), values the exact bytes: nothing here decodes text.
import { DurableObject } from 'cloudflare:workers';
import { describeKey, utf8Text, wireKey } from '../shared/bytes.ts';
import { isPlaceholder } from '../shared/valkeyaside.ts';
import { ActiveGets } from './active-gets.ts';
import { AsideGet } from './aside-get.ts';
import { runGetMany } from './aside-get-many.ts';
import { BridgeSocket } from './bridge-socket.ts';
import { ClientId } from './client-id.ts';
import { resolveCoordinatorSettings } from './coordinator-settings.ts';
import type { CoordinatorEnv, CoordinatorSettings } from './coordinator-settings.ts';
import { toWireError } from './errors.ts';
import { IdleClock } from './idle-clock.ts';
import { Locks } from './locks.ts';
import { badRequest, validRequest, validStaleMs } from './rpc.ts';
import type {
  CoordinatorStats, DelReply, DelRequest, GetManyReply, GetManyRequest, GetRequest, GetValueReply, LoadManyCallback, LoaderCallback,
  RefreshReply, RefreshRequest,
} from './rpc.ts';
import { freshness } from './freshness.ts';
import { StaleWindow } from './stale-window.ts';
import { TrackedReads } from './tracked-reads.ts';
import { Deadline, Waiters } from './waiters.ts';

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
  readonly #gets: AsideGet;
  readonly #window: StaleWindow;
  readonly #active: ActiveGets;
  readonly #calls = { peek: 0, get: 0, getMany: 0 };
  readonly #idle: IdleClock;

  constructor(ctx: DurableObjectState, env: CoordinatorEnv) {
    super(ctx, env);
    this.#settings = resolveCoordinatorSettings(env);
    this.#idle = new IdleClock(this.#settings.idleMs, () => void this.#goIdle());
    this.#active = new ActiveGets(this.#idle, this.#settings.maxPendingGets);
    this.#bridge = new BridgeSocket({
      urls: this.#settings.bridgeUrls,
      // The name the caller asked for (getByName); the id stands in where the runtime does not pass it.
      name: ctx.id.name ?? ctx.id.toString(),
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
    this.#gets = new AsideGet({
      bridge: this.#bridge, reads: this.#reads, locks: this.#locks, waiters: this.#waiters, clientId: this.#clientId, config: this.#settings,
    });
    this.#window = new StaleWindow({ bridge: this.#bridge, reads: this.#reads, locks: this.#locks, config: this.#settings });
  }

  /**
   * RPC: the local copy of `key` (a binary string) when there is one with a value, else undefined (then call
   * `getValue`). No deadline, watch or loader stub: a hit costs little more than a bare RPC (docs/benchmarks.md).
   * With `staleMs` (stale-while-revalidate) only a copy still fresh for it counts.
   */
  peekValue(key: string, staleMs?: number): Uint8Array | undefined {
    if (typeof key !== 'string') return undefined;
    this.#calls.peek++;
    let local: Uint8Array | null | undefined;
    if (staleMs === undefined) local = this.#reads.peek(key);
    else {
      const entry = this.#reads.peekEntry(key);
      if (entry !== undefined && typeof staleMs === 'number' && freshness(entry, staleMs, Date.now()) === 'fresh') local = entry.value;
    }
    if (local == null || isPlaceholder(local)) return undefined;
    this.#touch();
    return local;
  }

  /**
   * RPC: as `peekValue`, as text: the local copy when it is valid UTF-8 (else undefined, and `getValue` reports it).
   * Text crosses RPC cheaper than bytes, so the text view's hits take this one.
   */
  peekText(key: string, staleMs?: number): string | undefined {
    const local = this.peekValue(key, staleMs);
    return local === undefined ? undefined : utf8Text(local);
  }

  /** RPC: a get (see `CacheAside.get`). Never throws; errors come back as `{ kind: 'error' }`. */
  async getValue(request: GetRequest, loader?: LoaderCallback): Promise<GetValueReply> {
    const { key, ttlMs, timeoutMs, requestId, staleMs = 0 } = request ?? {};
    if (!validRequest(key, ttlMs) || !validRequest(requestId, timeoutMs) || !validStaleMs(staleMs)) {
      return badRequest('getValue needs { key: string, ttlMs: positive integer, timeoutMs: positive integer, requestId: string, staleMs?: integer >= 0 }');
    }
    if (loader !== undefined && typeof loader !== 'function') return badRequest('getValue: loader must be a function');
    this.#calls.get++;
    const overloaded = this.#active.overloaded(1);
    if (overloaded !== undefined) return overloaded;
    // Hits with a value were answered by peekValue; a cached miss asked for without a loader needs no deadline or
    // watch either. Everything else takes the full path.
    if (loader === undefined && this.#reads.peek(key) === null) {
      this.#touch();
      return { kind: 'value', value: null, outcome: 'miss' };
    }
    this.#touch();
    return this.#active.run(1, requestId, timeoutMs, `get(${describeKey(key)})`, async (deadline): Promise<GetValueReply> => {
      try {
        const served = staleMs > 0 ? await this.#window.serve(key, ttlMs, staleMs, loader !== undefined, deadline) : undefined;
        const reply = served ?? await this.#gets.run(key, ttlMs, loader, deadline, staleMs);
        // The caller whose loader produced the value still holds it: the bytes need not cross the RPC a second time.
        if (reply.kind === 'value' && (reply.outcome === 'loaded' || reply.outcome === 'took-over' || reply.outcome === 'not-cached')) return { kind: 'own', outcome: reply.outcome };
        return reply;
      } catch (error) {
        return { kind: 'error', error: toWireError(error) };
      }
    });
  }

  /**
   * RPC: the background refresh a `stale` reply with `refresh` asked for, run by that caller under its `waitUntil`
   * (the loader runs there); `timeoutMs` is its deadline and its refresh lock's ttl. Never throws; see `RefreshReply`.
   */
  async refreshValue(request: RefreshRequest, loader: LoaderCallback): Promise<RefreshReply> {
    const { key, ttlMs, timeoutMs, requestId, staleMs } = request ?? {};
    if (!validRequest(key, ttlMs) || !validRequest(requestId, timeoutMs) || !validRequest(key, staleMs) || typeof loader !== 'function') {
      return badRequest('refreshValue needs { key: string, ttlMs, timeoutMs, staleMs: positive integers, requestId: string } and a loader');
    }
    this.#touch();
    return this.#active.run(1, requestId, timeoutMs, `refresh(${describeKey(key)})`, async (deadline): Promise<RefreshReply> => {
      try {
        return await this.#window.refresh(key, ttlMs, staleMs, timeoutMs, loader, deadline);
      } catch (error) {
        return { kind: 'error', error: toWireError(error) };
      }
    });
  }

  /**
   * RPC: one coordinator's share of a getMany: a get per key (distinct binary strings) under one deadline, the keys
   * it locks loaded through `loadMany` in batches (see aside-get-many.ts). Never throws.
   */
  async getManyValues(request: GetManyRequest, loadMany?: LoadManyCallback): Promise<GetManyReply> {
    const { keys, ttlMs, timeoutMs, requestId } = request ?? {};
    if (!Array.isArray(keys) || keys.length === 0 || !keys.every((key) => validRequest(key, ttlMs)) || new Set(keys).size !== keys.length ||
      !validRequest(requestId, timeoutMs)) {
      return badRequest('getManyValues needs { keys: distinct strings (at least one), ttlMs: positive integer, timeoutMs: positive integer, requestId: string }');
    }
    if (loadMany !== undefined && typeof loadMany !== 'function') return badRequest('getManyValues: loadMany must be a function');
    this.#calls.getMany++;
    const overloaded = this.#active.overloaded(keys.length);
    if (overloaded !== undefined) return overloaded;
    this.#touch();
    return this.#active.run(keys.length, requestId, timeoutMs, `getMany(${keys.length} keys, first ${describeKey(keys[0]!)})`,
      async (deadline): Promise<GetManyReply> => ({ kind: 'values', replies: await runGetMany(this.#gets, keys, ttlMs, loadMany, deadline) }));
  }

  /** RPC: the caller's AbortSignal fired; the get gives up now (releasing its lock if it holds one). */
  cancelGet(requestId: string): void {
    this.#active.cancel(requestId);
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
      bridge: this.#bridge.bridgeUrl,
      clientId: this.#clientId.current,
      entries: this.#reads.size,
      bytes: this.#reads.bytes,
      activeGets: this.#active.count,
      waitingGets: this.#gets.waiting,
      watchedKeys: this.#waiters.size,
      commandsInFlight: this.#bridge.inFlight,
      peekCalls: this.#calls.peek,
      getCalls: this.#calls.get,
      getManyCalls: this.#calls.getMany,
    };
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
    this.#window.clear();
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
