// The lock holder's store in one round trip: TRACKED.SETKEY (protocol v2) compare-and-sets the loaded value with Go's
// setkey script and answers with a tracked read, so the value fills the local copy without a read-back. An older
// bridge (v1) gets the setkey script and a tracked read-back, two round trips.
import { wireKey } from '../shared/bytes.ts';
import { ProtocolError } from '../shared/errors.ts';
import { TRACKED_SETKEY } from '../shared/protocol.ts';
import { RespSimple } from '../shared/resp/index.ts';
import type { RespValue } from '../shared/resp/index.ts';
import { SCRIPT_SHA } from '../shared/valkeyaside.ts';
import type { BridgeSocket } from './bridge-socket.ts';
import type { TrackedReads } from './tracked-reads.ts';
import type { Deadline } from './waiters.ts';

function isOk(reply: RespValue): boolean {
  return (reply instanceof RespSimple && reply.value === 'OK') || (reply instanceof Uint8Array && reply.length === 2 && reply[0] === 0x4f && reply[1] === 0x4b);
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
 * Stores `value` under `key` if the key still holds our placeholder `id`; true when stored. A stored value fills the
 * local copy (capped by `capMs`) when the bridge says no other change overtook it.
 */
export async function storeLoaded(bridge: BridgeSocket, reads: TrackedReads, key: string, id: string, value: Uint8Array,
  storeTtlMs: number, capMs: number, deadline: Deadline): Promise<boolean> {
  if (!bridge.hasTrackedSetkey) {
    const stored = isOk(await deadline.race(bridge.command(['EVALSHA', SCRIPT_SHA.setkey, 1, wireKey(key), id, value, storeTtlMs], deadline.at)));
    // Not pipelined: our own store's invalidation would poison a read sent with it. The tracked read re-registers this
    // coordinator for the key's pushes and fills the local copy for the next get.
    if (stored) await deadline.race(reads.read(key, capMs, deadline.at, true)).catch(() => {});
    return stored;
  }
  const generation = reads.generation;
  const sentAt = Date.now();
  const cap = Math.max(1, Math.floor(capMs));
  const reply = parseSetkey(await deadline.race(bridge.command([TRACKED_SETKEY, wireKey(key), id, value, storeTtlMs, cap], deadline.at)));
  if (reply.cacheable) reads.fill(key, reply.stored ? value : reply.value, reply.ttlMs, sentAt, generation);
  return reply.stored;
}
