// A coordinator's gets in progress: how many it serves (bounded by VALKEYASIDE_MAX_PENDING_GETS), each call's
// deadline by request id (so the caller's `cancelGet` reaches it), and the idle clock they keep awake.
import { ValkeyasideError } from '../shared/errors.ts';
import { toWireError } from './errors.ts';
import type { WireError } from './errors.ts';
import type { IdleClock } from './idle-clock.ts';
import { Deadline } from './waiters.ts';

export class ActiveGets {
  readonly #idle: IdleClock;
  readonly #maxPendingGets: number;
  readonly #deadlines = new Map<string, Deadline>();
  #count = 0;

  constructor(idle: IdleClock, maxPendingGets: number) {
    this.#idle = idle;
    this.#maxPendingGets = maxPendingGets;
  }

  /** Gets in progress now (a getMany counts one per key). */
  get count(): number {
    return this.#count;
  }

  /** The ERR_OVERLOADED reply when `count` more gets would pass VALKEYASIDE_MAX_PENDING_GETS. */
  overloaded(count: number): { kind: 'error'; error: WireError } | undefined {
    if (this.#count + count <= this.#maxPendingGets) return undefined;
    return { kind: 'error', error: toWireError(new ValkeyasideError('ERR_OVERLOADED',
      `coordinator has ${this.#count} gets in progress (VALKEYASIDE_MAX_PENDING_GETS); retry later or use more shards`)) };
  }

  /** Runs one call of `count` gets under a deadline of `timeoutMs` that `cancel(requestId)` can cut short. */
  async run<R>(count: number, requestId: string, timeoutMs: number, what: string, work: (deadline: Deadline) => Promise<R>): Promise<R> {
    this.#count += count;
    this.#idle.begin();
    const deadline = new Deadline(timeoutMs, what);
    this.#deadlines.set(requestId, deadline);
    try {
      return await work(deadline);
    } finally {
      deadline.dispose();
      if (this.#deadlines.get(requestId) === deadline) this.#deadlines.delete(requestId);
      this.#count -= count;
      this.#idle.end();
    }
  }

  /** The caller's AbortSignal fired: its call gives up now (releasing its lock if it holds one). */
  cancel(requestId: string): void {
    this.#deadlines.get(requestId)?.cancel('was aborted by the caller');
  }
}
