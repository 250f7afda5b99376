// Pending-read tokens, the "caching in progress" placeholders of Valkey's client-side caching docs: one per
// TRACKED.GET, registered BEFORE the read is sent and released when its reply is written. Anything that could make
// the read stale while it is in flight poisons it.

/** A tracked read in flight. A poisoned (any hit), untracked or old-epoch read is never cacheable. */
export interface PendingRead {
  /** The key as a latin1 string (injective for bytes). */
  readonly key: string;
  /** The epoch the read was sent in. */
  readonly epoch: number;
  /** Tracking was established for that epoch when the read was sent. */
  readonly tracked: boolean;
  /**
   * Valkey's invalidations of the key since the read was sent; infinite after a flush, a lost connection or a write
   * through the bridge by another command (never mistaken for the one invalidation a compare-and-set's own write
   * causes: with the subscriber's pushes late or lost, counting it so would keep a value the write just removed).
   */
  hits: number;
  /** Called on every poisoning: a tracked compare-and-set waits here for its own write's invalidation. */
  onPoison?: () => void;
}

export class PendingReads {
  readonly #byKey = new Map<string, Set<PendingRead>>();
  #count = 0;

  /** Reads registered and not yet released. */
  get size(): number {
    return this.#count;
  }

  begin(key: string, epoch: number, tracked: boolean): PendingRead {
    const token: PendingRead = { key, epoch, tracked, hits: 0 };
    let set = this.#byKey.get(key);
    if (!set) {
      set = new Set();
      this.#byKey.set(key, set);
    }
    set.add(token);
    this.#count++;
    return token;
  }

  end(token: PendingRead): void {
    const set = this.#byKey.get(token.key);
    if (!set?.delete(token)) return;
    this.#count--;
    if (set.size === 0) this.#byKey.delete(token.key);
  }

  /** Valkey invalidated `keys`. */
  poison(keys: Iterable<string>): void {
    this.#hitKeys(keys, 1);
  }

  /** A write through the bridge changed `keys`: no read of them in flight may be cached, except the writer's own. */
  overwrite(keys: Iterable<string>, except?: PendingRead): void {
    this.#hitKeys(keys, Number.POSITIVE_INFINITY, except);
  }

  /** Reads of `keys` that must not be cached whatever follows (a read redirected to another node). */
  spoil(keys: Iterable<string>): void {
    this.#hitKeys(keys, Number.POSITIVE_INFINITY);
  }

  /** A flush or a lost connection: every read in flight may be stale. */
  poisonAll(): void {
    for (const set of this.#byKey.values()) for (const token of set) hit(token, Number.POSITIVE_INFINITY);
  }

  #hitKeys(keys: Iterable<string>, count: number, except?: PendingRead): void {
    for (const key of keys) {
      const set = this.#byKey.get(key);
      if (set) for (const token of set) if (token !== except) hit(token, count);
    }
  }
}

function hit(token: PendingRead, count: number): void {
  token.hits += count;
  token.onPoison?.();
}
