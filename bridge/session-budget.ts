// One session's budget of commands in flight: a window that starts small (slow start), grows by one per small
// reply, and shrinks to maxOwedBytes / (the session's recent reply size) when replies are big. It bounds the reply
// bytes one session can pull through the shared data connection before the bridge knows how big its replies are.
import type { RespValue } from '../shared/resp/types.ts';

/** Commands a new session may have in flight before its first replies are measured. */
export const INITIAL_WINDOW = 16;
/** Per-reply decay of the reply-size estimate, so that a session that stopped reading big values regains its window. */
const DECAY = 0.9;

/** Approximate encoded size of a reply (payload bytes plus a little framing), without encoding it. */
export function replyBytes(value: RespValue): number {
  if (value instanceof Uint8Array) return value.length + 16;
  if (Array.isArray(value)) {
    let n = 16;
    for (const item of value) n += replyBytes(item as RespValue);
    return n;
  }
  return 16;
}

export class SessionBudget {
  #window: number;
  #estimateBytes = 0;

  readonly #maxInflight: number;
  readonly #maxOwedBytes: number;

  constructor(maxInflight: number, maxOwedBytes: number) {
    this.#maxInflight = maxInflight;
    this.#maxOwedBytes = maxOwedBytes;
    this.#window = Math.min(INITIAL_WINDOW, maxInflight);
  }

  /** Commands this session may have in flight now. */
  get limit(): number {
    return this.#window;
  }

  /** May another command be dispatched, with `inflight` unanswered and `owedBytes` queued towards the client? */
  allows(inflight: number, owedBytes: number): boolean {
    return inflight < this.#window && owedBytes < this.#maxOwedBytes;
  }

  /** A reply of `bytes` was written: grow the window when replies are small, shrink it when they are big. */
  replied(bytes: number): void {
    this.#estimateBytes = Math.max(bytes, this.#estimateBytes * DECAY);
    const byBytes = Math.max(1, Math.floor(this.#maxOwedBytes / Math.max(1, this.#estimateBytes)));
    this.#window = Math.max(1, Math.min(this.#maxInflight, byBytes, this.#window + 1));
  }
}
