// The coordinator's local copy and the TRACKED.GETs that fill it: concurrent reads of a key share one command, and an
// invalidation poisons a read in flight, so a reply that may predate the change is returned but never kept.
import { ProtocolError } from '../shared/errors.ts';
import { TRACKED_GET } from '../shared/protocol.ts';
import type { RespValue } from '../shared/resp/index.ts';
import type { BridgeSocket } from './bridge-socket.ts';
import { LocalCache } from './local-cache.ts';
import type { LocalCacheOptions } from './local-cache.ts';

export interface ReadResult {
  readonly value: string | null;
  /** True when served from the local copy. */
  readonly local: boolean;
}

/** A TRACKED.GET in flight; a push for its key poisons it so its reply is not kept. */
interface ReadFlight {
  poisoned: boolean;
  promise: Promise<ReadResult>;
}

const decoder = new TextDecoder();

function parseTrackedGet(reply: RespValue): { value: string | null; ttlMs: number; cacheable: boolean } {
  if (Array.isArray(reply) && reply.length === 3) {
    const [value, ttlMs, cacheable] = reply;
    if ((value === null || value instanceof Uint8Array) && (typeof ttlMs === 'number' || typeof ttlMs === 'bigint') && typeof cacheable === 'boolean') {
      return { value: value === null ? null : decoder.decode(value), ttlMs: Number(ttlMs), cacheable };
    }
  }
  throw new ProtocolError('ERR_BRIDGE_REPLY', `unexpected reply to ${TRACKED_GET}: expected [value, ttlMs, cacheable]`);
}

export class TrackedReads {
  readonly #bridge: BridgeSocket;
  readonly #cache: LocalCache;
  readonly #flights = new Map<string, ReadFlight>();

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

  /** The live local copy (a string, or null for a cached miss), or `undefined` when there is none; sends nothing. */
  peek(key: string): string | null | undefined {
    return this.#cache.get(key);
  }

  /**
   * A local copy, a shared in-flight read of the key, or a new TRACKED.GET (`fresh` forces the latter). `capMs` caps
   * how long the server lets us keep the value; `deadlineAt` (epoch ms) is passed on to `BridgeSocket.command`.
   */
  read(key: string, capMs: number, deadlineAt: number, fresh = false): Promise<ReadResult> {
    if (!fresh) {
      const value = this.#cache.get(key);
      if (value !== undefined) return Promise.resolve({ value, local: true });
      const flight = this.#flights.get(key);
      if (flight !== undefined) return flight.promise;
    }
    const flight: ReadFlight = { poisoned: false, promise: Promise.resolve({ value: null, local: false }) };
    const sentAt = Date.now();
    const done = () => { if (this.#flights.get(key) === flight) this.#flights.delete(key); };
    flight.promise = this.#bridge.command([TRACKED_GET, key, Math.max(1, Math.floor(capMs))], deadlineAt).then((reply) => {
      done();
      const { value, ttlMs, cacheable } = parseTrackedGet(reply);
      if (cacheable && !flight.poisoned && ttlMs > 0) this.#cache.set(key, value, ttlMs, sentAt);
      return { value, local: false };
    }, (error: unknown) => {
      done();
      throw error;
    });
    this.#flights.set(key, flight);
    return flight.promise;
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
    this.#cache.clear();
    for (const flight of this.#flights.values()) flight.poisoned = true;
    this.#flights.clear();
  }
}
