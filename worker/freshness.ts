// The freshness rule of stale-while-revalidate, on its own so pure code (and its tests) can use it: a value stored
// with PX ttl+staleMs is fresh while more than staleMs of its PTTL is left, and stale for the rest of it.

/** What is known of when the server's key expires (`Entry.serverUntil`, `ReadResult.serverUntil`). */
export interface ServerExpiry {
  readonly serverUntil: number;
  readonly serverExact: boolean;
}

/** `unknown`: the read's cap hid whether the value is still fresh; read again asking for `staleMs` more. */
export type Freshness = 'fresh' | 'stale' | 'expired' | 'unknown';

/** Fresh while more than `staleMs` of the key's PTTL is left, stale for the rest of it. */
export function freshness(copy: ServerExpiry, staleMs: number, now: number): Freshness {
  if (now < copy.serverUntil - staleMs) return 'fresh';
  if (!copy.serverExact) return 'unknown';
  return now < copy.serverUntil ? 'stale' : 'expired';
}
