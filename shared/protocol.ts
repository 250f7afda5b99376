// The bridge wire protocol, versions 1 and 2 (docs/protocol.md): the path, auth header, the tracked-read command, the
// invalidation push and the close codes. Both the bridge and the Worker client import these; change them together.

/** The newest protocol version this code speaks (see RESP_SUBPROTOCOL_V2). */
export const PROTOCOL_VERSION = 2;

/** WebSocket upgrade path on the bridge. */
export const RESP_PATH = '/resp';

/** Optional WebSocket subprotocol a client may offer; the bridge selects it when offered. */
export const RESP_SUBPROTOCOL = 'valkeyaside.v1';

/**
 * Version 2: version 1 plus `TRACKED.SETKEY`. A client offers both and uses TRACKED.SETKEY only when the bridge
 * selected this one (an older bridge selects v1, and the client stores with the setkey script and a read-back).
 */
export const RESP_SUBPROTOCOL_V2 = 'valkeyaside.v2';

/**
 * `TRACKED.GET <key> <capMs>` reads a key and registers the session for its invalidation.
 * Reply: RESP3 array `[value: bulk | null, ttlMs: integer, cacheable: boolean]`. When `cacheable` is false the
 * client must not keep the value (`ttlMs` is then 0); otherwise it may keep it for `ttlMs` (the server's PTTL capped
 * by `capMs`) or until an invalidation push names the key.
 */
export const TRACKED_GET = 'TRACKED.GET';

/**
 * `TRACKED.SETKEY <key> <id> <value> <ttlMs> <capMs>` (protocol v2): Go valkeyaside's compare-and-set (the setkey
 * script) and a tracked read of the key in one command. Reply: `[stored: boolean, value: bulk | null, ttlMs, cacheable]`
 * where `value` is null when stored (the caller holds it) and otherwise what the key holds.
 */
export const TRACKED_SETKEY = 'TRACKED.SETKEY';

/** First element of an invalidation push: `>2 invalidate [keys...]`, or `>2 invalidate _` for "drop everything". */
export const INVALIDATE = 'invalidate';

/** WebSocket close codes the bridge uses. */
export const CLOSE_CODES = Object.freeze({
  NORMAL: 1000,
  /** The bridge is shutting down; reconnect to another instance or later. */
  GOING_AWAY: 1001,
  /** Malformed RESP; an error reply precedes the close. */
  PROTOCOL_ERROR: 1002,
  /** Policy: the session flooded or did not read its replies (slow reader). */
  POLICY_VIOLATION: 1008,
  /** A frame over the bridge's maxFrameBytes. */
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  /** Session idle past the bridge's idle timeout. */
  TRY_AGAIN_LATER: 1013,
});
