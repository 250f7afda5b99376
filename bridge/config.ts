// The command-line/environment surface of the bridge: every setting's env var, flag and option, and the parser
// that turns them into BridgeOptions (flags win). Pure: main.ts passes process.env and argv in.
import { BRIDGE_DEFAULTS, type BridgeOptions, type BridgeToken } from './options.ts';

type Kind = 'string' | 'int' | 'bool' | 'list' | 'tokens' | 'token';

interface Setting {
  readonly env: string;
  readonly flag: string;
  readonly option: keyof BridgeOptions;
  readonly kind: Kind;
  readonly help: string;
}

/** Every setting, in the order `--help` lists them. Defaults live in BRIDGE_DEFAULTS (options.ts). */
export const SETTINGS: readonly Setting[] = Object.freeze([
  { env: 'VALKEY_URL', flag: '--valkey-url', option: 'valkeyUrl', kind: 'string', help: 'redis:// or rediss:// URL (user, password, /db) [redis://127.0.0.1:6379]' },
  { env: 'VALKEY_CLUSTER', flag: '--cluster', option: 'cluster', kind: 'bool', help: 'Valkey Cluster: VALKEY_URL lists seed nodes, comma-separated [false]' },
  { env: 'BRIDGE_CLUSTER_REFRESH_MS', flag: '--cluster-refresh-ms', option: 'clusterRefreshMs', kind: 'int', help: 'cluster only: slot map refresh interval [1000]' },
  { env: 'BRIDGE_HOST', flag: '--host', option: 'host', kind: 'string', help: 'interface to listen on [127.0.0.1]' },
  { env: 'BRIDGE_PORT', flag: '--port', option: 'port', kind: 'int', help: 'port to listen on; 0 picks one [7379]' },
  { env: 'BRIDGE_TOKEN', flag: '--token', option: 'tokens', kind: 'token', help: 'bearer token, at least 16 characters, every key' },
  { env: 'BRIDGE_TOKENS', flag: '--tokens', option: 'tokens', kind: 'tokens', help: 'JSON array of {"token": "...", "prefix": "tenant-a:", "maxSessions"?, "maxInflight"?, "maxOwedBytes"?}' },
  { env: 'BRIDGE_EXTRA_COMMANDS', flag: '--extra-commands', option: 'extraCommands', kind: 'list', help: 'comma-separated extension commands (first argument is the key)' },
  { env: 'BRIDGE_MAX_SESSIONS', flag: '--max-sessions', option: 'maxSessions', kind: 'int', help: 'concurrent sessions [10000]' },
  { env: 'BRIDGE_MAX_SESSIONS_PER_TOKEN', flag: '--max-sessions-per-token', option: 'maxSessionsPerToken', kind: 'int', help: 'concurrent sessions per token (a token\'s maxSessions overrides) [1000]' },
  { env: 'BRIDGE_MAX_AUTH_FAILURES_PER_ADDRESS', flag: '--max-auth-failures-per-address', option: 'maxAuthFailuresPerAddress', kind: 'int', help: 'failed upgrades per source address per window before 429 [0: off]' },
  { env: 'BRIDGE_AUTH_FAILURE_WINDOW_MS', flag: '--auth-failure-window-ms', option: 'authFailureWindowMs', kind: 'int', help: 'window of --max-auth-failures-per-address [60000]' },
  { env: 'BRIDGE_MAX_KEY_BYTES', flag: '--max-key-bytes', option: 'maxKeyBytes', kind: 'int', help: 'longest key in bytes; longer gets an error reply [16384]' },
  { env: 'BRIDGE_MAX_MARKER_TTL_MS', flag: '--max-marker-ttl-ms', option: 'maxMarkerTtlMs', kind: 'int', help: 'largest PX of a valkeyid: marker SET [600000]' },
  { env: 'BRIDGE_MAX_FRAGMENTS_PER_MESSAGE', flag: '--max-fragments-per-message', option: 'maxFragmentsPerMessage', kind: 'int', help: 'WebSocket fragments per message before close 1008 [64]' },
  { env: 'BRIDGE_MAX_FRAME_BYTES', flag: '--max-frame-bytes', option: 'maxFrameBytes', kind: 'int', help: 'largest client message [8388608]' },
  { env: 'BRIDGE_MAX_INFLIGHT', flag: '--max-inflight', option: 'maxInflight', kind: 'int', help: 'unanswered commands per session [256]' },
  { env: 'BRIDGE_MAX_INFLIGHT_PER_TOKEN', flag: '--max-inflight-per-token', option: 'maxInflightPerToken', kind: 'int', help: 'unanswered commands over one token\'s sessions (a token\'s maxInflight overrides) [128]' },
  { env: 'BRIDGE_MAX_INFLIGHT_TOTAL', flag: '--max-inflight-total', option: 'maxInflightTotal', kind: 'int', help: 'unanswered commands over all sessions; past it sessions take turns [256]' },
  { env: 'BRIDGE_MAX_COMMANDS_PER_FRAME', flag: '--max-commands-per-frame', option: 'maxCommandsPerFrame', kind: 'int', help: 'commands in one client message before close 1009 [65536]' },
  { env: 'BRIDGE_MAX_OWED_BYTES', flag: '--max-owed-bytes', option: 'maxOwedBytes', kind: 'int', help: 'reply bytes owed to a session before its dispatch stops [4194304]' },
  { env: 'BRIDGE_MAX_OWED_BYTES_PER_TOKEN', flag: '--max-owed-bytes-per-token', option: 'maxOwedBytesPerToken', kind: 'int', help: 'reply bytes owed over one token\'s sessions before they wait (a token\'s maxOwedBytes overrides) [67108864]' },
  { env: 'BRIDGE_MAX_BUFFERED_BYTES', flag: '--max-buffered-bytes', option: 'maxBufferedBytes', kind: 'int', help: 'unsent bytes per session before close 1008 [16777216]' },
  { env: 'BRIDGE_MAX_TRACKED_KEYS', flag: '--max-tracked-keys', option: 'maxTrackedKeys', kind: 'int', help: 'tracked keys per session [10000]' },
  { env: 'BRIDGE_VALKEY_PING_MS', flag: '--valkey-ping-ms', option: 'valkeyPingMs', kind: 'int', help: 'Valkey PING health-check interval [1000]' },
  { env: 'BRIDGE_COMMAND_TIMEOUT_MS', flag: '--command-timeout-ms', option: 'commandTimeoutMs', kind: 'int', help: 'Valkey command timeout [5000]' },
  { env: 'BRIDGE_HEARTBEAT_MS', flag: '--heartbeat-ms', option: 'heartbeatMs', kind: 'int', help: 'WebSocket ping interval [15000]' },
  { env: 'BRIDGE_SHUTDOWN_GRACE_MS', flag: '--shutdown-grace-ms', option: 'shutdownGraceMs', kind: 'int', help: 'time for in-flight commands on shutdown [5000]' },
  { env: 'BRIDGE_METRICS_TOKEN', flag: '--metrics-token', option: 'metricsToken', kind: 'string', help: 'bearer token required by /metrics (and for /healthz details) [unset: open]' },
  { env: 'BRIDGE_LOG_LEVEL', flag: '--log-level', option: 'logLevel', kind: 'string', help: 'debug, info, warn, error or silent [info]' },
]);

