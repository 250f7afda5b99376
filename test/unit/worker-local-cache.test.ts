import { describe, expect, it } from 'vitest';
import { ENTRY_OVERHEAD_BYTES, LocalCache } from '../../worker/local-cache.ts';

const b = (text: string): Uint8Array => new TextEncoder().encode(text);

function clock(start = 1_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => { now += ms; } };
}

describe('worker local cache', () => {
  it('serves a value until its ttl, then reports it absent', () => {
    const time = clock();
    const cache = new LocalCache({ maxEntries: 10, maxBytes: 10_000, now: time.now });
    expect(cache.set('k', b('v'), 100)).toBe(true);
    expect(cache.get('k')).toEqual(b('v'));
    time.advance(99);
    expect(cache.get('k')).toEqual(b('v'));
    time.advance(1);
    expect(cache.get('k')).toBeUndefined();
    expect(cache.size).toBe(0);
    expect(cache.bytes).toBe(0);
  });

  it('keeps a cached miss as null, distinct from absent', () => {
    const cache = new LocalCache({ maxEntries: 10, maxBytes: 10_000 });
    cache.set('missing', null, 1_000);
    expect(cache.get('missing')).toBeNull();
    expect(cache.get('other')).toBeUndefined();
  });

  it('counts the ttl from when the read was sent, so the copy never outlives the server key', () => {
    const time = clock();
    const cache = new LocalCache({ maxEntries: 10, maxBytes: 10_000, now: time.now });
    const sentAt = time.now();
    time.advance(40);
    cache.set('k', b('v'), 100, sentAt);
    time.advance(60);
    expect(cache.get('k')).toBeUndefined();
    expect(cache.set('late', b('v'), 10, sentAt)).toBe(false);
  });

  it('evicts the least recently used entry past maxEntries', () => {
    const cache = new LocalCache({ maxEntries: 2, maxBytes: 10_000 });
    cache.set('a', b('1'), 1_000);
    cache.set('b', b('2'), 1_000);
    expect(cache.get('a')).toEqual(b('1')); // a is now the most recently used
    cache.set('c', b('3'), 1_000);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toEqual(b('1'));
    expect(cache.get('c')).toEqual(b('3'));
    expect(cache.size).toBe(2);
  });

  it('evicts by bytes and refuses an entry larger than maxBytes', () => {
    const entry = (key: string, value: string) => key.length + value.length + ENTRY_OVERHEAD_BYTES;
    const maxBytes = entry('a', 'x'.repeat(100)) * 2;
    const cache = new LocalCache({ maxEntries: 100, maxBytes });
    cache.set('a', b('x'.repeat(100)), 1_000);
    cache.set('b', b('y'.repeat(100)), 1_000);
    expect(cache.bytes).toBe(maxBytes);
    cache.set('c', b('z'.repeat(10)), 1_000);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.bytes).toBe(entry('b', 'y'.repeat(100)) + entry('c', 'z'.repeat(10)));
    expect(cache.set('huge', b('h'.repeat(maxBytes)), 1_000)).toBe(false);
    expect(cache.get('huge')).toBeUndefined();
    expect(cache.get('b')).toEqual(b('y'.repeat(100)));
  });

  it('replaces an entry and keeps the byte count exact', () => {
    const cache = new LocalCache({ maxEntries: 10, maxBytes: 10_000 });
    cache.set('k', b('short'), 1_000);
    cache.set('k', b('a longer value'), 1_000);
    expect(cache.size).toBe(1);
    expect(cache.bytes).toBe(1 + 'a longer value'.length + ENTRY_OVERHEAD_BYTES);
    cache.delete('k');
    expect(cache.bytes).toBe(0);
    cache.set('x', b('y'), 1_000);
    cache.clear();
    expect(cache.size).toBe(0);
    expect(cache.bytes).toBe(0);
  });

  it('caches nothing with maxEntries 0 or a non-positive ttl', () => {
    const off = new LocalCache({ maxEntries: 0, maxBytes: 10_000 });
    expect(off.set('k', b('v'), 1_000)).toBe(false);
    const cache = new LocalCache({ maxEntries: 10, maxBytes: 10_000 });
    expect(cache.set('k', b('v'), 0)).toBe(false);
    expect(cache.get('k')).toBeUndefined();
  });
});
