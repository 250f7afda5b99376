// Which sessions read which keys: key → readers, and per reader an insertion-ordered set bounded by maxKeys.
// One-shot like Valkey's default tracking: `take` removes a key's readers as it returns them. Keys are strings
// made injectively from bytes (latin1), never UTF-8 decoded. A key with one reader stores it directly, not in a Set:
// most keys have one reader, and a Set per key was most of the memory per tracked pair (docs/benchmarks.md).

/** Two or more readers of a key; its own class so that a lone reader that is itself a Set is never mistaken for one. */
class Readers<S> extends Set<S> {}

export class KeyIndex<S> {
  readonly #readers = new Map<string, S | Readers<S>>();
  readonly #bySession = new Map<S, Set<string>>();
  #pairCount = 0;

  /** @param maxKeysPerSession registrations one session may hold; adding past it evicts that session's oldest key. */
  constructor(readonly maxKeysPerSession: number) {
    if (!Number.isInteger(maxKeysPerSession) || maxKeysPerSession < 1) {
      throw new RangeError(`maxKeysPerSession must be a positive integer, got ${maxKeysPerSession}`);
    }
  }

  /** Number of (key, session) registrations. */
  get size(): number {
    return this.#pairCount;
  }

  /** Number of keys `session` is registered for. */
  keysOf(session: S): number {
    return this.#bySession.get(session)?.size ?? 0;
  }

  /** True when `session` is registered for `key`. */
  has(session: S, key: string): boolean {
    const readers = this.#readers.get(key);
    return readers instanceof Readers ? readers.has(session) : readers === session;
  }

  /**
   * Registers `session` as a reader of `key` (moving it to the newest position if already there).
   * @returns the key evicted to stay within the bound (the caller must send that session a push for it), or null.
   */
  add(session: S, key: string): string | null {
    let keys = this.#bySession.get(session);
    if (!keys) {
      keys = new Set();
      this.#bySession.set(session, keys);
    }
    if (keys.has(key)) {
      keys.delete(key);
      keys.add(key);
      return null;
    }
    keys.add(key);
    // `keys` did not hold `key`, so `session` is not among its readers yet.
    const readers = this.#readers.get(key);
    if (readers === undefined) this.#readers.set(key, session);
    else if (readers instanceof Readers) readers.add(session);
    else this.#readers.set(key, new Readers([readers, session]));
    this.#pairCount++;
    if (keys.size <= this.maxKeysPerSession) return null;
    const oldest = keys.values().next().value as string;
    this.#unlink(session, oldest, keys);
    return oldest;
  }

  /** Removes and returns every reader of `key` (empty when none). */
  take(key: string): S[] {
    const readers = this.#readers.get(key);
    if (readers === undefined) return [];
    this.#readers.delete(key);
    const out = readers instanceof Readers ? [...readers] : [readers];
    for (const session of out) {
      const keys = this.#bySession.get(session)!;
      keys.delete(key);
      if (keys.size === 0) this.#bySession.delete(session);
    }
    this.#pairCount -= out.length;
    return out;
  }

  /** Forgets every registration of `session` (it closed). */
  removeSession(session: S): void {
    const keys = this.#bySession.get(session);
    if (!keys) return;
    for (const key of keys) this.#dropReader(key, session);
    this.#pairCount -= keys.size;
    this.#bySession.delete(session);
  }

  /** Forgets everything (after a flush or an epoch change, when every session is sent the null push). */
  clear(): void {
    this.#readers.clear();
    this.#bySession.clear();
    this.#pairCount = 0;
  }

  #unlink(session: S, key: string, keys: Set<string>): void {
    keys.delete(key);
    this.#dropReader(key, session);
    this.#pairCount--;
  }

  /** Removes `session` from the readers of `key`; a Set left with one reader goes back to storing it directly. */
  #dropReader(key: string, session: S): void {
    const readers = this.#readers.get(key);
    if (!(readers instanceof Readers)) {
      this.#readers.delete(key);
      return;
    }
    readers.delete(session);
    if (readers.size === 1) this.#readers.set(key, readers.values().next().value as S);
  }
}
