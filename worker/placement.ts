// Maps a key to the name of the coordinator (Durable Object) that serves it: N shards by a hash of the key, one
// coordinator per key, or a caller's function, in one region or none. All gets and dels of one key in one region
// must meet in one coordinator, whichever view (text or bytes) they come from, so everything here works on the key's
// bytes (a binary string).
import type { Placement } from './options.ts';

/**
 * FNV-1a, 32 bits, over the key's bytes (`key` is a binary string, one char per byte; a text key's are its UTF-8
 * bytes): cheap, stable across runtimes and languages.
 */
export function hashKey(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i) & 0xff;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * The coordinator name for a key. A region (validated by options.ts: no `@`) goes after the prefix of built-in
 * names (`valkeyaside@weur:shard:3/16`) and after a placement function's name (`mine@weur`); without one the names
 * are those of unregioned caches.
 * @throws TypeError when a placement function returns something other than a non-empty string.
 */
export function coordinatorName(key: string, placement: Placement, namePrefix: string, region?: string): string {
  const suffix = region === undefined ? '' : `@${region}`;
  if (typeof placement === 'function') {
    const name = placement(key);
    if (typeof name !== 'string' || name === '') {
      throw new TypeError(`placement function returned ${JSON.stringify(name)} for key ${JSON.stringify(key)}; it must return a non-empty string`);
    }
    return name + suffix;
  }
  if (placement === 'per-key') return `${namePrefix}${suffix}:key:${key}`;
  return `${namePrefix}${suffix}:shard:${hashKey(key) % placement.shards}/${placement.shards}`;
}
