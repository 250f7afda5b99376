// Routes invalidations to the sessions that read the keys, over the key index: Valkey's invalidations batched per
// session per turn, writes through the bridge delivered at once (before the writer's reply), flushes to everyone.
import { KeyIndex } from './key-index.ts';

/** What the router needs from a session. */
export interface PushTarget {
  /**
   * Queues an invalidation push: `keys` (latin1 strings) or null for "drop everything". `immediate` sends it at the
   * end of this turn, ahead of any reply written after this call (a write's reply is about to be written); otherwise
   * it goes out with the session's next frame or on the next turn.
   */
  queuePush(keys: readonly string[] | null, immediate: boolean): void;
}

export class KeyPushRouter<S extends PushTarget> {
  readonly index: KeyIndex<S>;

  readonly #sessions: () => Iterable<S>;

  /** @param sessions every open session (for flushes) */
  constructor(maxTrackedKeys: number, sessions: () => Iterable<S>) {
    this.#sessions = sessions;
    this.index = new KeyIndex<S>(maxTrackedKeys);
  }

  /** `session` was just written a cacheable value of `key`; an evicted older key is pushed to it. */
  registerRead(session: S, key: string): void {
    const evicted = this.index.add(session, key);
    if (evicted !== null) session.queuePush([evicted], false);
  }

  /** Pushes `keys` to their readers (one-shot). @returns the number of (key, session) pushes queued. */
  invalidate(keys: readonly string[], immediate: boolean): number {
    if (keys.length === 1) {
      const readers = this.index.take(keys[0]!);
      for (const session of readers) session.queuePush(keys, immediate);
      return readers.length;
    }
    const perSession = new Map<S, string[]>();
    for (const key of keys) {
      for (const session of this.index.take(key)) {
        const list = perSession.get(session);
        if (list) list.push(key);
        else perSession.set(session, [key]);
      }
    }
    let delivered = 0;
    for (const [session, list] of perSession) {
      session.queuePush(list, immediate);
      delivered += list.length;
    }
    return delivered;
  }

  /** Everything is invalid (FLUSHALL, or a new epoch): forget every registration, null push to every session. */
  flushAll(): number {
    this.index.clear();
    let n = 0;
    for (const session of this.#sessions()) {
      session.queuePush(null, false);
      n++;
    }
    return n;
  }

  removeSession(session: S): void {
    this.index.removeSession(session);
  }
}
