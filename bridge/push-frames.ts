// Invalidation pushes encoded once per key per turn: a key read by 1,000 sessions is one RESP encoding, and the same
// bytes are written to every session (server-to-client WebSocket frames are unmasked, so the payload is shared);
// and the sessions one invalidation reaches flush from one setImmediate, not one each.
import { INVALIDATE } from '../shared/protocol.ts';
import { encodeValues } from '../shared/resp/index.ts';
import { RespPush } from '../shared/resp/types.ts';

const INVALIDATE_BYTES = new TextEncoder().encode(INVALIDATE);

/** The drop-everything push, `>2 invalidate _`. */
export const NULL_PUSH = encodeValues([new RespPush([INVALIDATE_BYTES, null])]);

/** Single-key pushes encoded in this turn; emptied on the next, so a turn's many keys are not kept. */
let turnCache: Map<string, Uint8Array> | null = null;

/** The push naming `keys` (latin1 strings), encoded; a single key's bytes are shared by every session this turn. */
export function encodedPush(keys: readonly string[]): Uint8Array {
  if (keys.length !== 1) return encodeValues([pushOf(keys)]);
  const key = keys[0]!;
  if (turnCache === null) {
    const cache = new Map<string, Uint8Array>();
    turnCache = cache;
    setImmediate(() => { if (turnCache === cache) turnCache = null; });
  }
  let bytes = turnCache.get(key);
  if (bytes === undefined) {
    bytes = encodeValues([pushOf(keys)]);
    turnCache.set(key, bytes);
  }
  return bytes;
}

/** The push as a value, for a frame that carries replies too. */
export function pushOf(keys: readonly string[] | null): RespPush {
  return new RespPush([INVALIDATE_BYTES, keys === null ? null : keys.map((key) => Buffer.from(key, 'latin1'))]);
}

/** Push flushes queued for the next turn: one `setImmediate` for every session an invalidation reaches, not one each. */
let nextTurn: Array<() => void> | null = null;

/** Runs `flush` on the next turn, with every other flush queued in this one. */
export function onNextTurn(flush: () => void): void {
  if (nextTurn === null) {
    const queue: Array<() => void> = [];
    nextTurn = queue;
    setImmediate(() => {
      if (nextTurn === queue) nextTurn = null;
      for (const run of queue) run();
    });
  }
  nextTurn.push(flush);
}
