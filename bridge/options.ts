// The bridge's options: one type, one frozen defaults object, one resolve function that validates everything once
// (naming the option and the value) and returns a read-only result. Tokens are validated in token-options.ts.
import { LOG_LEVELS, type LogLevel, type LogSink } from './log.ts';
import { describe, fail, int } from './option-errors.ts';
import { resolveMetricsToken, resolveTokens, type ResolvedToken } from './token-options.ts';

/** One accepted bearer token, optionally restricted to keys that start with `prefix` (compared as UTF-8 bytes). */
export interface BridgeToken {
  /** The secret, at least 16 visible ASCII characters. */
  readonly token: string;
  /** Key prefix this token may touch (plus `valkeyid:` markers, see docs/protocol.md). Absent: every key. */
  readonly prefix?: string;
  /** Concurrent sessions this token may hold. Default: `maxSessionsPerToken`. */
  readonly maxSessions?: number;
  /** Commands in flight over all of this token's sessions. Default: `maxInflightPerToken`. */
  readonly maxInflight?: number;
  /** Reply bytes owed over all of this token's sessions, in bytes. Default: `maxOwedBytesPerToken`. */
  readonly maxOwedBytes?: number;
}

/** Options of {@link createBridge}. Every bound has a finite default. */
export interface BridgeOptions {
  /** Tokens clients present as `Authorization: Bearer <token>`. Required, at least one. */
  tokens: readonly BridgeToken[];
  /** `redis://` or `rediss://` URL with optional user, password and `/db`. Default `redis://127.0.0.1:6379`. */
  valkeyUrl?: string;
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** TCP port to listen on; 0 picks a free one (see `Bridge.port`). Default 7379. */
  port?: number;
  /** Operator extension commands (names, case-insensitive); each takes its first argument as its only key. Default none. */
  extraCommands?: readonly string[];
  /** Concurrent WebSocket sessions; more get 503 before the upgrade. Default 10000. */
  maxSessions?: number;
  /** Concurrent sessions one token may hold (a token's own `maxSessions` overrides it); more get 503. Default 1000. */
  maxSessionsPerToken?: number;
  /**
   * Failed upgrades one source address may make within `authFailureWindowMs`; past it its upgrades get 429 (with
   * Retry-After) until the window ends, without the token being looked at. Default 0: off (Workers share egress
   * addresses, and a proxy in front makes every client one address).
   */
  maxAuthFailuresPerAddress?: number;
  /** The window of `maxAuthFailuresPerAddress`, in ms. Default 60000. */
  authFailureWindowMs?: number;
  /** Longest key a command may name, in bytes; longer keys get an error reply. Default 16 KiB. */
  maxKeyBytes?: number;
  /** Largest PX of a marker SET (`valkeyid:*`), in ms; markers must carry PX. Default 600000 (10 min). */
  maxMarkerTtlMs?: number;
  /** WebSocket fragments one message may have; more closes the session with 1008. Default 64. */
  maxFragmentsPerMessage?: number;
  /** Largest client WebSocket message in bytes; larger closes the session with 1009. Default 8 MiB. */
  maxFrameBytes?: number;
  /** Commands per session accepted but not yet answered; past it the session's socket is paused. Default 256. */
  maxInflight?: number;
  /**
   * Commands in flight (dispatched, not yet answered) over every session of one token (a token's own `maxInflight`
   * overrides it); past it that token's sessions wait for their turn, others do not. Default 128.
   */
  maxInflightPerToken?: number;
  /**
   * Commands in flight over all sessions; past it sessions wait for their turn (round-robin), so a command is never
   * queued behind more than this many on the shared connection. Default 256.
   */
  maxInflightTotal?: number;
  /**
   * Commands one client message may hold; more closes the session with 1009 before any of them runs. Bounds the
   * memory one message can take once decoded (~0.5 KiB per command). Default 65536.
   */
  maxCommandsPerFrame?: number;
  /**
   * Reply bytes a session may be owed (queued towards it) before the bridge stops dispatching its commands; its
   * window of commands in flight also shrinks to about maxOwedBytes / (its recent reply size). Default 4 MiB.
   */
  maxOwedBytes?: number;
  /**
   * Reply bytes owed over every session of one token (a token's own `maxOwedBytes` overrides it); past it that
   * token's sessions dispatch nothing until some drain. Default 64 MiB.
   */
  maxOwedBytesPerToken?: number;
  /** Bytes queued towards one client before the session is closed with 1008. Default 16 MiB. */
  maxBufferedBytes?: number;
  /** Keys one session may have registered for invalidation; the oldest are evicted (with a push). Default 10000. */
  maxTrackedKeys?: number;
  /** Interval of the PING health check on the Valkey connections, in ms; a missed reply destroys the socket. Default 1000. */
  valkeyPingMs?: number;
  /** How long a command may wait for Valkey, in ms, before `-TIMEOUT`. Default 5000. */
  commandTimeoutMs?: number;
  /** Interval of WebSocket pings to clients, in ms; no pong by the next one terminates the session. Default 15000. */
  heartbeatMs?: number;
  /** On close, how long in-flight commands may finish before sessions are closed with 1001, in ms. Default 5000. */
  shutdownGraceMs?: number;
  /**
   * When set, GET /metrics requires `Authorization: Bearer <metricsToken>` and GET /healthz shows details only with
   * it (otherwise just `{"ok"}`). Default: unset (both open, for a listener that only operators reach).
   */
  metricsToken?: string;
  /** For rediss://: PEM CA to trust (instead of the system's), and a client certificate + key. Default: system CAs, none. */
  valkeyTls?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
  /** PEM certificate chain and private key: the bridge then serves https:// and wss:// itself. Default: plain ws://. */
  tls?: { readonly cert: string; readonly key: string };
  /** Minimum level written. Default `info`. */
  logLevel?: LogLevel;
  /** Where log lines go. Default: process.stderr. */
  logSink?: LogSink;
  /** @internal Tests only: a different URL for the invalidation subscriber (e.g. to bypass a fault proxy). */
  subscriberUrl?: string;
}

