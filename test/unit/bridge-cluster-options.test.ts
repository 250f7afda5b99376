// Cluster-mode settings: VALKEY_CLUSTER / --cluster, a comma-separated seed list, and the errors for combinations
// that cannot work (a list without cluster mode, a database number, mixed TLS, a subscriber URL).
import { describe, expect, it } from 'vitest';
import { ConfigError, readConfig } from '../../bridge/config.ts';
import { resolveBridgeOptions, type BridgeOptions } from '../../bridge/options.ts';

const TOKEN = 'a-token-of-16-chars-or-more';
const base: BridgeOptions = { tokens: [{ token: TOKEN }] };

function thrown(fn: () => unknown): Error & { option?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { option?: string };
  }
  throw new Error('expected a throw');
}

describe('cluster options', () => {
  it('is off by default; on, takes every seed of a comma-separated list', () => {
    expect(resolveBridgeOptions(base).cluster).toBeNull();
    const o = resolveBridgeOptions({ ...base, cluster: true, valkeyUrl: 'redis://:pw@10.0.0.1:7000, redis://:pw@10.0.0.2:7001' });
    expect(o.cluster?.seeds.map((s) => `${s.host}:${s.port}`)).toEqual(['10.0.0.1:7000', '10.0.0.2:7001']);
    expect(o.cluster?.seeds.every((s) => s.password === 'pw')).toBe(true);
    expect(o.cluster?.refreshMs).toBe(1000);
    expect(o.valkey).toBe(o.cluster?.seeds[0]);
  });

  it('refuses what cluster mode cannot do, naming the option', () => {
    const list = thrown(() => resolveBridgeOptions({ ...base, valkeyUrl: 'redis://a:1,redis://b:2' }));
    expect(list).toBeInstanceOf(RangeError);
    expect(list.option).toBe('valkeyUrl');
    expect(list.message).toMatch(/cluster: true \(VALKEY_CLUSTER=true\)/);
    expect(thrown(() => resolveBridgeOptions({ ...base, cluster: true, valkeyUrl: 'redis://a:1/2' })).message).toMatch(/database/);
    expect(thrown(() => resolveBridgeOptions({ ...base, cluster: true, valkeyUrl: 'redis://a:1,rediss://b:2' })).message).toMatch(/all use/);
    expect(thrown(() => resolveBridgeOptions({ ...base, cluster: true, subscriberUrl: 'redis://a:1' })).option).toBe('subscriberUrl');
    expect(thrown(() => resolveBridgeOptions({ ...base, clusterRefreshMs: 500 })).option).toBe('clusterRefreshMs');
    expect(thrown(() => resolveBridgeOptions({ ...base, cluster: 'yes' as unknown as boolean })).option).toBe('cluster');
    expect(thrown(() => resolveBridgeOptions({ ...base, cluster: true, clusterRefreshMs: 1 })).option).toBe('clusterRefreshMs');
  });

  it('reads VALKEY_CLUSTER and a bare --cluster flag; a bad boolean is a ConfigError', () => {
    expect(readConfig({ BRIDGE_TOKEN: TOKEN, VALKEY_CLUSTER: 'true' }, []).options.cluster).toBe(true);
    expect(readConfig({ BRIDGE_TOKEN: TOKEN }, ['--cluster', '--port', '0']).options).toMatchObject({ cluster: true, port: 0 });
    expect(readConfig({ BRIDGE_TOKEN: TOKEN, VALKEY_CLUSTER: 'true' }, ['--cluster=false']).options.cluster).toBe(false);
    const bad = thrown(() => readConfig({ BRIDGE_TOKEN: TOKEN, VALKEY_CLUSTER: 'maybe' }, []));
    expect(bad).toBeInstanceOf(ConfigError);
    expect(bad.message).toMatch(/VALKEY_CLUSTER \(--cluster\): must be true or false/);
  });

  it('puts VALKEY_PASSWORD_FILE on every seed', () => {
    const { options } = readConfig(
      { BRIDGE_TOKEN: TOKEN, VALKEY_CLUSTER: '1', VALKEY_URL: 'redis://a:1,redis://b:2', VALKEY_PASSWORD_FILE: '/secret' },
      [],
      () => 's3cret\n',
    );
    const o = resolveBridgeOptions(options);
    expect(o.cluster?.seeds.map((s) => s.password)).toEqual(['s3cret', 's3cret']);
  });
});
