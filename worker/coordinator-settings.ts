// The coordinator's settings, their defaults and their validation: read once from the Worker's env vars in the
// Durable Object's constructor (the caller-side CacheAside options are options.ts).
import { RESP_PATH } from '../shared/protocol.ts';
import { MAX_TIMER_MS } from './options.ts';

/**
 * The env vars the Durable Object reads (all strings, as wrangler `[vars]` and secrets are).
 *
 * - `BRIDGE_URL` (required): the bridge, `ws://`, `wss://`, `http://` or `https://`; a URL without a path gets
 *   `/resp`. Several bridges (of one Valkey) are listed comma-separated, e.g. `"wss://a.example/resp,wss://b.example/resp"`:
 *   each coordinator starts at one picked from its name and moves to the next when a bridge fails (docs/bridge.md,
 *   "Deployment topologies"). At most 32; a comma inside a URL must be written `%2C`.
 * - `BRIDGE_TOKEN` (required, keep it a secret): sent as `Authorization: Bearer <token>`.
 * - `VALKEYASIDE_CLIENT_TTL_MS` (default 10000): the liveness marker's ttl; refreshed every half of it.
 * - `VALKEYASIDE_USE_LUA_LOCK` (`"true"`/`"false"`, default false): take locks with the Lua script instead of
 *   `SET NX GET` (for servers older than 7.0).
 * - `VALKEYASIDE_MAX_ENTRIES` (default 10000) and `VALKEYASIDE_MAX_BYTES` (default 33554432): bounds of each
 *   coordinator's local cache (least recently used entries go first).
 * - `VALKEYASIDE_LOCAL_TTL_CAP_MS` (default: none): the longest a value is kept locally, whatever its ttl.
 * - `VALKEYASIDE_IDLE_MS` (default 60000): a coordinator with no get or del for this long deletes its marker and
 *   closes its socket.
 * - `VALKEYASIDE_CONNECT_TIMEOUT_MS` (default 5000): how long one WebSocket upgrade to the bridge may take.
 * - `VALKEYASIDE_MAX_PENDING_GETS` (default 10000): concurrent gets one coordinator accepts; more are refused
 *   with code `ERR_OVERLOADED`.
 * - `VALKEYASIDE_REPLY_TIMEOUT_MS` (default 15000): an open socket with commands waiting that receives nothing
 *   for this long is taken for dead (half-open) and replaced.
 * - `VALKEYASIDE_HEARTBEAT_MS` (default 5000): an open socket that received nothing for this long sends a PING, so a
 *   half-open socket is found (by the reply timeout) even while the coordinator only serves local hits.
 * - `VALKEYASIDE_UNTRACKED_RETRY_MS` (default 200): a get waiting on another client's lock, whose read the bridge
 *   could not track (its tracking was down), reads again after this long instead of waiting for a push.
 */
export interface CoordinatorEnv {
  BRIDGE_URL?: string;
  BRIDGE_TOKEN?: string;
  VALKEYASIDE_CLIENT_TTL_MS?: string;
  VALKEYASIDE_USE_LUA_LOCK?: string;
  VALKEYASIDE_MAX_ENTRIES?: string;
  VALKEYASIDE_MAX_BYTES?: string;
  VALKEYASIDE_LOCAL_TTL_CAP_MS?: string;
  VALKEYASIDE_IDLE_MS?: string;
  VALKEYASIDE_CONNECT_TIMEOUT_MS?: string;
  VALKEYASIDE_MAX_PENDING_GETS?: string;
  VALKEYASIDE_REPLY_TIMEOUT_MS?: string;
  VALKEYASIDE_HEARTBEAT_MS?: string;
  VALKEYASIDE_UNTRACKED_RETRY_MS?: string;
}

