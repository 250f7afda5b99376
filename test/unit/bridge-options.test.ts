import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, readConfig, settingFor } from '../../bridge/config.ts';
import { BRIDGE_DEFAULTS, parseValkeyUrl, resolveBridgeOptions, type BridgeOptions } from '../../bridge/options.ts';

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

describe('bridge options', () => {
  it('fills every default and returns a frozen result', () => {
    const o = resolveBridgeOptions(base);
    expect(Object.isFrozen(o)).toBe(true);
    expect(Object.isFrozen(BRIDGE_DEFAULTS)).toBe(true);
    expect(o).toMatchObject({
      host: '127.0.0.1', port: 7379, maxSessions: 10_000, maxFrameBytes: 8 * 1024 * 1024, maxInflight: 256,
      maxBufferedBytes: 16 * 1024 * 1024, maxTrackedKeys: 10_000, valkeyPingMs: 1_000, commandTimeoutMs: 5_000,
      heartbeatMs: 15_000, shutdownGraceMs: 5_000, logLevel: 'info', extraCommands: [],
    });
    expect(o.valkey).toMatchObject({ host: '127.0.0.1', port: 6379, db: 0, tls: false });
    expect(o.subscriber).toBe(o.valkey);
  });

  it('keeps only a SHA-256 digest of each token', () => {
    const o = resolveBridgeOptions({ tokens: [{ token: TOKEN }, { token: TOKEN + '2', prefix: 'tenant-a:' }] });
    expect(o.tokens[0]!.digest.equals(createHash('sha256').update(TOKEN).digest())).toBe(true);
    expect(Buffer.from(o.tokens[1]!.prefix!).toString()).toBe('tenant-a:');
    expect(o.tokens.map((t) => t.label)).toEqual(['token#1', 'token#2']);
    expect(JSON.stringify(o)).not.toContain(TOKEN);
  });

  it('refuses to run without a token, and never echoes a token in errors', () => {
    const none = thrown(() => resolveBridgeOptions({ tokens: [] }));
    expect(none).toBeInstanceOf(TypeError);
    expect(none.option).toBe('tokens');
    expect(none.message).toMatch(/^tokens must be a non-empty array/);
    const short = thrown(() => resolveBridgeOptions({ tokens: [{ token: 'secret-short' }] }));
    expect(short).toBeInstanceOf(RangeError);
    expect(short.message).toBe('tokens[0].token must be 16 to 4096 characters, got 12');
    expect(short.message).not.toContain('secret-short');
    expect(thrown(() => resolveBridgeOptions({ tokens: [{ token: TOKEN }, { token: TOKEN }] })).message).toBe('tokens[1].token repeats an earlier token');
    expect(thrown(() => resolveBridgeOptions({ tokens: [{ token: 'has a space in it, sixteen+' }] })).message).toBe('tokens[0].token must be visible ASCII without spaces');
    expect(thrown(() => resolveBridgeOptions({ tokens: [{ token: TOKEN, prefix: '' }] })).message).toBe('tokens[0].prefix must be a non-empty string when given, got ""');
  });

  it('names the option and the value for bad numbers', () => {
    const port = thrown(() => resolveBridgeOptions({ ...base, port: 70_000 }));
    expect(port).toBeInstanceOf(RangeError);
    expect(port.message).toBe('port must be between 0 and 65535, got 70000');
    expect(port.option).toBe('port');
    const inflight = thrown(() => resolveBridgeOptions({ ...base, maxInflight: 1.5 }));
    expect(inflight).toBeInstanceOf(TypeError);
    expect(inflight.message).toBe('maxInflight must be an integer, got 1.5');
    expect(thrown(() => resolveBridgeOptions({ ...base, maxSessions: 0 })).message).toBe('maxSessions must be between 1 and 1000000, got 0');
    expect(thrown(() => resolveBridgeOptions({ ...base, heartbeatMs: '5' as unknown as number })).message).toBe('heartbeatMs must be an integer, got "5"');
    expect(thrown(() => resolveBridgeOptions({ ...base, logLevel: 'loud' as 'info' })).message).toBe('logLevel must be one of debug, info, warn, error, silent, got "loud"');
  });

  it('resolves the budgets per token from the bridge-wide defaults or the entry, naming a bad field', () => {
    const resolved = resolveBridgeOptions({
      ...base,
      maxInflightPerToken: 32,
      tokens: [{ token: TOKEN }, { token: TOKEN + 'x', prefix: 'a:', maxInflight: 4, maxOwedBytes: 4096 }],
    });
    expect(resolved.tokens.map((t) => [t.maxInflight, t.maxOwedBytes])).toEqual([[32, 64 * 1024 * 1024], [4, 4096]]);
    expect(resolved).toMatchObject({ maxInflightTotal: 256, maxInflightPerToken: 32, maxOwedBytesPerToken: 64 * 1024 * 1024 });
    const field = thrown(() => resolveBridgeOptions({ ...base, tokens: [{ token: TOKEN, maxInflight: 0 }] }));
    expect(field).toBeInstanceOf(RangeError);
    expect(field.message).toBe('tokens[0].maxInflight must be between 1 and 10000000, got 0');
    expect(field.option).toBe('tokens');
    expect(thrown(() => resolveBridgeOptions({ ...base, tokens: [{ token: TOKEN, maxOwedBytes: 10 }] })).message)
      .toBe('tokens[0].maxOwedBytes must be between 1024 and 68719476736, got 10');
    expect(thrown(() => resolveBridgeOptions({ ...base, maxInflightTotal: 0 })).message).toBe('maxInflightTotal must be between 1 and 10000000, got 0');
    expect(thrown(() => resolveBridgeOptions({ ...base, maxAuthFailuresPerAddress: -1 })).message)
      .toBe('maxAuthFailuresPerAddress must be between 0 and 1000000, got -1');
  });

  it('parses redis:// and rediss:// URLs without leaking the password', () => {
    expect(parseValkeyUrl('valkeyUrl', 'rediss://user:p%40ss@cache.example:6380/3')).toEqual({
      host: 'cache.example', port: 6380, username: 'user', password: 'p@ss', db: 3, tls: true, display: 'rediss://cache.example:6380/3',
    });
    const bad = thrown(() => parseValkeyUrl('valkeyUrl', 'http://user:hunter2@host:1/'));
    expect(bad.message).toBe('valkeyUrl must use redis:// or rediss://, got "http://host:1/"');
    expect(thrown(() => parseValkeyUrl('valkeyUrl', 'redis://:hunter2@host/x')).message).toBe('valkeyUrl path must be a database number like /0, got "redis://host/x"');
    expect(thrown(() => parseValkeyUrl('valkeyUrl', 'not a url')).message).toBe('valkeyUrl must be a redis:// or rediss:// URL, got a string that is not a URL');
  });

  it('validates extension commands: names only, nothing that breaks the shared connection', () => {
    expect(resolveBridgeOptions({ ...base, extraCommands: ['hset', 'HINCRBY', 'hset'] }).extraCommands).toEqual(['HSET', 'HINCRBY']);
    expect(thrown(() => resolveBridgeOptions({ ...base, extraCommands: ['multi'] })).message)
      .toBe("extraCommands must not include MULTI: it would break or escape the bridge's shared connection");
    expect(thrown(() => resolveBridgeOptions({ ...base, extraCommands: ['GET'] })).message).toBe('extraCommands must not repeat the built-in command GET');
    expect(thrown(() => resolveBridgeOptions({ ...base, extraCommands: ['bad name'] })).message).toBe('extraCommands entries must be command names like HSET, got "bad name"');
  });
});

