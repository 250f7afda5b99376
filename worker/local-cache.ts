// A coordinator's local copies of values read from the bridge: bounded by entries and bytes (least recently used
// first out), each entry expiring at the ttl the bridge granted (never after the server's PTTL). Keys are binary
// strings (shared/bytes.ts), values the exact bytes Valkey returned.

export interface Entry {
  readonly value: Uint8Array | null;
  readonly expiresAt: number;
  readonly bytes: number;
  /**
   * When the server's key expires (epoch ms), as far as the read knew: exact when `serverExact`, else a lower bound
   * (the read's cap hid the rest of the PTTL). Stale-while-revalidate judges freshness by it (stale-window.ts).
   */
  readonly serverUntil: number;
  readonly serverExact: boolean;
}

/** Bytes counted per entry on top of key and value, for the Map slot and the entry object. */
export const ENTRY_OVERHEAD_BYTES = 64;

export interface LocalCacheOptions {
  /** Most entries kept; 0 disables the cache. */
  readonly maxEntries: number;
  /** Most bytes kept (key and value bytes, plus 64 per entry). */
  readonly maxBytes: number;
  /** Clock in ms; `Date.now` by default. */
  readonly now?: () => number;
}

export class LocalCache {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #now: () => number;
  #bytes = 0;

  constructor(options: LocalCacheOptions) {
    this.#maxEntries = options.maxEntries;
    this.#maxBytes = options.maxBytes;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The live value (bytes, or null for a cached miss), or `undefined` when absent or expired. */
  get(key: string): Uint8Array | null | undefined {
    return this.entry(key)?.value;
  }

  /** The live entry, or `undefined` when absent or expired (counts as a use, like `get`). */
  entry(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#remove(key, entry);
      return undefined;
    }
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry;
  }

  /**
   * Keeps a value until `startedAt + ttlMs`. `startedAt` is when the read was sent, so the local copy expires no
   * later than the server's key. `server` says when the server's key expires (default: exactly then). Returns false
   * when the entry does not fit the bounds at all.
   */
  set(key: string, value: Uint8Array | null, ttlMs: number, startedAt = this.#now(),
    server: { readonly until: number; readonly exact: boolean } = { until: startedAt + ttlMs, exact: true }): boolean {
    const old = this.#entries.get(key);
    if (old !== undefined) this.#remove(key, old);
    const expiresAt = startedAt + ttlMs;
    const bytes = key.length + (value?.length ?? 0) + ENTRY_OVERHEAD_BYTES;
    if (ttlMs <= 0 || expiresAt <= this.#now() || bytes > this.#maxBytes || this.#maxEntries === 0) return false;
    this.#entries.set(key, { value, expiresAt, bytes, serverUntil: server.until, serverExact: server.exact });
    this.#bytes += bytes;
    for (const [oldestKey, oldest] of this.#entries) {
      if (this.#entries.size <= this.#maxEntries && this.#bytes <= this.#maxBytes) break;
      this.#remove(oldestKey, oldest);
    }
    return true;
  }

  delete(key: string): void {
    const entry = this.#entries.get(key);
    if (entry !== undefined) this.#remove(key, entry);
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }

  #remove(key: string, entry: Entry): void {
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
  }
}