/** `<VAR>_FILE` → the setting its file's content stands for (VALKEY_PASSWORD: the password of VALKEY_URL). */
const SECRET_FILES: ReadonlyArray<readonly [string, string]> = [
  ['BRIDGE_TOKEN_FILE', 'BRIDGE_TOKEN'],
  ['BRIDGE_TOKENS_FILE', 'BRIDGE_TOKENS'],
  ['BRIDGE_METRICS_TOKEN_FILE', 'BRIDGE_METRICS_TOKEN'],
  ['VALKEY_PASSWORD_FILE', 'VALKEY_PASSWORD'],
];
/** Listen addresses only this machine reaches: an open /metrics there is not worth a warning. */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);
const SECRET_FLAGS = new Set(['--token', '--tokens', '--metrics-token', '--valkey-url']);

/** A setting could not be parsed. `setting` names it as the operator wrote it (env var and flag). */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly setting: string, message: string) {
    super(`${setting}: ${message}`);
  }
}

/** "BRIDGE_PORT (--port)" for an option name, for messages about options that failed validation. */
export function settingFor(option: string): string {
  const matching = SETTINGS.filter((s) => s.option === option);
  if (matching.length === 0) return option;
  return matching.map((s) => `${s.env} (${s.flag})`).join(' / ');
}

