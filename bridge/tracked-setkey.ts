// TRACKED.SETKEY: Go valkeyaside's compare-and-set (the `setkey` script, same bytes in Valkey) and a tracked read of
// the key in one transaction, so a lock holder stores its value and keeps it cacheable in one round trip. Why the
// transaction looks the way it does, and when the reply is cacheable: docs/protocol.md, "TRACKED.SETKEY".
import { SCRIPT_SHA } from '../shared/valkeyaside.ts';
import type { KeyTracker, PendingRead } from './tracker.ts';

/** Valkey's answer: whether the value was stored, and the key as read right after the compare-and-set. */
export interface SetkeyRead {
  readonly stored: boolean;
  readonly value: Buffer | null;
  readonly pttl: number;
}

/**
 * How long a stored value's reply may wait for the invalidation its own write causes (usually microseconds behind the
 * EXEC reply, on the subscriber socket). Past it the reply goes out, not cacheable.
 */
export const OWN_INVALIDATION_WAIT_MS = 100;

const SHA = Buffer.from(SCRIPT_SHA.setkey);
const ONE = Buffer.from('1');

/**
 * `MULTI GET key, EVALSHA setkey 1 key id value ttlMs, PTTL key, GET key EXEC`. The first GET makes the data connection
 * track the key before the write, so a stored value causes exactly one invalidation of our own (see
 * {@link ownInvalidationSeen}); the last GET tracks the stored value. On NOSCRIPT the script is loaded and the
 * transaction sent once more (nothing was written the first time).
 */
export async function setkeyTracked(tracker: KeyTracker, key: Uint8Array, id: Uint8Array, value: Uint8Array, ttlMs: Uint8Array): Promise<SetkeyRead | Error> {
  const send = () => tracker.transaction(key, [['get', key], ['evalsha', SHA, ONE, key, id, value, ttlMs], ['pttl', key], ['get', key]]);
  let reply = await send();
  const first = reply[1];
  if (first instanceof Error && String(first.message).startsWith('NOSCRIPT')) {
    await tracker.loadScript(key, 'setkey');
    reply = await send();
  }
  const [, set, pttl, read] = reply;
  for (const part of [set, pttl, read]) if (part instanceof Error) return part;
  const stored = Buffer.isBuffer(set) ? set.toString('latin1') === 'OK' : set === 'OK';
  return { stored, value: read === null ? null : (read as Buffer), pttl: Number(pttl) };
}

/**
 * Resolves once the read's token has seen as many invalidations as the transaction's own write causes (one when
 * stored), or after {@link OWN_INVALIDATION_WAIT_MS}. Registering the session before our own invalidation arrived
 * would have it pushed at once, dropping the copy it was just told to keep.
 */
export function ownInvalidationSeen(token: PendingRead, stored: boolean): Promise<void> {
  if (!stored || token.hits >= 1) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, OWN_INVALIDATION_WAIT_MS);
    function done(): void {
      clearTimeout(timer);
      token.onPoison = undefined;
      resolve();
    }
    token.onPoison = done;
  });
}

/** Cacheable only if no invalidation other than our own write's overtook the read (and tracking held throughout). */
export function setkeyCacheable(tracker: KeyTracker, token: PendingRead, stored: boolean): boolean {
  return token.tracked && token.epoch === tracker.epoch && token.hits <= (stored ? 1 : 0);
}
