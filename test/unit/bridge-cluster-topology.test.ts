// The slot map (owners by node id and address, coverage, change detection) and the parsing of cluster redirects.
import { ReplyError } from 'iovalkey';
import { describe, expect, it } from 'vitest';
import { nodeEndpoint, parseRedirect, SlotMap, type ClusterPrimary } from '../../bridge/cluster-topology.ts';
import { parseValkeyUrl } from '../../bridge/options.ts';

const seed = parseValkeyUrl('valkeyUrl', 'redis://user:pw@10.0.0.1:7000');
const primary = (id: string, port: number): ClusterPrimary => ({ id, endpoint: nodeEndpoint(seed, '10.0.0.1', port) });

describe('cluster slot map', () => {
  const a = primary('a', 7000);
  const b = primary('b', 7001);
  const map = new SlotMap([a, b], [{ start: 0, end: 8191, primary: 0 }, { start: 8192, end: 16383, primary: 1 }]);

  it('answers the owner of each slot, counts slots, and knows when every slot is served', () => {
    expect(map.owner(0)).toBe(a);
    expect(map.owner(8191)).toBe(a);
    expect(map.owner(8192)).toBe(b);
    expect(map.slotsOf('a')).toBe(8192);
    expect(map.slotsOf('nobody')).toBe(0);
    expect(map.covered).toBe(true);
    const holey = new SlotMap([a], [{ start: 0, end: 100, primary: 0 }]);
    expect(holey.covered).toBe(false);
    expect(holey.owner(101)).toBeNull();
  });

  it('sees a failover, a moved slot and a node at a new address as changes; the same layout as none', () => {
    expect(map.sameAs(new SlotMap([b, a], [{ start: 8192, end: 16383, primary: 0 }, { start: 0, end: 8191, primary: 1 }]))).toBe(true);
    const failedOver = primary('c', 7002);
    expect(map.sameAs(new SlotMap([failedOver, b], [{ start: 0, end: 8191, primary: 0 }, { start: 8192, end: 16383, primary: 1 }]))).toBe(false);
    expect(map.sameAs(new SlotMap([a, b], [{ start: 0, end: 8190, primary: 0 }, { start: 8191, end: 16383, primary: 1 }]))).toBe(false);
    const moved = primary('a', 7100);
    expect(map.sameAs(new SlotMap([moved, b], [{ start: 0, end: 8191, primary: 0 }, { start: 8192, end: 16383, primary: 1 }]))).toBe(false);
  });

  it('reaches other nodes with the seed\'s credentials', () => {
    expect(b.endpoint).toMatchObject({ host: '10.0.0.1', port: 7001, username: 'user', password: 'pw', display: 'redis://10.0.0.1:7001' });
    expect(nodeEndpoint(seed, '::1', 7002).display).toBe('redis://[::1]:7002');
  });
});

describe('cluster redirects', () => {
  it('parses MOVED, ASK (IPv6 too) and CLUSTERDOWN; anything else is not a redirect', () => {
    expect(parseRedirect(new ReplyError('MOVED 3999 127.0.0.1:6381'))).toEqual({ kind: 'moved', host: '127.0.0.1', port: 6381 });
    expect(parseRedirect(new ReplyError('ASK 12 ::1:7000'))).toEqual({ kind: 'ask', host: '::1', port: 7000 });
    expect(parseRedirect(new ReplyError('CLUSTERDOWN The cluster is down'))).toEqual({ kind: 'down' });
    expect(parseRedirect(new ReplyError('ERR MOVED 1 a:1'))).toBeNull();
    expect(parseRedirect(new Error('MOVED 1 a:1'))).toBeNull();
  });
});