export function usage(): string {
  const rows = SETTINGS.map((s) => `  ${(s.flag + ' / ' + s.env).padEnd(54)} ${s.help}`);
  return ['Usage: valkeyaside-bridge [flags]   (flags override environment variables)', '', ...rows, ''].join('\n');
}

/**
 * Reads settings from `env`, then `argv` (flags win).
 * @throws ConfigError naming the setting; token values never appear in messages.
 */
export function readConfig(
  env: Readonly<Record<string, string | undefined>>,
  argv: readonly string[],
  readFile: (path: string) => string = () => {
    throw new Error('reading files is not available here');
  },
): { options: BridgeOptions; help: boolean; warnings: string[] } {
  const raw = new Map<Setting, string>();
  const warnings: string[] = [];
  let secretPassword: string | undefined;
  // Secrets from files (mounted secrets), so that they appear neither in `ps` nor in the environment of children.
  for (const [fileVar, target] of SECRET_FILES) {
    const path = env[fileVar];
    if (path === undefined || path === '') continue;
    let content: string;
    try {
      content = readFile(path).replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError(fileVar, `cannot read ${JSON.stringify(path)}: ${(err as Error).message}`);
    }
    if (target === 'VALKEY_PASSWORD') {
      secretPassword = content;
      continue;
    }
    raw.set(SETTINGS.find((s) => s.env === target)!, content);
  }
  for (const setting of SETTINGS) {
    const value = env[setting.env];
    if (value !== undefined && value !== '') raw.set(setting, value);
  }
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const setting = SETTINGS.find((s) => s.flag === flag);
    if (!setting) throw new ConfigError(flag.startsWith('-') ? flag : 'arguments', `unknown flag or argument ${JSON.stringify(flag.slice(0, 40))}; see --help`);
    // A bare boolean flag (`--cluster`) means true and takes no value; `--cluster=false` turns it off.
    let value: string | undefined = eq !== -1 ? arg.slice(eq + 1) : setting.kind === 'bool' ? 'true' : argv[++i];
    if (value === undefined) throw new ConfigError(flag, 'needs a value');
    if (SECRET_FLAGS.has(flag) && (flag !== '--valkey-url' || /\/\/[^/@]*:[^/@]*@/.test(value))) {
      warnings.push(`${flag} puts a secret on the command line, where ps shows it; use ${setting.env}_FILE or the environment instead`);
    }
    raw.set(setting, value);
  }
  const options: Record<string, unknown> = {};
  const tokens: BridgeToken[] = [];
  for (const [setting, value] of raw) {
    const name = `${setting.env} (${setting.flag})`;
    switch (setting.kind) {
      case 'string':
        options[setting.option] = value;
        break;
      case 'int':
        if (!/^\d{1,15}$/.test(value.trim())) throw new ConfigError(name, `must be a non-negative integer, got ${JSON.stringify(value.slice(0, 40))}`);
        options[setting.option] = Number(value.trim());
        break;
      case 'bool':
        if (!/^(true|false|1|0|yes|no)$/i.test(value.trim())) throw new ConfigError(name, `must be true or false, got ${JSON.stringify(value.slice(0, 40))}`);
        options[setting.option] = /^(true|1|yes)$/i.test(value.trim());
        break;
      case 'list':
        options[setting.option] = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
        break;
      case 'token':
        tokens.push({ token: value });
        break;
      case 'tokens':
        tokens.push(...parseTokens(name, value));
        break;
    }
  }
  if (tokens.length === 0 && !help) {
    throw new ConfigError('BRIDGE_TOKEN (--token)', 'no token configured: set BRIDGE_TOKEN (at least 16 characters) or BRIDGE_TOKENS; the bridge refuses to run without one');
  }
  options.tokens = tokens;
  const certFile = env.BRIDGE_TLS_CERT_FILE;
  const keyFile = env.BRIDGE_TLS_KEY_FILE;
  if (certFile || keyFile) {
    if (!certFile || !keyFile) throw new ConfigError('BRIDGE_TLS_CERT_FILE / BRIDGE_TLS_KEY_FILE', 'set both, or neither');
    const read = (name: string, path: string) => {
      try {
        return readFile(path);
      } catch (err) {
        throw new ConfigError(name, `cannot read ${JSON.stringify(path)}: ${(err as Error).message}`);
      }
    };
    options.tls = { cert: read('BRIDGE_TLS_CERT_FILE', certFile), key: read('BRIDGE_TLS_KEY_FILE', keyFile) };
  }
  const valkeyTls: Record<string, string> = {};
  for (const [name, field] of [['VALKEY_TLS_CA_FILE', 'ca'], ['VALKEY_TLS_CERT_FILE', 'cert'], ['VALKEY_TLS_KEY_FILE', 'key']] as const) {
    const path = env[name];
    if (!path) continue;
    try {
      valkeyTls[field] = readFile(path);
    } catch (err) {
      throw new ConfigError(name, `cannot read ${JSON.stringify(path)}: ${(err as Error).message}`);
    }
  }
  if (Object.keys(valkeyTls).length > 0) options.valkeyTls = valkeyTls;
  if (secretPassword !== undefined) {
    // Every seed of a cluster list gets the password.
    options.valkeyUrl = String(options.valkeyUrl ?? 'redis://127.0.0.1:6379').split(',').map((seed) => {
      const url = new URL(seed.trim());
      url.password = encodeURIComponent(secretPassword!);
      return url.toString();
    }).join(',');
  }
  const host = String(options.host ?? BRIDGE_DEFAULTS.host);
  if (options.metricsToken === undefined && !LOOPBACK_HOSTS.has(host)) {
    warnings.push(`/metrics and the details of /healthz are open to anyone who reaches ${host}: set BRIDGE_METRICS_TOKEN_FILE (or BRIDGE_METRICS_TOKEN)`);
  }
  return { options: options as unknown as BridgeOptions, help, warnings };
}

const TOKEN_FIELDS = new Set(['token', 'prefix', 'maxSessions', 'maxInflight', 'maxOwedBytes']);

function parseTokens(name: string, value: string): BridgeToken[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    // JSON.parse messages quote the input, which holds secrets: report only the shape expected.
    throw new ConfigError(name, 'must be valid JSON: an array of {"token": "...", "prefix": "..."} objects');
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw new ConfigError(name, 'must be a non-empty JSON array of {"token", "prefix"} objects');
  return parsed.map((entry: unknown, i: number) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new ConfigError(name, `entry ${i} must be an object {"token", "prefix"}`);
    const extra = Object.keys(entry).filter((k) => !TOKEN_FIELDS.has(k));
    if (extra.length > 0) throw new ConfigError(name, `entry ${i} has unknown field ${JSON.stringify(extra[0]!.slice(0, 40))}`);
    return entry as BridgeToken;
  });
}