export const BRIDGE_DEFAULTS = Object.freeze({
  valkeyUrl: 'redis://127.0.0.1:6379',
  host: '127.0.0.1',
  port: 7379,
  extraCommands: Object.freeze([]) as readonly string[],
  maxSessions: 10_000,
  maxSessionsPerToken: 1_000,
  maxAuthFailuresPerAddress: 0,
  authFailureWindowMs: 60_000,
  maxKeyBytes: 16 * 1024,
  maxMarkerTtlMs: 600_000,
  maxFragmentsPerMessage: 64,
  maxFrameBytes: 8 * 1024 * 1024,
  maxInflight: 256,
  maxInflightPerToken: 128,
  maxInflightTotal: 256,
  maxCommandsPerFrame: 65_536,
  maxOwedBytes: 4 * 1024 * 1024,
  maxOwedBytesPerToken: 64 * 1024 * 1024,
  maxBufferedBytes: 16 * 1024 * 1024,
  maxTrackedKeys: 10_000,
  valkeyPingMs: 1_000,
  commandTimeoutMs: 5_000,
  heartbeatMs: 15_000,
  shutdownGraceMs: 5_000,
  logLevel: 'info' as LogLevel,
});

/** Where and how to reach Valkey, parsed from a URL. `display` has the password removed, for logs. */
export interface ValkeyEndpoint {
  readonly host: string;
  readonly port: number;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly db: number;
  readonly tls: boolean;
  readonly display: string;
  /** Extra TLS settings for rediss:// (CA, client certificate). */
  readonly tlsOptions?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
}

