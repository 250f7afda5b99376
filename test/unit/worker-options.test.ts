import { describe, expect, it } from 'vitest';
import {
  COORDINATOR_DEFAULTS, MAX_BRIDGE_URLS, bridgeHttpUrl, bridgeHttpUrls, resolveCoordinatorSettings,
} from '../../worker/coordinator-settings.ts';
import { resolveCacheAsideOptions } from '../../worker/options.ts';

const base = { BRIDGE_URL: 'wss://bridge.example.com/resp', BRIDGE_TOKEN: 'secret-token' };

describe('worker options: coordinator env vars', () => {
  it('applies the defaults', () => {
    const settings = resolveCoordinatorSettings(base);
    expect(settings).toMatchObject({
      bridgeUrls: ['https://bridge.example.com/resp'],
      bridgeToken: 'secret-token',
      clientTtlMs: 10_000,
      useLuaLock: false,
      maxEntries: COORDINATOR_DEFAULTS.maxEntries,
      maxBytes: COORDINATOR_DEFAULTS.maxBytes,
      localTtlCapMs: Infinity,
      idleMs: COORDINATOR_DEFAULTS.idleMs,
    });
    expect(Object.isFrozen(settings)).toBe(true);
  });

  it('reads every VALKEYASIDE_* variable', () => {
    const settings = resolveCoordinatorSettings({
      ...base,
      VALKEYASIDE_CLIENT_TTL_MS: '2000',
      VALKEYASIDE_USE_LUA_LOCK: 'true',
      VALKEYASIDE_MAX_ENTRIES: '5',
      VALKEYASIDE_MAX_BYTES: '1024',
      VALKEYASIDE_LOCAL_TTL_CAP_MS: '300',
      VALKEYASIDE_IDLE_MS: '50',
      VALKEYASIDE_CONNECT_TIMEOUT_MS: '700',
      VALKEYASIDE_MAX_PENDING_GETS: '9',
      VALKEYASIDE_REPLY_TIMEOUT_MS: '1500',
    });
    expect(settings).toMatchObject({
      clientTtlMs: 2_000, useLuaLock: true, maxEntries: 5, maxBytes: 1024, localTtlCapMs: 300, idleMs: 50,
      connectTimeoutMs: 700, maxPendingGets: 9, replyTimeoutMs: 1_500,
    });
  });

  it('converts ws/wss to http/https and adds /resp to a bare host', () => {
    expect(bridgeHttpUrl('ws://127.0.0.1:7379/resp')).toBe('http://127.0.0.1:7379/resp');
    expect(bridgeHttpUrl('wss://bridge.example.com')).toBe('https://bridge.example.com/resp');
    expect(bridgeHttpUrl('http://127.0.0.1:7379')).toBe('http://127.0.0.1:7379/resp');
    expect(bridgeHttpUrl('https://b.example.com/custom/path')).toBe('https://b.example.com/custom/path');
  });

  it('reads a comma-separated list of bridges, in order, each converted', () => {
    const settings = resolveCoordinatorSettings({ ...base, BRIDGE_URL: ' ws://127.0.0.1:7379 , wss://b.example.com/resp,http://c:80/x ' });
    expect(settings.bridgeUrls).toEqual(['http://127.0.0.1:7379/resp', 'https://b.example.com/resp', 'http://c/x']);
    expect(Object.isFrozen(settings.bridgeUrls)).toBe(true);
    expect(bridgeHttpUrls('wss://a.example.com/resp')).toEqual(['https://a.example.com/resp']);
  });

  it('names BRIDGE_URL and the bad entry of a list', () => {
    expect(() => bridgeHttpUrls('ws://a/resp,redis://b:6379')).toThrow(new TypeError(
      'BRIDGE_URL entry 2 of 2 must start with ws://, wss://, http:// or https://; got "redis://b:6379"'));
    expect(() => bridgeHttpUrls('nope,ws://b/resp')).toThrow(new TypeError('BRIDGE_URL entry 1 of 2 is not a URL; got "nope"'));
    expect(() => bridgeHttpUrls('ws://a/resp,,ws://b/resp')).toThrow(new TypeError(
      'BRIDGE_URL entry 2 of 3 is empty in "ws://a/resp,,ws://b/resp"; separate bridge URLs with single commas (write a comma inside a URL as %2C)'));
    expect(() => bridgeHttpUrls('ws://a/resp,')).toThrow(/^BRIDGE_URL entry 2 of 2 is empty/);
    expect(() => bridgeHttpUrls('ws://a,http://a/resp')).toThrow(new TypeError(
      'BRIDGE_URL entry 2 of 2 ("http://a/resp") lists a bridge already listed; list each bridge once'));
    const many = Array.from({ length: MAX_BRIDGE_URLS + 1 }, (_, i) => `ws://b${i}/resp`).join(',');
    expect(() => resolveCoordinatorSettings({ ...base, BRIDGE_URL: many })).toThrow(new TypeError(
      `BRIDGE_URL lists ${MAX_BRIDGE_URLS + 1} bridges; at most ${MAX_BRIDGE_URLS} are allowed`));
  });

  it('names the variable and the value it rejects', () => {
    expect(() => resolveCoordinatorSettings({ BRIDGE_TOKEN: 't' })).toThrow(new TypeError(
      'BRIDGE_URL is not set: bind it as a var, e.g. BRIDGE_URL = "wss://bridge.example.com/resp"'));
    expect(() => resolveCoordinatorSettings({ ...base, BRIDGE_URL: 'redis://x:6379' })).toThrow(new TypeError(
      'BRIDGE_URL must start with ws://, wss://, http:// or https://; got "redis://x:6379"'));
    expect(() => resolveCoordinatorSettings({ ...base, BRIDGE_URL: 'not a url' })).toThrow('BRIDGE_URL is not a URL; got "not a url"');
    expect(() => resolveCoordinatorSettings({ BRIDGE_URL: base.BRIDGE_URL })).toThrow(/^BRIDGE_TOKEN is not set/);
    expect(() => resolveCoordinatorSettings({ ...base, VALKEYASIDE_CLIENT_TTL_MS: 'ten' })).toThrow(new RangeError(
      'VALKEYASIDE_CLIENT_TTL_MS must be an integer from 100 to 2147483647; got "ten"'));
    expect(() => resolveCoordinatorSettings({ ...base, VALKEYASIDE_IDLE_MS: '-1' })).toThrow(RangeError);
    expect(() => resolveCoordinatorSettings({ ...base, VALKEYASIDE_MAX_ENTRIES: '1.5' })).toThrow(RangeError);
    expect(() => resolveCoordinatorSettings({ ...base, VALKEYASIDE_LOCAL_TTL_CAP_MS: '0' })).toThrow(
      'VALKEYASIDE_LOCAL_TTL_CAP_MS must be an integer from 1 to 9007199254740991; got "0"');
    expect(() => resolveCoordinatorSettings({ ...base, VALKEYASIDE_USE_LUA_LOCK: 'yes' })).toThrow(new TypeError(
      'VALKEYASIDE_USE_LUA_LOCK must be "true" or "false"; got "yes"'));
  });
});