/** The coordinator's settings after validation. Read-only. */
export interface CoordinatorSettings {
  /** The bridges of BRIDGE_URL, in its order, each `http(s)://…/resp`: the form `fetch` needs for a WebSocket upgrade. */
  readonly bridgeUrls: readonly string[];
  readonly bridgeToken: string;
  readonly clientTtlMs: number;
  readonly useLuaLock: boolean;
  readonly maxEntries: number;
  readonly maxBytes: number;
  /** `Infinity` when no cap is set. */
  readonly localTtlCapMs: number;
  readonly idleMs: number;
  readonly connectTimeoutMs: number;
  readonly maxPendingGets: number;
  /** First reconnect delay (ms); doubles per failed attempt, full jitter. */
  readonly reconnectBaseMs: number;
  /** Longest reconnect delay (ms). */
  readonly reconnectMaxMs: number;
  /** Commands awaiting a reply on one socket before new ones are refused. */
  readonly maxQueuedCommands: number;
  /** Silence (ms) of an open socket with commands waiting after which it is taken for dead. */
  readonly replyTimeoutMs: number;
  /** Silence (ms) of an open socket after which it sends a PING (half-open detection while only serving hits). */
  readonly heartbeatMs: number;
  /** Longest wait (ms) on a lock whose read no push will follow (the bridge could not track it). */
  readonly untrackedRetryMs: number;
}

export const COORDINATOR_DEFAULTS = Object.freeze({
  clientTtlMs: 10_000,
  useLuaLock: false,
  maxEntries: 10_000,
  maxBytes: 32 * 1024 * 1024,
  localTtlCapMs: Infinity,
  idleMs: 60_000,
  connectTimeoutMs: 5_000,
  maxPendingGets: 10_000,
  reconnectBaseMs: 100,
  reconnectMaxMs: 1_000,
  maxQueuedCommands: 50_000,
  replyTimeoutMs: 15_000,
  heartbeatMs: 5_000,
  untrackedRetryMs: 200,
});

function envInteger(env: CoordinatorEnv, name: keyof CoordinatorEnv, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const text = String(raw).trim();
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}; got ${JSON.stringify(raw)}`);
  }
  return value;
}

function envBoolean(env: CoordinatorEnv, name: keyof CoordinatorEnv, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const text = String(raw).trim().toLowerCase();
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  throw new TypeError(`${name} must be "true" or "false"; got ${JSON.stringify(raw)}`);
}

/** Most bridges BRIDGE_URL may list. */
export const MAX_BRIDGE_URLS = 32;

/**
 * Converts one bridge URL to the `http(s)://` form `fetch` upgrades from, adding `/resp` when it has no path.
 * `name` is what error messages call it (the env var, or one entry of its list).
 * @throws TypeError when it is missing, not a URL, or of another scheme.
 */
export function bridgeHttpUrl(raw: unknown, name = 'BRIDGE_URL'): string {
  if (typeof raw !== 'string' || raw.trim() === '') {
    throw new TypeError('BRIDGE_URL is not set: bind it as a var, e.g. BRIDGE_URL = "wss://bridge.example.com/resp"');
  }
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new TypeError(`${name} is not a URL; got ${JSON.stringify(raw)}`);
  }
  const schemes: Record<string, string> = { 'ws:': 'http:', 'wss:': 'https:', 'http:': 'http:', 'https:': 'https:' };
  const scheme = schemes[url.protocol];
  if (scheme === undefined) {
    throw new TypeError(`${name} must start with ws://, wss://, http:// or https://; got ${JSON.stringify(raw)}`);
  }
  const rest = url.href.slice(url.protocol.length);
  const http = new URL(scheme + rest);
  if (http.pathname === '/' || http.pathname === '') http.pathname = RESP_PATH;
  return http.href;
}

/**
 * Reads BRIDGE_URL: one bridge URL, or several separated by commas (see {@link CoordinatorEnv}), each converted by
 * {@link bridgeHttpUrl}.
 * @throws TypeError naming BRIDGE_URL and the bad entry: missing, not a URL, another scheme, empty, listed twice,
 *   or more than {@link MAX_BRIDGE_URLS}.
 */