export type ResolvedBridgeOptions = Readonly<{
  tokens: readonly ResolvedToken[];
  valkey: ValkeyEndpoint;
  subscriber: ValkeyEndpoint;
  host: string;
  port: number;
  extraCommands: readonly string[];
  maxSessions: number;
  maxSessionsPerToken: number;
  maxAuthFailuresPerAddress: number;
  authFailureWindowMs: number;
  maxKeyBytes: number;
  maxMarkerTtlMs: number;
  maxFragmentsPerMessage: number;
  maxFrameBytes: number;
  maxInflight: number;
  maxInflightPerToken: number;
  maxInflightTotal: number;
  maxCommandsPerFrame: number;
  maxOwedBytes: number;
  maxOwedBytesPerToken: number;
  maxBufferedBytes: number;
  maxTrackedKeys: number;
  valkeyPingMs: number;
  commandTimeoutMs: number;
  heartbeatMs: number;
  shutdownGraceMs: number;
  logLevel: LogLevel;
  logSink: LogSink | undefined;
  /** SHA-256 of metricsToken, or null. */
  metricsDigest: Buffer | null;
  tls: { readonly cert: string; readonly key: string } | null;
}>;

/** Extension names that would break the shared data connection (state, blocking, subscriber mode) or its security. */
const FORBIDDEN_EXTENSIONS = new Set([
  'MULTI', 'EXEC', 'DISCARD', 'WATCH', 'UNWATCH', 'SUBSCRIBE', 'PSUBSCRIBE', 'SSUBSCRIBE', 'UNSUBSCRIBE',
  'PUNSUBSCRIBE', 'SUNSUBSCRIBE', 'MONITOR', 'CLIENT', 'RESET', 'QUIT', 'SELECT', 'HELLO', 'AUTH', 'SWAPDB',
  'BLPOP', 'BRPOP', 'BLMOVE', 'BRPOPLPUSH', 'BZPOPMIN', 'BZPOPMAX', 'BLMPOP', 'BZMPOP', 'XREAD', 'XREADGROUP',
  'WAIT', 'WAITAOF', 'FLUSHALL', 'FLUSHDB', 'SHUTDOWN', 'DEBUG', 'CONFIG', 'ACL', 'SCRIPT', 'FUNCTION', 'EVAL',
  'EVALSHA', 'EVAL_RO', 'EVALSHA_RO', 'FCALL', 'FCALL_RO', 'KEYS', 'SCAN', 'MIGRATE', 'REPLICAOF', 'SLAVEOF',
  'SYNC', 'PSYNC', 'MODULE', 'READONLY', 'READWRITE', 'CLUSTER',
  // Commands naming a second key: the bridge checks only the first argument against a token's prefix, so these
  // would let a prefixed token read or write another tenant's keys (e.g. RENAME tenant-a:x tenant-b:x).
  'RENAME', 'RENAMENX', 'COPY', 'MOVE', 'MSET', 'MSETNX', 'MGET', 'UNLINK', 'TOUCH', 'SMOVE', 'LMOVE', 'RPOPLPUSH',
  'SINTERSTORE', 'SUNIONSTORE', 'SDIFFSTORE', 'SINTER', 'SUNION', 'SDIFF', 'SINTERCARD', 'ZINTERSTORE', 'ZUNIONSTORE',
  'ZDIFFSTORE', 'ZRANGESTORE', 'ZINTER', 'ZUNION', 'ZDIFF', 'ZINTERCARD', 'LMPOP', 'ZMPOP', 'BITOP', 'PFMERGE',
  'PFCOUNT', 'SORT', 'SORT_RO', 'GEORADIUS', 'GEORADIUSBYMEMBER', 'GEOSEARCHSTORE',
]);
const BUILT_IN = new Set(['PING', 'TRACKED.GET', 'GET', 'PTTL', 'EXISTS', 'SET', 'DEL']);

/**
 * Parses a `redis://` / `rediss://` URL. The password never appears in errors or in `display`.
 * @throws TypeError / RangeError naming `option`.
 */
