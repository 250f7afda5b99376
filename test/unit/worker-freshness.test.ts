// The freshness rule of stale-while-revalidate (worker/freshness.ts): fresh while more than staleMs of the key's
// PTTL is left, stale for the rest, and "unknown" when the read's cap hid the PTTL past the fresh part.
import { describe, expect, it } from 'vitest';
import { LocalCache } from '../../worker/local-cache.ts';
import { freshness } from '../../worker/freshness.ts';

describe('stale window: freshness from the server expiry', () => {
  it('is fresh until staleMs before the key expires, stale until it does, then expired', () => {
    const copy = { serverUntil: 1_000, serverExact: true };
    expect(freshness(copy, 300, 699)).toBe('fresh');
    expect(freshness(copy, 300, 700)).toBe('stale');
    expect(freshness(copy, 300, 999)).toBe('stale');
    expect(freshness(copy, 300, 1_000)).toBe('expired');
    expect(freshness(copy, 0, 999)).toBe('fresh');
  });

  it('says unknown past the fresh part of a capped read, whose expiry is only a lower bound', () => {
    const capped = { serverUntil: 1_000, serverExact: false };
    expect(freshness(capped, 300, 699)).toBe('fresh');
    expect(freshness(capped, 300, 700)).toBe('unknown');
    expect(freshness(capped, 300, 1_200)).toBe('unknown');
  });

  it('a local entry keeps what its read knew of the server expiry', () => {
    let now = 0;
    const cache = new LocalCache({ maxEntries: 10, maxBytes: 10_000, now: () => now });
    cache.set('k', new Uint8Array([1]), 100, 0, { until: 400, exact: true });
    expect(cache.entry('k')).toMatchObject({ expiresAt: 100, serverUntil: 400, serverExact: true });
    cache.set('plain', new Uint8Array([1]), 100, 0);
    expect(cache.entry('plain')).toMatchObject({ expiresAt: 100, serverUntil: 100, serverExact: true });
    now = 100;
    expect(cache.entry('k')).toBeUndefined();
  });
});
