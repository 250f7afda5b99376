import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyIndex } from '../../bridge/key-index.ts';

describe('key index', () => {
  it('returns and forgets every reader of a key (one-shot)', () => {
    const index = new KeyIndex<string>(10);
    index.add('a', 'k');
    index.add('b', 'k');
    index.add('a', 'other');
    expect(index.size).toBe(3);
    expect(index.take('k').sort()).toEqual(['a', 'b']);
    expect(index.take('k')).toEqual([]);
    expect(index.size).toBe(1);
    expect(index.keysOf('a')).toBe(1);
    expect(index.keysOf('b')).toBe(0);
  });

  it('evicts a session\'s oldest key past the bound, and a re-read refreshes a key\'s age', () => {
    const index = new KeyIndex<string>(2);
    expect(index.add('s', 'k1')).toBeNull();
    expect(index.add('s', 'k2')).toBeNull();
    expect(index.add('s', 'k1')).toBeNull(); // k1 is now the newest
    expect(index.add('s', 'k3')).toBe('k2');
    expect(index.has('s', 'k2')).toBe(false);
    expect(index.has('s', 'k1')).toBe(true);
    expect(index.size).toBe(2);
    expect(index.add('t', 'k2')).toBeNull(); // bounds are per session
  });

  it('forgets a closed session and can be cleared', () => {
    const index = new KeyIndex<string>(5);
    index.add('a', 'k');
    index.add('b', 'k');
    index.removeSession('a');
    expect(index.take('k')).toEqual(['b']);
    index.add('a', 'x');
    index.clear();
    expect(index.size).toBe(0);
    expect(index.take('x')).toEqual([]);
  });

  it('keeps binary keys apart when they are indexed by latin1', () => {
    const index = new KeyIndex<string>(5);
    const k1 = Buffer.from([0xc3, 0xa9]).toString('latin1'); // UTF-8 "é"
    const k2 = Buffer.from([0xe9]).toString('latin1'); // latin1 "é"
    index.add('s', k1);
    expect(index.take(k2)).toEqual([]);
    expect(index.take(k1)).toEqual(['s']);
  });

  it('rejects a bound below 1', () => {
    expect(() => new KeyIndex(0)).toThrow(new RangeError('maxKeysPerSession must be a positive integer, got 0'));
  });

  it('agrees with a simple model under any sequence of operations', () => {
    const op = fc.oneof(
      fc.record({ type: fc.constant('add' as const), session: fc.integer({ min: 0, max: 3 }), key: fc.integer({ min: 0, max: 6 }) }),
      fc.record({ type: fc.constant('take' as const), key: fc.integer({ min: 0, max: 6 }) }),
      fc.record({ type: fc.constant('remove' as const), session: fc.integer({ min: 0, max: 3 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(op, { maxLength: 60 }), (bound, ops) => {
        const index = new KeyIndex<number>(bound);
        const model = new Map<number, number[]>(); // session -> keys, oldest first
        for (const o of ops) {
          if (o.type === 'add') {
            const keys = (model.get(o.session) ?? []).filter((k) => k !== o.key);
            keys.push(o.key);
            const expected = keys.length > bound ? keys.shift()! : null;
            model.set(o.session, keys);
            const evicted = index.add(o.session, String(o.key));
            expect(evicted).toBe(expected === null ? null : String(expected));
          } else if (o.type === 'take') {
            const readers = [...model].filter(([, keys]) => keys.includes(o.key)).map(([s]) => s).sort();
            for (const s of readers) model.set(s, model.get(s)!.filter((k) => k !== o.key));
            expect(index.take(String(o.key)).sort()).toEqual(readers);
          } else {
            model.delete(o.session);
            index.removeSession(o.session);
          }
          const pairs = [...model.values()].reduce((n, keys) => n + keys.length, 0);
          expect(index.size).toBe(pairs);
        }
      }),
      { numRuns: 300 },
    );
  });
});
