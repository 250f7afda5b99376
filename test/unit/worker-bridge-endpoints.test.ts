import { describe, expect, it } from 'vitest';
import { BridgeEndpoints, firstBridgeIndex } from '../../worker/bridge-endpoints.ts';

const URLS = ['http://a/resp', 'http://b/resp', 'http://c/resp'];

describe('worker bridge endpoints', () => {
  it('picks the first bridge from the coordinator name, always the same one, spreading names over all bridges', () => {
    const counts = [0, 0, 0];
    for (let i = 0; i < 300; i++) {
      const name = `valkeyaside:shard:${i}/300`;
      const index = firstBridgeIndex(name, URLS.length);
      expect(firstBridgeIndex(name, URLS.length)).toBe(index);
      expect(new BridgeEndpoints(URLS, name).current).toBe(URLS[index]);
      counts[index]!++;
    }
    for (const count of counts) expect(count).toBeGreaterThan(60);
    expect(firstBridgeIndex('anything', 1)).toBe(0);
  });

  it('moves to the next bridge on each failure, round robin, and back to the first pick on reset', () => {
    const name = 'valkeyaside:shard:7/16';
    const home = firstBridgeIndex(name, URLS.length);
    const endpoints = new BridgeEndpoints(URLS, name);
    const seen = [endpoints.current];
    for (let i = 0; i < 3; i++) {
      endpoints.failed();
      seen.push(endpoints.current);
    }
    expect(seen).toEqual([0, 1, 2, 3].map((k) => URLS[(home + k) % URLS.length]));
    endpoints.failed();
    endpoints.reset();
    expect(endpoints.current).toBe(URLS[home]);
  });

  it('stays on the only bridge of a one-entry list', () => {
    const endpoints = new BridgeEndpoints(['http://only/resp'], 'x');
    endpoints.failed();
    expect(endpoints.current).toBe('http://only/resp');
    expect(() => new BridgeEndpoints([], 'x')).toThrow(RangeError);
  });
});
