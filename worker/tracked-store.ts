// The lock holder's store in one round trip: TRACKED.SETKEY (protocol v2) compare-and-sets the loaded value with Go's
// setkey script and answers with a tracked read, so the value fills the local copy without a read-back. An older
// bridge (v1) gets the setkey script and a tracked read-back, two round trips.
import { wireKey } from '../shared/bytes.ts';
import { ProtocolError } from '../shared/errors.ts';
import { TRACKED_SETKEY } from '../shared/protocol.ts';
import type { RespValue } from '../shared/resp/index.ts';
import { SCRIPT_SHA } from '../shared/valkeyaside.ts';
import { isOk } from './aside-get.ts';
import type { BridgeSocket } from './bridge-socket.ts';
import type { TrackedReads } from './tracked-reads.ts';
import type { Deadline } from './waiters.ts';

/** What to store: Valkey keeps it `storeTtlMs + staleMs` (the stale window), the local copy at most `capMs`. */
export interface LoadedValue {
  readonly key: string;
  /** The bytes the key must still hold: our placeholder, or (a stale-while-revalidate refresh) the stale value. */
  readonly id: string | Uint8Array;
  readonly value: Uint8Array;
  readonly storeTtlMs: number;
  readonly capMs: number;
  readonly staleMs: number;
}

function parseSetkey(reply: RespValue): { stored: boolean; value: Uint8Array | null; ttlMs: number; cacheable: boolean } {
  if (Array.isArray(reply) && reply.length === 4) {
    const [stored, value, ttlMs, cacheable] = reply;
    if (typeof stored === 'boolean' && (value === null || value instanceof Uint8Array) && (typeof ttlMs === 'number' || typeof ttlMs === 'bigint') && typeof cacheable === 'boolean') {
      return { stored, value, ttlMs: Number(ttlMs), cacheable };
    }
  }
  throw new ProtocolError('ERR_BRIDGE_REPLY', `unexpected reply to ${TRACKED_SETKEY}: expected [stored, value, ttlMs, cacheable]`);
}

/**
 * Stores the value if the key still holds `id`; true when stored. A stored value fills the local copy when the
 * bridge says no other change overtook it.
 */
export async function storeLoaded(bridge: BridgeSocket, reads: TrackedReads, loaded: LoadedValue, deadline: Deadline): Promise<boolean> {
  const { key, id, value, storeTtlMs, capMs, staleMs } = loaded;
  if (!bridge.hasTrackedSetkey) {
    const stored = isOk(await deadline.race(bridge.command(['EVALSHA', SCRIPT_SHA.setkey, 1, wireKey(key), id, value, storeTtlMs + staleMs], deadline.at)));
    // Not pipelined: our own store's invalidation would poison a read sent with it. The tracked read re-registers this
    // coordinator for the key's pushes and fills the local copy for the next get.
    if (stored) await deadline.race(reads.read(key, capMs, deadline.at, true, staleMs)).catch(() => {});
    return stored;
  }
  const generation = reads.generation;
  const sentAt = Date.now();
  // As TRACKED.GET is asked by TrackedReads.read: the local cap plus the stale window, so the reply's ttl tells when
  // the server's fresh part ends.
  const askMs = Math.max(1, Math.floor(capMs + staleMs));
  const reply = parseSetkey(await deadline.race(bridge.command([TRACKED_SETKEY, wireKey(key), id, value, storeTtlMs + staleMs, askMs], deadline.at)));
  if (reply.cacheable) reads.fill(key, reply.stored ? value : reply.value, reply.ttlMs, askMs, capMs, sentAt, generation);
  return reply.stored;
}
