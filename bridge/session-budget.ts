// One session's budget of commands in flight: a window that starts small (slow start), grows by one per small
// reply, and shrinks to maxOwedBytes / (the session's recent reply size) when replies are big. It bounds the reply
// bytes one session can pull through the shared data connection before the bridge knows how big its replies are.
// It also keeps the session's share of its token's and the bridge's budgets (session-scheduler.ts) up to date.
import type { RespValue } from '../shared/resp/types.ts';
import type { SessionScheduler, TokenBudget } from './session-scheduler.ts';

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
  /** Shared with every session of the same token. */
  readonly token: TokenBudget;
  #window: number;
  #estimateBytes = 0;
  /** Owed bytes as last counted into the token's. */
  #owedCounted = 0;

  readonly #maxInflight: number;
  readonly #maxOwedBytes: number;
  readonly #scheduler: SessionScheduler;

  constructor(maxInflight: number, maxOwedBytes: number, scheduler: SessionScheduler, token: TokenBudget) {
    this.#maxInflight = maxInflight;
    this.#maxOwedBytes = maxOwedBytes;
    this.#scheduler = scheduler;
    this.token = token;
    this.#window = Math.min(INITIAL_WINDOW, maxInflight);
  }

  /** Do the token's budget and the bridge's allow one more command now? */
  get shared(): boolean {
    return this.#scheduler.hasRoom(this.token);
  }

  /** A command was dispatched (or a reply queued that the bridge knew itself). */
  dispatched(): void {
    this.#scheduler.dispatched(this.token);
  }

  /** `n` replies were written, or dropped with the session. */
  answered(n: number): void {
    this.#scheduler.answered(this.token, n);
  }

  /** The session is owed `bytes` now (ws.bufferedAmount, as seen at each write and drain; 0 once closed). */
  owed(bytes: number): void {
    this.#scheduler.owed(this.token, bytes - this.#owedCounted);
    this.#owedCounted = bytes;
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
