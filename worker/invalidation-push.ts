// Reads an `invalidate` push from the bridge: the keys it names, exactly as the bytes that were read (binary
// strings), or "drop everything" (a null payload: FLUSHALL, or the bridge lost Valkey).
import { binaryString } from '../shared/bytes.ts';
import { INVALIDATE } from '../shared/protocol.ts';
import { RespSimple } from '../shared/resp/index.ts';
import type { RespPush, RespValue } from '../shared/resp/index.ts';

/** A bulk or simple string as a binary string (one char per byte), so a key matches exactly the bytes that were read. */
function binary(value: RespValue): string | undefined {
  if (value instanceof Uint8Array) return binaryString(value);
  if (value instanceof RespSimple) return value.value;
  return undefined;
}

/** The keys an invalidation push names, null for "drop everything", or undefined for a push of another kind. */
export function invalidatedKeys(push: RespPush): string[] | null | undefined {
  if (binary(push.items[0] ?? null) !== INVALIDATE) return undefined;
  const payload = push.items[1] ?? null;
  if (payload === null) return null;
  if (!Array.isArray(payload)) return undefined;
  const keys: string[] = [];
  for (const item of payload) {
    const key = binary(item);
    if (key !== undefined) keys.push(key);
  }
  return keys;
}