describe('bridge configuration from environment and flags', () => {
  it('reads every setting from the environment and lets flags win', () => {
    const { options } = readConfig(
      { VALKEY_URL: 'redis://10.0.0.1:6390', BRIDGE_TOKEN: TOKEN, BRIDGE_PORT: '9000', BRIDGE_MAX_INFLIGHT: '8', BRIDGE_EXTRA_COMMANDS: 'hset, hdel' },
      ['--port', '9001', '--max-sessions=5'],
    );
    expect(options).toMatchObject({ valkeyUrl: 'redis://10.0.0.1:6390', port: 9001, maxInflight: 8, maxSessions: 5, extraCommands: ['hset', 'hdel'] });
    expect(options.tokens).toEqual([{ token: TOKEN }]);
  });

  it('reads the budgets per token and the auth throttle from the environment and BRIDGE_TOKENS entries', () => {
    const { options } = readConfig({
      BRIDGE_TOKENS: JSON.stringify([{ token: TOKEN, prefix: 'a:', maxInflight: 4, maxOwedBytes: 4096 }]),
      BRIDGE_MAX_INFLIGHT_TOTAL: '100', BRIDGE_MAX_INFLIGHT_PER_TOKEN: '50', BRIDGE_MAX_OWED_BYTES_PER_TOKEN: '1048576',
      BRIDGE_MAX_AUTH_FAILURES_PER_ADDRESS: '5', BRIDGE_AUTH_FAILURE_WINDOW_MS: '30000',
    }, []);
    expect(options).toMatchObject({
      maxInflightTotal: 100, maxInflightPerToken: 50, maxOwedBytesPerToken: 1_048_576, maxAuthFailuresPerAddress: 5, authFailureWindowMs: 30_000,
    });
    expect(options.tokens).toEqual([{ token: TOKEN, prefix: 'a:', maxInflight: 4, maxOwedBytes: 4096 }]);
  });

  it('combines BRIDGE_TOKEN with the BRIDGE_TOKENS list', () => {
    const { options } = readConfig({ BRIDGE_TOKEN: TOKEN, BRIDGE_TOKENS: JSON.stringify([{ token: TOKEN + 'x', prefix: 'a:' }]) }, []);
    expect(options.tokens).toEqual([{ token: TOKEN }, { token: TOKEN + 'x', prefix: 'a:' }]);
  });

  it('refuses to start without a token, naming the setting', () => {
    const err = thrown(() => readConfig({}, []));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).setting).toBe('BRIDGE_TOKEN (--token)');
    expect(err.message).toMatch(/^BRIDGE_TOKEN \(--token\): no token configured/);
  });

  it('names the setting for unparsable values and unknown flags, never echoing BRIDGE_TOKENS', () => {
    expect(thrown(() => readConfig({ BRIDGE_TOKEN: TOKEN, BRIDGE_PORT: 'abc' }, [])).message)
      .toBe('BRIDGE_PORT (--port): must be a non-negative integer, got "abc"');
    expect(thrown(() => readConfig({ BRIDGE_TOKEN: TOKEN }, ['--nope', '1'])).message).toBe('--nope: unknown flag or argument "--nope"; see --help');
    expect(thrown(() => readConfig({ BRIDGE_TOKEN: TOKEN }, ['--port'])).message).toBe('--port: needs a value');
    const json = thrown(() => readConfig({ BRIDGE_TOKENS: '[{"token": "sup3r-secret-value!!"' }, []));
    expect(json.message).toBe('BRIDGE_TOKENS (--tokens): must be valid JSON: an array of {"token": "...", "prefix": "..."} objects');
    expect(json.message).not.toContain('sup3r');
  });

  it('maps option names back to settings for validation errors', () => {
    expect(settingFor('maxFrameBytes')).toBe('BRIDGE_MAX_FRAME_BYTES (--max-frame-bytes)');
    expect(settingFor('tokens')).toBe('BRIDGE_TOKEN (--token) / BRIDGE_TOKENS (--tokens)');
  });
});

