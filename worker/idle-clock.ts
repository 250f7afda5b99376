// When a coordinator goes idle: after `idleMs` with no RPC, and never while one is in progress. Idle, it deletes its
// markers and closes its socket (the coordinator's part); this file only keeps the time.

export class IdleClock {
  readonly #idleMs: number;
  readonly #onIdle: () => void;
  #lastActivityAt = Date.now();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** RPCs in progress (gets, dels, pings). */
  #busy = 0;

  constructor(idleMs: number, onIdle: () => void) {
    this.#idleMs = idleMs;
    this.#onIdle = onIdle;
  }

  /** True while an RPC is in progress or a new idle check is pending (activity came after the last one fired). */
  get awake(): boolean {
    return this.#busy > 0 || this.#timer !== undefined;
  }

  /** Activity now: the idle period starts over. */
  touch(): void {
    this.#lastActivityAt = Date.now();
    if (this.#timer === undefined) this.#timer = setTimeout(() => this.#check(), this.#idleMs);
  }

  /** An RPC starts; the coordinator stays awake until the matching `end`. */
  begin(): void {
    this.#busy++;
    this.touch();
  }

  end(): void {
    this.#busy--;
    this.touch();
  }

  #check(): void {
    this.#timer = undefined;
    const quietMs = Date.now() - this.#lastActivityAt;
    if (this.#busy > 0 || quietMs < this.#idleMs) {
      this.#timer = setTimeout(() => this.#check(), this.#busy > 0 ? this.#idleMs : this.#idleMs - quietMs);
      return;
    }
    this.#onIdle();
  }
}