export function bridgeHttpUrls(raw: unknown): readonly string[] {
  if (typeof raw !== 'string' || !raw.includes(',')) return Object.freeze([bridgeHttpUrl(raw)]);
  const entries = raw.split(',');
  if (entries.length > MAX_BRIDGE_URLS) {
    throw new TypeError(`BRIDGE_URL lists ${entries.length} bridges; at most ${MAX_BRIDGE_URLS} are allowed`);
  }
  const urls: string[] = [];
  entries.forEach((entry, i) => {
    const name = `BRIDGE_URL entry ${i + 1} of ${entries.length}`;
    if (entry.trim() === '') {
      throw new TypeError(`${name} is empty in ${JSON.stringify(raw)}; separate bridge URLs with single commas (write a comma inside a URL as %2C)`);
    }
    const url = bridgeHttpUrl(entry, name);
    if (urls.includes(url)) throw new TypeError(`${name} (${JSON.stringify(entry.trim())}) lists a bridge already listed; list each bridge once`);
    urls.push(url);
  });
  return Object.freeze(urls);
}

/**
 * Reads and validates the coordinator's env vars (see {@link CoordinatorEnv}).
 * @throws TypeError or RangeError naming the env var and the value received.
 */
export function resolveCoordinatorSettings(env: CoordinatorEnv): CoordinatorSettings {
  const bridgeUrls = bridgeHttpUrls(env.BRIDGE_URL);
  const token = env.BRIDGE_TOKEN;
  if (typeof token !== 'string' || token === '') {
    throw new TypeError('BRIDGE_TOKEN is not set: add it as a secret (`wrangler secret put BRIDGE_TOKEN`)');
  }
  if (/[\r\n]/.test(token)) throw new TypeError('BRIDGE_TOKEN must not contain line breaks');
  const capRaw = env.VALKEYASIDE_LOCAL_TTL_CAP_MS;
  const localTtlCapMs = capRaw === undefined || capRaw === ''
    ? COORDINATOR_DEFAULTS.localTtlCapMs
    : envInteger(env, 'VALKEYASIDE_LOCAL_TTL_CAP_MS', 0, 1, Number.MAX_SAFE_INTEGER);
  return Object.freeze({
    bridgeUrls,
    bridgeToken: token,
    clientTtlMs: envInteger(env, 'VALKEYASIDE_CLIENT_TTL_MS', COORDINATOR_DEFAULTS.clientTtlMs, 100, MAX_TIMER_MS),
    useLuaLock: envBoolean(env, 'VALKEYASIDE_USE_LUA_LOCK', COORDINATOR_DEFAULTS.useLuaLock),
    maxEntries: envInteger(env, 'VALKEYASIDE_MAX_ENTRIES', COORDINATOR_DEFAULTS.maxEntries, 0, 10_000_000),
    maxBytes: envInteger(env, 'VALKEYASIDE_MAX_BYTES', COORDINATOR_DEFAULTS.maxBytes, 0, 2 ** 40),
    localTtlCapMs,
    idleMs: envInteger(env, 'VALKEYASIDE_IDLE_MS', COORDINATOR_DEFAULTS.idleMs, 1, MAX_TIMER_MS),
    connectTimeoutMs: envInteger(env, 'VALKEYASIDE_CONNECT_TIMEOUT_MS', COORDINATOR_DEFAULTS.connectTimeoutMs, 1, MAX_TIMER_MS),
    maxPendingGets: envInteger(env, 'VALKEYASIDE_MAX_PENDING_GETS', COORDINATOR_DEFAULTS.maxPendingGets, 1, 10_000_000),
    reconnectBaseMs: COORDINATOR_DEFAULTS.reconnectBaseMs,
    reconnectMaxMs: COORDINATOR_DEFAULTS.reconnectMaxMs,
    maxQueuedCommands: COORDINATOR_DEFAULTS.maxQueuedCommands,
    replyTimeoutMs: envInteger(env, 'VALKEYASIDE_REPLY_TIMEOUT_MS', COORDINATOR_DEFAULTS.replyTimeoutMs, 1, MAX_TIMER_MS),
    heartbeatMs: envInteger(env, 'VALKEYASIDE_HEARTBEAT_MS', COORDINATOR_DEFAULTS.heartbeatMs, 1, MAX_TIMER_MS),
    untrackedRetryMs: envInteger(env, 'VALKEYASIDE_UNTRACKED_RETRY_MS', COORDINATOR_DEFAULTS.untrackedRetryMs, 1, MAX_TIMER_MS),
  });
}
