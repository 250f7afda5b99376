// Maps a key to the name of the coordinator (Durable Object) that serves it: N shards by a hash of the key, one
// coordinator per key, or a caller's function. All gets and dels of one key must meet in one coordinator, whichever
// view (text or bytes) they come from, so everything here works on the key's bytes (a binary string).
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
 * The coordinator name for a key.
 * @throws TypeError when a placement function returns something other than a non-empty string.
 */
export function coordinatorName(key: string, placement: Placement, namePrefix: string): string {
  if (typeof placement === 'function') {
    const name = placement(key);
    if (typeof name !== 'string' || name === '') {
      throw new TypeError(`placement function returned ${JSON.stringify(name)} for key ${JSON.stringify(key)}; it must return a non-empty string`);
    }
    return name;
  }
  if (placement === 'per-key') return `${namePrefix}:key:${key}`;
  return `${namePrefix}:shard:${hashKey(key) % placement.shards}/${placement.shards}`;
}
