// When a coordinator may next try to open its bridge socket: full-jitter exponential backoff, so the reconnects of
// many coordinators after a bridge restart spread out instead of arriving together.

export class ReconnectBackoff {
  readonly #baseMs: number;
  readonly #maxMs: number;
  #failures = 0;
  #nextAttemptAt = 0;

  constructor(baseMs: number, maxMs: number) {
    this.#baseMs = baseMs;
    this.#maxMs = maxMs;
  }

  /** Epoch ms before which no attempt starts. */
  get nextAttemptAt(): number {
    return this.#nextAttemptAt;
  }

  /** An attempt failed or a socket dropped: the next waits a random time up to base × 2^(failures−1), capped. */
  failed(): void {
    this.#failures++;
    const ceiling = Math.min(this.#maxMs, this.#baseMs * 2 ** Math.min(this.#failures - 1, 30));
    this.#nextAttemptAt = Date.now() + Math.random() * ceiling;
  }

  /** The socket works (a reply came): the next failure starts from a short, random wait again. */
  succeeded(): void {
    this.#failures = 0;
  }
}
