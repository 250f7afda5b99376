import { describe, expect, it } from 'vitest';
import { coordinatorName, hashKey } from '../../worker/placement.ts';

describe('worker placement', () => {
  it('hashes keys with FNV-1a over UTF-8 (known vectors)', () => {
    expect(hashKey('')).toBe(0x811c9dc5);
    expect(hashKey('a')).toBe(0xe40c292c);
    expect(hashKey('foobar')).toBe(0xbf9cf968);
    expect(hashKey('é')).not.toBe(hashKey('e'));
  });

  it('spreads keys over the shards, always to the same one', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 1_600; i++) {
      const name = coordinatorName(`user:${i}`, { shards: 16 }, 'valkeyaside');
      expect(coordinatorName(`user:${i}`, { shards: 16 }, 'valkeyaside')).toBe(name);
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    expect(counts.size).toBe(16);
    for (const [name, count] of counts) {
      expect(name).toMatch(/^valkeyaside:shard:\d+\/16$/);
      expect(count).toBeGreaterThan(50);
    }
  });

  it('names one coordinator per key, or asks the placement function', () => {
    expect(coordinatorName('k:1', 'per-key', 'p')).toBe('p:key:k:1');
    expect(coordinatorName('k:1', (key) => `mine-${key.length}`, 'p')).toBe('mine-3');
    expect(coordinatorName('x', { shards: 1 }, 'p')).toBe('p:shard:0/1');
  });

  it('rejects a placement function that returns no name', () => {
    expect(() => coordinatorName('k', () => '', 'p')).toThrow(TypeError);
    expect(() => coordinatorName('k', (() => 42) as unknown as (key: string) => string, 'p'))
      .toThrow('placement function returned 42 for key "k"; it must return a non-empty string');
  });

  it('folds a region into every coordinator name, leaving unregioned names as they were', () => {
    const shard = coordinatorName('user:1', { shards: 16 }, 'valkeyaside');
    const regional = coordinatorName('user:1', { shards: 16 }, 'valkeyaside', 'weur');
    expect(regional).toBe(shard.replace(/^valkeyaside:/, 'valkeyaside@weur:'));
    expect(coordinatorName('user:1', { shards: 16 }, 'valkeyaside', undefined)).toBe(shard);
    expect(coordinatorName('k:1', 'per-key', 'p', 'apac')).toBe('p@apac:key:k:1');
    expect(coordinatorName('k:1', (key) => `mine-${key.length}`, 'p', 'LHR')).toBe('mine-3@LHR');
    // Two regions never share a coordinator of a key, and neither shares one with the unregioned cache.
    const names = new Set(['weur', 'apac', undefined].map((region) => coordinatorName('k', { shards: 4 }, 'p', region)));
    expect(names.size).toBe(3);
  });
});
