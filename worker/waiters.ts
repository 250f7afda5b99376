// Per-key wake-up signals and per-get deadlines, the two things a coordinator's get waits on. A get watches a key
// BEFORE it reads it (as Go's valkeyaside registers its channel before DoCache), so no push is missed in between.
import { TimeoutError } from '../shared/errors.ts';
import { MAX_TIMER_MS } from './options.ts';

/** One get's interest in one key. */
export interface Watch {
  /** Resolves (never rejects) when the key is invalidated: a push, a local del, a flush or a disconnect. */
  readonly fired: Promise<void>;
  /** True once `fired` has resolved. */
  readonly hasFired: boolean;
  /** Drops this interest; the last release of a key frees its signal. Safe to call twice. */
  release(): void;
}

class Signal {
  readonly promise: Promise<void>;
  resolve!: () => void;
  fired = false;
  refs = 0;
  constructor() {
    this.promise = new Promise<void>((resolve) => { this.resolve = resolve; });
  }
}

/** Keys some get is waiting on. Bounded by the number of gets in progress: released watches are freed. */
export class Waiters {
  readonly #signals = new Map<string, Signal>();

  /** Keys with at least one watch. */
  get size(): number {
    return this.#signals.size;
  }

  watch(key: string): Watch {
    let signal = this.#signals.get(key);
    if (signal === undefined) {
      signal = new Signal();
      this.#signals.set(key, signal);
    }
    signal.refs++;
    const current = signal;
    let released = false;
    const signals = this.#signals;
    return {
      fired: current.promise,
      get hasFired() { return current.fired; },
      release() {
        if (released) return;
        released = true;
        current.refs--;
        if (current.refs === 0 && signals.get(key) === current) signals.delete(key);
      },
    };
  }

  /** Fires every watch on `key`; later watches get a fresh signal. */
  wake(key: string): void {
    const signal = this.#signals.get(key);
    if (signal === undefined) return;
    this.#signals.delete(key);
    signal.fired = true;
    signal.resolve();
  }

  /** Fires every watch (a flush or a disconnect). */
  wakeAll(): void {
    const all = [...this.#signals.values()];
    this.#signals.clear();
    for (const signal of all) {
      signal.fired = true;
      signal.resolve();
    }
  }
}

/**
 * A get's deadline: its ttl or the caller's tighter timeout, or an explicit cancel (the caller's AbortSignal).
 * `race` makes any wait give up with a TimeoutError when it passes. Call `dispose` when the get ends.
 */
export class Deadline {
  readonly at: number;
  readonly #expired: Promise<never>;
  readonly #now: () => number;
  #reject!: (error: TimeoutError) => void;
  #error: TimeoutError | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** @param what names the operation in the error message, e.g. `get("user:1")`. */
  constructor(timeoutMs: number, readonly what: string, now: () => number = Date.now) {
    this.#now = now;
    this.at = now() + timeoutMs;
    this.#expired = new Promise<never>((_, reject) => { this.#reject = reject; });
    this.#expired.catch(() => {});
    this.#timer = setTimeout(() => this.#expire(`${what} timed out after ${timeoutMs} ms`), Math.min(Math.max(timeoutMs, 0), MAX_TIMER_MS));
  }

  /** The TimeoutError once expired or cancelled, else undefined. */
  get error(): TimeoutError | undefined {
    return this.#error;
  }

  get expired(): boolean {
    return this.#error !== undefined || this.#now() >= this.at;
  }

  remainingMs(): number {
    return Math.max(0, this.at - this.#now());
  }

  /** Expires now, e.g. because the caller's AbortSignal fired. */
  cancel(reason: string): void {
    this.#expire(`${this.what} ${reason}`);
  }

  /** @throws TimeoutError when the deadline has passed. */
  check(): void {
    if (this.#error === undefined && this.#now() >= this.at) this.#expire(`${this.what} timed out`);
    if (this.#error !== undefined) throw this.#error;
  }

  /** Settles like `promise`, or rejects with the TimeoutError when the deadline passes first. */
  race<T>(promise: Promise<T>): Promise<T> {
    if (this.#error !== undefined) {
      promise.catch(() => {});
      return Promise.reject(this.#error);
    }
    return Promise.race([promise, this.#expired]);
  }

  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #expire(message: string): void {
    if (this.#error !== undefined) return;
    this.dispose();
    this.#error = new TimeoutError(message);
    this.#reject(this.#error);
  }
}