export function parseValkeyUrl(option: string, url: unknown): ValkeyEndpoint {
  if (typeof url !== 'string') fail('type', option, `${option} must be a string, got ${describe(url)}`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    fail('range', option, `${option} must be a redis:// or rediss:// URL, got a string that is not a URL`);
  }
  const shown = `${parsed.protocol}//${parsed.hostname}${parsed.port ? ':' + parsed.port : ''}${parsed.pathname}`;
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    fail('range', option, `${option} must use redis:// or rediss://, got ${JSON.stringify(shown)}`);
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) fail('range', option, `${option} has no host: ${JSON.stringify(shown)}`);
  const port = parsed.port ? Number(parsed.port) : 6379;
  const path = parsed.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,5}$/.test(path)) {
    fail('range', option, `${option} path must be a database number like /0, got ${JSON.stringify(shown)}`);
  }
  if (parsed.search || parsed.hash) fail('range', option, `${option} must not have a query or fragment`);
  return Object.freeze({
    host,
    port,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: path === '' ? 0 : Number(path),
    tls: parsed.protocol === 'rediss:',
    display: shown,
  });
}

function resolveTls(value: unknown): { cert: string; key: string } | null {
  if (value === undefined) return null;
  const { cert, key } = (value ?? {}) as { cert?: unknown; key?: unknown };
  if (typeof cert !== 'string' || !cert.includes('-----BEGIN')) fail('type', 'tls', 'tls.cert must be a PEM certificate chain');
  if (typeof key !== 'string' || !key.includes('-----BEGIN')) fail('type', 'tls', 'tls.key must be a PEM private key');
  return Object.freeze({ cert, key });
}

function resolveExtraCommands(value: unknown): readonly string[] {
  if (!Array.isArray(value)) fail('type', 'extraCommands', `extraCommands must be an array of command names, got ${describe(value)}`);
  const names = new Set<string>();
  for (const raw of value) {
    if (typeof raw !== 'string' || !/^[A-Za-z][A-Za-z0-9_.|-]{0,63}$/.test(raw)) {
      fail('range', 'extraCommands', `extraCommands entries must be command names like HSET, got ${describe(raw)}`);
    }
    const name = raw.toUpperCase();
    if (FORBIDDEN_EXTENSIONS.has(name)) {
      fail('range', 'extraCommands', `extraCommands must not include ${name}: it would break or escape the bridge's shared connection`);
    }
    if (BUILT_IN.has(name)) fail('range', 'extraCommands', `extraCommands must not repeat the built-in command ${name}`);
    names.add(name);
  }
  return Object.freeze([...names]);
}

/**
 * Validates `options` against {@link BRIDGE_DEFAULTS}.
 * @throws TypeError / RangeError (with `.option`) naming the option and the value received.
 */
