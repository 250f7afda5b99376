// The coordinator's local copy and the TRACKED.GETs that fill it: concurrent reads of a key share one command, and an
// invalidation poisons a read in flight, so a reply that may predate the change is returned but never kept. Keys are
// binary strings (shared/bytes.ts); values are the exact bytes read.
import { wireKey } from '../shared/bytes.ts';
import { ProtocolError } from '../shared/errors.ts';
import { TRACKED_GET } from '../shared/protocol.ts';
import type { RespValue } from '../shared/resp/index.ts';
import type { BridgeSocket } from './bridge-socket.ts';
import { LocalCache } from './local-cache.ts';
import type { Entry, LocalCacheOptions } from './local-cache.ts';

export interface ReadResult {
  readonly value: Uint8Array | null;
  /** True when served from the local copy. */
  readonly local: boolean;
  /**
   * True when a push will name the key if it changes: a local copy, or a read the bridge reported cacheable. A read
   * made while the bridge's tracking was down registered no reader, so nothing would ever wake a wait on it.
   */
  readonly watched: boolean;
  /** When the server's key expires, as far as this read knows (see `Entry.serverUntil`); 0 for a read not kept. */
  readonly serverUntil: number;
  readonly serverExact: boolean;
}

const UNKNOWN_EXPIRY = { serverUntil: 0, serverExact: false } as const;

/** A TRACKED.GET in flight; a push for its key poisons it so its reply is not kept. */
interface ReadFlight {
  poisoned: boolean;
  promise: Promise<ReadResult>;
}

/** A local entry as a read result. */
function localResult(entry: Entry): ReadResult {
  return { value: entry.value, local: true, watched: true, serverUntil: entry.serverUntil, serverExact: entry.serverExact };
}

function parseTrackedGet(reply: RespValue): { value: Uint8Array | null; ttlMs: number; cacheable: boolean } {
  if (Array.isArray(reply) && reply.length === 3) {
    const [value, ttlMs, cacheable] = reply;
    if ((value === null || value instanceof Uint8Array) && (typeof ttlMs === 'number' || typeof ttlMs === 'bigint') && typeof cacheable === 'boolean') {
      return { value, ttlMs: Number(ttlMs), cacheable };
    }
  }
  throw new ProtocolError('ERR_BRIDGE_REPLY', `unexpected reply to ${TRACKED_GET}: expected [value, ttlMs, cacheable]`);
}

export class TrackedReads {
  readonly #bridge: BridgeSocket;
  readonly #cache: LocalCache;
  readonly #flights = new Map<string, ReadFlight>();
  /** Bumped by every `clear`: a reply sent before one must not fill the copy after it. */
  #generation = 0;

  constructor(bridge: BridgeSocket, cache: LocalCacheOptions) {
    this.#bridge = bridge;
    this.#cache = new LocalCache(cache);
  }

  /** Entries in the local copy. */
  get size(): number {
    return this.#cache.size;
  }

  /** Bytes held by the local copy. */
  get bytes(): number {
    return this.#cache.bytes;
  }

  /** The live local copy (bytes, or null for a cached miss), or `undefined` when there is none; sends nothing. */
  peek(key: string): Uint8Array | null | undefined {
    return this.#cache.get(key);
  }

  /** The live local entry (value and what is known of the server's expiry), or `undefined`; sends nothing. */
  peekEntry(key: string): Entry | undefined {
    return this.#cache.entry(key);
  }

  /**
   * A local copy, a shared in-flight read of the key, or a new TRACKED.GET (`fresh` forces the latter). `capMs` caps
   * how long we keep the value; `staleMs` asks the server for that much more of the PTTL, so a stale-while-revalidate
   * get learns when the key's fresh part ends (stale-window.ts). `deadlineAt` (epoch ms) goes to `BridgeSocket.command`.
   */
  read(key: string, capMs: number, deadlineAt: number, fresh = false, staleMs = 0): Promise<ReadResult> {
    if (!fresh) {
      const entry = this.#cache.entry(key);
      if (entry !== undefined) return Promise.resolve(localResult(entry));
      const flight = this.#flights.get(key);
      if (flight !== undefined) return flight.promise;
    }
    const flight: ReadFlight = { poisoned: false, promise: Promise.resolve({ value: null, local: false, watched: false, ...UNKNOWN_EXPIRY }) };
    const sentAt = Date.now();
    const askMs = Math.max(1, Math.floor(capMs + staleMs));
    const done = () => { if (this.#flights.get(key) === flight) this.#flights.delete(key); };
    flight.promise = this.#bridge.command([TRACKED_GET, wireKey(key), askMs], deadlineAt).then((reply) => {
      done();
      const { value, ttlMs, cacheable } = parseTrackedGet(reply);
      // ttlMs is min(PTTL, askMs): the PTTL itself when below what we asked for, else a lower bound of it.
      const server = { until: sentAt + ttlMs, exact: ttlMs < askMs };
      if (cacheable && !flight.poisoned && ttlMs > 0) this.#cache.set(key, value, Math.min(ttlMs, capMs), sentAt, server);
      // A poisoned read was overtaken by a change, whose push the bridge sends us (before the reply if we were not
      // yet a reader); only a read the bridge could not track leaves a wait without a wake-up.
      return { value, local: false, watched: cacheable || flight.poisoned, serverUntil: server.until, serverExact: server.exact };
    }, (error: unknown) => {
      done();
      throw error;
    });
    this.#flights.set(key, flight);
    return flight.promise;
  }

  /** The current clear generation, taken when sending a command whose reply may {@link fill} the copy. */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Keeps a value the bridge reported cacheable (a TRACKED.SETKEY reply asked for `askMs`, as `read` asks), unless a
   * `clear` came since `generation`.
   */
  fill(key: string, value: Uint8Array | null, ttlMs: number, askMs: number, capMs: number, sentAt: number, generation: number): void {
    if (generation !== this.#generation || ttlMs <= 0) return;
    this.#cache.set(key, value, Math.min(ttlMs, capMs), sentAt, { until: sentAt + ttlMs, exact: ttlMs < askMs });
  }

  /** Drops the key's copy and poisons its read in flight. */
  invalidate(key: string): void {
    this.#cache.delete(key);
    const flight = this.#flights.get(key);
    if (flight !== undefined) {
      flight.poisoned = true;
      this.#flights.delete(key);
    }
  }

  /** Drops every copy and poisons every read in flight (a flush, a disconnect, going idle). */
  clear(): void {
    this.#generation++;
    this.#cache.clear();
    for (const flight of this.#flights.values()) flight.poisoned = true;
    this.#flights.clear();
  }
}
