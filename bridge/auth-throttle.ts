// Throttling of failed authentication per source address: after `maxFailures` failed upgrades from one address within
// a window, its upgrades are refused with 429 until the window ends, without looking at the token (no guessing at
// full speed, no hashing work for the guesser). Off by default: Workers reach the bridge from shared egress addresses.

/** Addresses remembered at most; past it the oldest window is forgotten (an attacker rotating addresses gains nothing). */
const MAX_ADDRESSES = 10_000;

export class AuthThrottle {
  /** address → failures in its current window; Map order is the order windows started, oldest first. */
  readonly #windows = new Map<string, { startedAt: number; failures: number }>();

  readonly #maxFailures: number;
  readonly #windowMs: number;

  /** @param maxFailures 0 turns throttling off */
  constructor(maxFailures: number, windowMs: number) {
    this.#maxFailures = maxFailures;
    this.#windowMs = windowMs;
  }

  /** Ms until `address` may try again, or 0 when it may now. */
  retryAfterMs(address: string | undefined, now: number): number {
    if (this.#maxFailures === 0 || address === undefined) return 0;
    const window = this.#current(address, now);
    return window && window.failures >= this.#maxFailures ? window.startedAt + this.#windowMs - now : 0;
  }

  /** An upgrade from `address` failed authentication. */
  failed(address: string | undefined, now: number): void {
    if (this.#maxFailures === 0 || address === undefined) return;
    const window = this.#current(address, now);
    if (window) {
      window.failures++;
      return;
    }
    if (this.#windows.size >= MAX_ADDRESSES) this.#windows.delete(this.#windows.keys().next().value!);
    this.#windows.set(address, { startedAt: now, failures: 1 });
  }

  #current(address: string, now: number): { startedAt: number; failures: number } | undefined {
    const window = this.#windows.get(address);
    if (window && now - window.startedAt >= this.#windowMs) {
      this.#windows.delete(address);
      return undefined;
    }
    return window;
  }
}