export function resolveBridgeOptions(options: BridgeOptions): ResolvedBridgeOptions {
  if (typeof options !== 'object' || options === null) fail('type', 'options', `options must be an object, got ${describe(options)}`);
  const d = BRIDGE_DEFAULTS;
  const parsed = parseValkeyUrl('valkeyUrl', options.valkeyUrl ?? d.valkeyUrl);
  const valkey: ValkeyEndpoint = options.valkeyTls ? Object.freeze({ ...parsed, tlsOptions: options.valkeyTls }) : parsed;
  const host = options.host ?? d.host;
  if (typeof host !== 'string' || host.length === 0) fail('type', 'host', `host must be a non-empty string, got ${describe(host)}`);
  const maxFrameBytes = int('maxFrameBytes', options.maxFrameBytes ?? d.maxFrameBytes, 64, 512 * 1024 * 1024);
  const perToken = {
    maxSessions: int('maxSessionsPerToken', options.maxSessionsPerToken ?? d.maxSessionsPerToken, 1, 1_000_000),
    maxInflight: int('maxInflightPerToken', options.maxInflightPerToken ?? d.maxInflightPerToken, 1, 10_000_000),
    maxOwedBytes: int('maxOwedBytesPerToken', options.maxOwedBytesPerToken ?? d.maxOwedBytesPerToken, 1024, 64 * 1024 * 1024 * 1024),
  };
  const logLevel = options.logLevel ?? d.logLevel;
  if (!LOG_LEVELS.includes(logLevel)) fail('range', 'logLevel', `logLevel must be one of ${LOG_LEVELS.join(', ')}, got ${describe(logLevel)}`);
  if (options.logSink !== undefined && typeof options.logSink !== 'function') {
    fail('type', 'logSink', `logSink must be a function, got ${describe(options.logSink)}`);
  }
  return Object.freeze({
    tokens: Object.freeze(resolveTokens(options.tokens, perToken)),
    valkey,
    subscriber: options.subscriberUrl === undefined ? valkey : parseValkeyUrl('subscriberUrl', options.subscriberUrl),
    host,
    port: int('port', options.port ?? d.port, 0, 65_535),
    extraCommands: resolveExtraCommands(options.extraCommands ?? d.extraCommands),
    maxSessions: int('maxSessions', options.maxSessions ?? d.maxSessions, 1, 1_000_000),
    maxSessionsPerToken: perToken.maxSessions,
    maxAuthFailuresPerAddress: int('maxAuthFailuresPerAddress', options.maxAuthFailuresPerAddress ?? d.maxAuthFailuresPerAddress, 0, 1_000_000),
    authFailureWindowMs: int('authFailureWindowMs', options.authFailureWindowMs ?? d.authFailureWindowMs, 1, 86_400_000),
    maxKeyBytes: int('maxKeyBytes', options.maxKeyBytes ?? d.maxKeyBytes, 16, 512 * 1024 * 1024),
    maxMarkerTtlMs: int('maxMarkerTtlMs', options.maxMarkerTtlMs ?? d.maxMarkerTtlMs, 1, 2_147_483_647),
    maxFragmentsPerMessage: int('maxFragmentsPerMessage', options.maxFragmentsPerMessage ?? d.maxFragmentsPerMessage, 1, 1_000_000),
    maxFrameBytes,
    maxInflight: int('maxInflight', options.maxInflight ?? d.maxInflight, 1, 100_000),
    maxInflightPerToken: perToken.maxInflight,
    maxInflightTotal: int('maxInflightTotal', options.maxInflightTotal ?? d.maxInflightTotal, 1, 10_000_000),
    maxCommandsPerFrame: int('maxCommandsPerFrame', options.maxCommandsPerFrame ?? d.maxCommandsPerFrame, 1, 10_000_000),
    maxOwedBytes: int('maxOwedBytes', options.maxOwedBytes ?? d.maxOwedBytes, 1024, 1024 * 1024 * 1024),
    maxOwedBytesPerToken: perToken.maxOwedBytes,
    maxBufferedBytes: int('maxBufferedBytes', options.maxBufferedBytes ?? d.maxBufferedBytes, 1024, 1024 * 1024 * 1024),
    maxTrackedKeys: int('maxTrackedKeys', options.maxTrackedKeys ?? d.maxTrackedKeys, 1, 10_000_000),
    valkeyPingMs: int('valkeyPingMs', options.valkeyPingMs ?? d.valkeyPingMs, 10, 600_000),
    commandTimeoutMs: int('commandTimeoutMs', options.commandTimeoutMs ?? d.commandTimeoutMs, 10, 600_000),
    heartbeatMs: int('heartbeatMs', options.heartbeatMs ?? d.heartbeatMs, 10, 3_600_000),
    shutdownGraceMs: int('shutdownGraceMs', options.shutdownGraceMs ?? d.shutdownGraceMs, 0, 600_000),
    logLevel,
    logSink: options.logSink,
    metricsDigest: resolveMetricsToken(options.metricsToken),
    tls: resolveTls(options.tls),
  });
}
