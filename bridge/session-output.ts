// The output side of one session: replies held in command order (slots), invalidation pushes coalesced ahead of
// them, and the frames written to the socket with the slow-reader check. The session decides when to write.
import type { WebSocket } from 'ws';
import { encodeValues } from '../shared/resp/index.ts';
import type { RespPush, RespValue } from '../shared/resp/types.ts';
import type { CommandRunner, Slot } from './command-runner.ts';
import type { Logger } from './log.ts';
import type { BridgeMetrics } from './metrics.ts';
import { NULL_PUSH, encodedPush, pushOf } from './push-frames.ts';
import type { PushTarget } from './push-router.ts';
import { replyBytes, type SessionBudget } from './session-budget.ts';

export interface SessionOutputContext {
  readonly metrics: BridgeMetrics;
  readonly log: Logger;
  /** Bytes queued towards the client before it counts as a slow reader. */
  readonly maxBufferedBytes: number;
  readonly sessionId: number;
  readonly runner: CommandRunner;
  readonly budget: SessionBudget;
  /** The session, handed to CommandRunner.finish (which may queue a push on it). */
  readonly target: PushTarget;
  readonly isClosed: () => boolean;
  /** The client is not reading its replies: the session closes with 1008. */
  readonly onSlowReader: () => void;
}

export class SessionOutput {
  /** Commands dispatched and not yet written, in command order: only the ready prefix may leave. */
  readonly slots: Slot[] = [];
  #pushKeys = new Set<string>();
  #pushAll = false;

  readonly #ws: WebSocket;
  readonly #ctx: SessionOutputContext;

  constructor(ws: WebSocket, ctx: SessionOutputContext) {
    this.#ws = ws;
    this.#ctx = ctx;
  }

  /** Adds keys (latin1 strings) to the next push, or makes it the drop-everything push (null), which covers any keys. */
  addPush(keys: readonly string[] | null): void {
    if (keys === null) {
      this.#pushAll = true;
      this.#pushKeys.clear();
    } else if (!this.#pushAll) {
      for (const key of keys) this.#pushKeys.add(key);
    }
  }

  clearPushes(): void {
    this.#pushKeys.clear();
  }

  /** Writes the ready prefix of the slots (pending pushes first) as one frame. Returns the number of replies. */
  writeReady(): number {
    const out: RespValue[] = [];
    const push = this.#takePush();
    if (push) out.push(push);
    let replies = 0;
    while (this.slots.length > 0 && this.slots[0]!.ready) {
      // finish() decides cacheability now, just before the frame is encoded, and may queue a push (the key of a
      // poisoned read, an evicted key): that push goes ahead of this reply.
      const reply = this.#ctx.runner.finish(this.slots.shift()!, this.#ctx.target);
      const queued = this.#takePush();
      if (queued) out.push(queued);
      out.push(reply);
      this.#ctx.budget.replied(replyBytes(reply));
      replies++;
    }
    if (out.length > 0) this.#send(out);
    return replies;
  }

  /** Writes the pending push alone (the fan-out case): pre-encoded bytes, shared with the key's other readers. */
  flushPushes(): void {
    const keys = this.#takePushKeys();
    if (keys !== undefined) this.#sendBytes(keys === null ? NULL_PUSH : encodedPush(keys));
  }

  #takePush(): RespPush | null {
    const keys = this.#takePushKeys();
    return keys === undefined ? null : pushOf(keys);
  }

  /** The pending push's keys (null: drop everything), or undefined when none is pending; counts the delivery. */
  #takePushKeys(): readonly string[] | null | undefined {
    if (this.#pushAll) {
      this.#pushAll = false;
      this.#ctx.metrics.perFrame.delivered++;
      return null;
    }
    if (this.#pushKeys.size === 0) return undefined;
    const keys = [...this.#pushKeys];
    this.#pushKeys.clear();
    this.#ctx.metrics.perFrame.delivered += keys.length;
    return keys;
  }

  #send(values: RespValue[]): void {
    this.#sendBytes(encodeValues(values));
  }

  #sendBytes(bytes: Uint8Array): void {
    if (this.#ctx.isClosed() || this.#ws.readyState !== this.#ws.OPEN) return;
    if (this.#ws.bufferedAmount > this.#ctx.maxBufferedBytes) {
      this.#ctx.metrics.error('slow_reader');
      this.#ctx.log.info('session is not reading its replies; closing', { session: this.#ctx.sessionId });
      this.#ctx.onSlowReader();
      return;
    }
    this.#ctx.metrics.perFrame.bytesOut += bytes.length;
    this.#ws.send(bytes, { binary: true });
    // Dispatch stops at maxOwedBytes, so no later send may come to notice a reader that stopped: check now too.
    if (this.#ws.bufferedAmount > this.#ctx.maxBufferedBytes) {
      this.#ctx.metrics.error('slow_reader');
      this.#ctx.log.info('session is not reading its replies; closing', { session: this.#ctx.sessionId });
      this.#ctx.onSlowReader();
    }
  }
}