describe('worker options: CacheAside', () => {
  it('defaults to 16 shards, no extra timeout, and throwing when the cache is unavailable', () => {
    expect(resolveCacheAsideOptions()).toEqual({
      placement: { shards: 16 }, namePrefix: 'valkeyaside', region: undefined, timeoutMs: undefined, delTimeoutMs: 10_000,
      onUnavailable: 'throw', maxBypassLoads: 8, staleMs: 0, ctx: undefined, coalesce: true,
    });
  });

  it('rejects a coalesce that is not a boolean, naming it', () => {
    expect(resolveCacheAsideOptions({ coalesce: false }).coalesce).toBe(false);
    expect(() => resolveCacheAsideOptions({ coalesce: 'no' as never })).toThrow(new TypeError('coalesce must be true or false; got no'));
  });

  it('takes staleMs and a ctx with waitUntil, rejecting others by name', () => {
    const ctx = { waitUntil: () => {} };
    expect(resolveCacheAsideOptions({ staleMs: 30_000, ctx })).toMatchObject({ staleMs: 30_000, ctx });
    expect(() => resolveCacheAsideOptions({ staleMs: -1 })).toThrow(new RangeError(
      'staleMs must be an integer >= 0 (milliseconds; 0 turns stale-while-revalidate off); got -1'));
    expect(() => resolveCacheAsideOptions({ ctx: {} as never })).toThrow(new TypeError(
      "ctx must be an object with a waitUntil method, such as the Worker's ExecutionContext; got object"));
  });

  it('rejects an invalid onUnavailable or maxBypassLoads, naming it', () => {
    expect(() => resolveCacheAsideOptions({ onUnavailable: 'serve' as 'load' })).toThrow(new TypeError(
      `onUnavailable must be 'throw' or 'load'; got "serve"`));
    expect(() => resolveCacheAsideOptions({ maxBypassLoads: 0 })).toThrow(new RangeError(
      'maxBypassLoads must be a positive integer; got 0'));
  });

  it('rejects invalid placement and timeouts, naming them', () => {
    expect(() => resolveCacheAsideOptions({ placement: { shards: 0 } })).toThrow(new RangeError(
      'placement.shards must be an integer from 1 to 1000000; got 0'));
    expect(() => resolveCacheAsideOptions({ placement: 'per-shard' as never })).toThrow(TypeError);
    expect(() => resolveCacheAsideOptions({ timeoutMs: 0 })).toThrow(new RangeError(
      'timeoutMs must be a positive integer (milliseconds); got 0'));
    expect(() => resolveCacheAsideOptions({ delTimeoutMs: 1.5 })).toThrow(RangeError);
  });

  it('takes a region of 1 to 64 name characters, and rejects others naming the option', () => {
    expect(resolveCacheAsideOptions({ region: 'weur' }).region).toBe('weur');
    expect(resolveCacheAsideOptions({ region: 'LHR' }).region).toBe('LHR');
    expect(resolveCacheAsideOptions({ region: undefined }).region).toBeUndefined();
    const message = (got: string) => `region must be 1 to 64 letters, digits, '_' or '-' (e.g. 'weur' or request.cf.colo); got ${got}`;
    expect(() => resolveCacheAsideOptions({ region: '' })).toThrow(new TypeError(message('""')));
    expect(() => resolveCacheAsideOptions({ region: 'eu@west' })).toThrow(new TypeError(message('"eu@west"')));
    expect(() => resolveCacheAsideOptions({ region: 'x'.repeat(65) })).toThrow(TypeError);
    expect(() => resolveCacheAsideOptions({ region: 7 as unknown as string })).toThrow(new TypeError(message('7')));
  });
});
