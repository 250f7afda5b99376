// The constants that make this library interoperate with Go's valkeyaside on one server: the placeholder prefix,
// the client id shape and the three Lua scripts, byte for byte. Change none of them without changing Go too.

/** Prefix of lock placeholders and liveness markers: `valkeyid:<24 hex chars>`. */
export const PLACEHOLDER_PREFIX = 'valkeyid:';

/** Compare-and-delete: releases a lock only if the key still holds our placeholder. KEYS[1]=key, ARGV[1]=id. */
export const DELKEY_SCRIPT =
  'if redis.call("GET",KEYS[1]) == ARGV[1] then return redis.call("DEL",KEYS[1]) else return 0 end';

/** Compare-and-set: stores the loaded value only if the key still holds our placeholder. ARGV = id, value, ttlMs. */
export const SETKEY_SCRIPT =
  'if redis.call("GET",KEYS[1]) == ARGV[1] then return redis.call("SET",KEYS[1],ARGV[2],"PX",ARGV[3]) else return 0 end';

/** `SET key id NX GET PX ttl` for servers older than 7.0 (the `useLuaLock` option). ARGV = id, ttlMs. */
export const ACQUIRE_LOCK_SCRIPT =
  'if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then return nil else return redis.call("GET", KEYS[1]) end';

/** SHA1 of each script, as EVALSHA wants it (test/unit/go-compat.test.ts checks them, and the scripts against Go's text). */
export const SCRIPT_SHA = Object.freeze({
  delkey: '7726c7be95e2a0ed082ec1da1e26b562f5c8903f',
  setkey: '3913f9de2aab2b98021c6f9b04f7293af86e2c61',
  acquireLock: 'fb80ce0e2c4327e6b8b4818dcf4591eec0ebbc2c',
});

export const SCRIPTS: Readonly<Record<keyof typeof SCRIPT_SHA, string>> = Object.freeze({
  delkey: DELKEY_SCRIPT,
  setkey: SETKEY_SCRIPT,
  acquireLock: ACQUIRE_LOCK_SCRIPT,
});

const HEX = '0123456789abcdef';

/** A fresh client id, `valkeyid:` + 24 lowercase hex chars (12 random bytes), the shape Go's valkeyaside uses. */
export function newClientId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  let id = PLACEHOLDER_PREFIX;
  for (const b of bytes) id += HEX[b >> 4]! + HEX[b & 15]!;
  return id;
}

/** True when a stored value is a lock placeholder rather than data. */
export function isPlaceholder(value: string | Uint8Array | null): boolean {
  if (value === null) return false;
  if (typeof value === 'string') return value.startsWith(PLACEHOLDER_PREFIX);
  if (value.length < PLACEHOLDER_PREFIX.length) return false;
  for (let i = 0; i < PLACEHOLDER_PREFIX.length; i++) {
    if (value[i] !== PLACEHOLDER_PREFIX.charCodeAt(i)) return false;
  }
  return true;
}
