// The example app's settings, read from the Worker's env (wrangler.toml [vars], .dev.vars, secrets) and validated
// once per isolate, with a message naming the variable that is missing or wrong.

export interface AppEnv {
  CACHE_ASIDE: DurableObjectNamespace;
  BRIDGE_URL?: string;
  BRIDGE_TOKEN?: string;
  ORIGIN_URL?: string;
  CACHE_TTL_MS?: string;
  NEGATIVE_TTL_MS?: string;
}

export interface AppConfig {
  /** Origin base URL without a trailing slash; a key is loaded from `${originUrl}/${encodeURIComponent(key)}`. */
  readonly originUrl: string;
  readonly cacheTtlMs: number;
  readonly negativeTtlMs: number;
}

/** Bounds of `?ttl=`, CACHE_TTL_MS and NEGATIVE_TTL_MS: 1 ms to 1 day. */
export const MIN_TTL_MS = 1;
export const MAX_TTL_MS = 86_400_000;
/** Longest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/** A variable is missing or invalid; the app answers 500 with this message. */
export class AppConfigError extends Error {
  override name = 'AppConfigError';
}

export function parseTtlMs(raw: string | undefined | null): number | null {
  if (raw === undefined || raw === null || !/^\d{1,9}$/.test(raw)) return null;
  const ms = Number(raw);
  return ms >= MIN_TTL_MS && ms <= MAX_TTL_MS ? ms : null;
}

function ttlVar(env: AppEnv, name: 'CACHE_TTL_MS' | 'NEGATIVE_TTL_MS'): number {
  const ms = parseTtlMs(env[name]);
  if (ms === null) {
    throw new AppConfigError(`${name} must be a whole number of milliseconds between ${MIN_TTL_MS} and ${MAX_TTL_MS}; got ${JSON.stringify(env[name] ?? null)}`);
  }
  return ms;
}

/** @throws AppConfigError naming the variable. */
export function readAppConfig(env: AppEnv): AppConfig {
  const origin = env.ORIGIN_URL;
  let url: URL;
  try {
    url = new URL(origin ?? '');
  } catch {
    throw new AppConfigError(`ORIGIN_URL must be an http(s) URL such as https://api.example.com; got ${JSON.stringify(origin ?? null)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new AppConfigError(`ORIGIN_URL must be an http(s) URL; got ${JSON.stringify(origin)}`);
  }
  return {
    originUrl: url.href.replace(/\/+$/, ''),
    cacheTtlMs: ttlVar(env, 'CACHE_TTL_MS'),
    negativeTtlMs: ttlVar(env, 'NEGATIVE_TTL_MS'),
  };
}

/** The key in `/v/<key>`, percent-decoded; null when it is empty, not UTF-8 or too long. */
export function keyFromPath(pathname: string): string | null {
  const raw = pathname.slice('/v/'.length);
  let key: string;
  try {
    key = decodeURIComponent(raw);
  } catch {
    return null;
  }
  if (key.length === 0 || new TextEncoder().encode(key).length > MAX_KEY_BYTES) return null;
  return key;
}
