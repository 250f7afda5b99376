// Which sessions read which keys: key → readers, and per reader an insertion-ordered set bounded by maxKeys.
// One-shot like Valkey's default tracking: `take` removes a key's readers as it returns them. Keys are strings
// made injectively from bytes (latin1), never UTF-8 decoded.

export class KeyIndex<S> {
  private readonly readers = new Map<string, Set<S>>();
  private readonly bySession = new Map<S, Set<string>>();
  private pairCount = 0;

  /** @param maxKeysPerSession registrations one session may hold; adding past it evicts that session's oldest key. */
  constructor(readonly maxKeysPerSession: number) {
    if (!Number.isInteger(maxKeysPerSession) || maxKeysPerSession < 1) {
      throw new RangeError(`maxKeysPerSession must be a positive integer, got ${maxKeysPerSession}`);
    }
  }

  /** Number of (key, session) registrations. */
  get size(): number {
    return this.pairCount;
  }

  /** Number of keys `session` is registered for. */
  keysOf(session: S): number {
    return this.bySession.get(session)?.size ?? 0;
  }

  /** True when `session` is registered for `key`. */
  has(session: S, key: string): boolean {
    return this.readers.get(key)?.has(session) ?? false;
  }

  /**
   * Registers `session` as a reader of `key` (moving it to the newest position if already there).
   * @returns the key evicted to stay within the bound (the caller must send that session a push for it), or null.
   */
  add(session: S, key: string): string | null {
    let keys = this.bySession.get(session);
    if (!keys) {
      keys = new Set();
      this.bySession.set(session, keys);
    }
    if (keys.has(key)) {
      keys.delete(key);
      keys.add(key);
      return null;
    }
    keys.add(key);
    let sessions = this.readers.get(key);
    if (!sessions) {
      sessions = new Set();
      this.readers.set(key, sessions);
    }
    sessions.add(session);
    this.pairCount++;
    if (keys.size <= this.maxKeysPerSession) return null;
    const oldest = keys.values().next().value as string;
    this.unlink(session, oldest, keys);
    return oldest;
  }

  /** Removes and returns every reader of `key` (empty when none). */
  take(key: string): S[] {
    const sessions = this.readers.get(key);
    if (!sessions) return [];
    this.readers.delete(key);
    const out = [...sessions];
    for (const session of out) {
      const keys = this.bySession.get(session)!;
      keys.delete(key);
      if (keys.size === 0) this.bySession.delete(session);
    }
    this.pairCount -= out.length;
    return out;
  }

  /** Forgets every registration of `session` (it closed). */
  removeSession(session: S): void {
    const keys = this.bySession.get(session);
    if (!keys) return;
    for (const key of keys) {
      const sessions = this.readers.get(key)!;
      sessions.delete(session);
      if (sessions.size === 0) this.readers.delete(key);
    }
    this.pairCount -= keys.size;
    this.bySession.delete(session);
  }

  /** Forgets everything (after a flush or an epoch change, when every session is sent the null push). */
  clear(): void {
    this.readers.clear();
    this.bySession.clear();
    this.pairCount = 0;
  }

  private unlink(session: S, key: string, keys: Set<string>): void {
    keys.delete(key);
    const sessions = this.readers.get(key)!;
    sessions.delete(session);
    if (sessions.size === 0) this.readers.delete(key);
    this.pairCount--;
  }
}