describe('readConfig: secrets from files', () => {
  it('reads BRIDGE_TOKEN_FILE, BRIDGE_TOKENS_FILE and VALKEY_PASSWORD_FILE, and warns about a token flag', () => {
    const files: Record<string, string> = {
      '/s/token': 'file-token-0123456789abcdef\n',
      '/s/tokens': '[{"token": "tenant-token-0123456789", "prefix": "t:", "maxSessions": 3}]',
      '/s/pw': 'p@ss word\n',
    };
    const { options, warnings } = readConfig(
      { BRIDGE_TOKEN_FILE: '/s/token', BRIDGE_TOKENS_FILE: '/s/tokens', VALKEY_PASSWORD_FILE: '/s/pw', VALKEY_URL: 'redis://cache:6380/1' },
      ['--token', 'flag-token-0123456789abcdef'],
      (path) => files[path]!,
    );
    expect(options.tokens).toEqual([
      { token: 'flag-token-0123456789abcdef' },
      { token: 'tenant-token-0123456789', prefix: 't:', maxSessions: 3 },
    ]);
    expect(parseValkeyUrl('valkeyUrl', options.valkeyUrl).password).toBe('p@ss word');
    expect(warnings).toEqual(['--token puts a secret on the command line, where ps shows it; use BRIDGE_TOKEN_FILE or the environment instead']);
  });

  it('warns when /metrics would be open on a listener other than loopback, and only then', () => {
    const token = { BRIDGE_TOKEN: 'file-token-0123456789abcdef' };
    expect(readConfig({ ...token, BRIDGE_HOST: '0.0.0.0' }, []).warnings)
      .toEqual(['/metrics and the details of /healthz are open to anyone who reaches 0.0.0.0: set BRIDGE_METRICS_TOKEN_FILE (or BRIDGE_METRICS_TOKEN)']);
    expect(readConfig({ ...token, BRIDGE_HOST: '0.0.0.0', BRIDGE_METRICS_TOKEN: 'metrics-token-0123456789' }, []).warnings).toEqual([]);
    expect(readConfig(token, []).warnings).toEqual([]);
  });

  it('names the file variable when its file cannot be read', () => {
    expect(() => readConfig({ BRIDGE_TOKEN_FILE: '/nope' }, [], () => { throw new Error('ENOENT'); }))
      .toThrow(new ConfigError('BRIDGE_TOKEN_FILE', 'cannot read "/nope": ENOENT'));
  });
});
