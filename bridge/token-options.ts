// The bearer tokens of the bridge options: validated once (length, visible ASCII, no repeats, disjoint tenant
// prefixes) and kept only as SHA-256 digests, for constant-time comparison; the metrics token likewise.
import { createHash } from 'node:crypto';
import { describe, fail, int } from './option-errors.ts';

const MIN_TOKEN_CHARS = 16;
const MAX_TOKEN_CHARS = 4096;

/** A token ready for constant-time comparison: only its SHA-256 digest is kept. */
export interface ResolvedToken {
  readonly digest: Buffer;
  /** UTF-8 bytes of the prefix, or null for unrestricted. */
  readonly prefix: Uint8Array | null;
  /** `token#<n>` (1-based position), safe to log. */
  readonly label: string;
  /** Concurrent sessions this token may hold. */
  readonly maxSessions: number;
  /** Commands in flight over all its sessions. */
  readonly maxInflight: number;
  /** Reply bytes owed over all its sessions. */
  readonly maxOwedBytes: number;
}

/** The per-token limits a `tokens` entry gets when it sets none of its own. */
export interface TokenDefaults {
  readonly maxSessions: number;
  readonly maxInflight: number;
  readonly maxOwedBytes: number;
}

export function resolveTokens(value: unknown, defaults: TokenDefaults): ResolvedToken[] {
  if (!Array.isArray(value) || value.length === 0) {
    fail('type', 'tokens', `tokens must be a non-empty array of {token, prefix?}, got ${describe(value)}; the bridge refuses to run without a token`);
  }
  const seen = new Set<string>();
  const resolved = value.map((entry: unknown, i: number): ResolvedToken => {
    const name = `tokens[${i}]`;
    if (typeof entry !== 'object' || entry === null) fail('type', 'tokens', `${name} must be an object {token, prefix?}, got ${describe(entry)}`);
    const { token, prefix, maxSessions, maxInflight, maxOwedBytes } = entry as Record<string, unknown>;
    // Never echo a token: report its length only.
    if (typeof token !== 'string') fail('type', 'tokens', `${name}.token must be a string, got ${describe(typeof token)}`);
    if (token.length < MIN_TOKEN_CHARS || token.length > MAX_TOKEN_CHARS) {
      fail('range', 'tokens', `${name}.token must be ${MIN_TOKEN_CHARS} to ${MAX_TOKEN_CHARS} characters, got ${token.length}`);
    }
    if (!/^[\x21-\x7e]+$/.test(token)) fail('range', 'tokens', `${name}.token must be visible ASCII without spaces`);
    if (seen.has(token)) fail('range', 'tokens', `${name}.token repeats an earlier token`);
    seen.add(token);
    if (prefix !== undefined && (typeof prefix !== 'string' || prefix.length === 0)) {
      fail('type', 'tokens', `${name}.prefix must be a non-empty string when given, got ${describe(prefix)}`);
    }
    return Object.freeze({
      digest: createHash('sha256').update(token).digest(),
      prefix: prefix === undefined ? null : new Uint8Array(Buffer.from(prefix, 'utf8')),
      label: `token#${i + 1}`,
      maxSessions: maxSessions === undefined ? defaults.maxSessions : int('tokens', maxSessions, 1, 1_000_000, `${name}.maxSessions`),
      maxInflight: maxInflight === undefined ? defaults.maxInflight : int('tokens', maxInflight, 1, 10_000_000, `${name}.maxInflight`),
      maxOwedBytes: maxOwedBytes === undefined ? defaults.maxOwedBytes : int('tokens', maxOwedBytes, 1024, 64 * 1024 ** 3, `${name}.maxOwedBytes`),
    });
  });
  // A key under two prefixes would belong to two tenants: nested or equal prefixes are refused.
  for (const a of resolved) {
    for (const b of resolved) {
      if (a === b || !a.prefix || !b.prefix) continue;
      if (startsWith(b.prefix, a.prefix)) {
        fail('range', 'tokens', `${b.label}.prefix overlaps ${a.label}.prefix (one starts with the other); tenant prefixes must be disjoint`);
      }
    }
  }
  return resolved;
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

export function resolveMetricsToken(value: unknown): Buffer | null {
  if (value === undefined) return null;
  if (typeof value !== 'string' || value.length < MIN_TOKEN_CHARS || value.length > MAX_TOKEN_CHARS || !/^[\x21-\x7e]+$/.test(value)) {
    fail('range', 'metricsToken', `metricsToken must be ${MIN_TOKEN_CHARS} to ${MAX_TOKEN_CHARS} visible ASCII characters`);
  }
  return createHash('sha256').update(value).digest();
}
