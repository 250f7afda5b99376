// Keys and values are Valkey's byte strings. Inside a coordinator a key is a "binary string" (one char per byte,
// 0–255: injective, cheap as a Map key, equal to the key itself when it is ASCII); on the wire it goes out as bytes.
// Text crosses to and from bytes only here, strictly: nothing is ever silently replaced or stripped.

const utf8 = new TextEncoder();
/** fatal: invalid UTF-8 throws instead of becoming U+FFFD; ignoreBOM: a leading BOM is kept as U+FEFF. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const NON_ASCII = /[^\x00-\x7f]/;

/** The UTF-8 bytes of `text`. @throws TypeError when `text` holds a lone surrogate (it has no UTF-8 form). */
export function utf8Bytes(text: string, what: string): Uint8Array {
  if (LONE_SURROGATE.test(text)) {
    throw new TypeError(`${what} holds a lone UTF-16 surrogate, which has no UTF-8 form; pass bytes (a Uint8Array) instead`);
  }
  return utf8.encode(text);
}

/** `bytes` as UTF-8 text, exactly (a BOM is kept), or undefined when they are not valid UTF-8. */
export function utf8Text(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** The binary string of `bytes`: char i is byte i. */
export function binaryString(bytes: Uint8Array): string {
  let out = '';
  for (let at = 0; at < bytes.length; at += 8192) {
    out += String.fromCharCode.apply(null, bytes.subarray(at, at + 8192) as unknown as number[]);
  }
  return out;
}

/** The bytes of a binary string (the inverse of `binaryString`). */
export function binaryBytes(binary: string): Uint8Array {
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/**
 * A key as a binary string: a string key is its UTF-8 bytes (an ASCII key is itself, at no cost), a Uint8Array is
 * its bytes. @throws TypeError for a string with a lone surrogate or a key of another type.
 */
export function binaryKey(key: string | Uint8Array): string {
  if (typeof key === 'string') return NON_ASCII.test(key) ? binaryString(utf8Bytes(key, `key ${JSON.stringify(key)}`)) : key;
  if (key instanceof Uint8Array) return binaryString(key);
  throw new TypeError(`key must be a string or a Uint8Array; got ${key === null ? 'null' : typeof key}`);
}

/** A binary-string key as a command argument: ASCII goes as is (the encoder writes it byte for byte), else bytes. */
export function wireKey(binary: string): string | Uint8Array {
  return NON_ASCII.test(binary) ? binaryBytes(binary) : binary;
}

/** A binary-string key as readable text for messages: its UTF-8 text when it has one, else its bytes in hex. */
export function describeKey(binary: string): string {
  if (!NON_ASCII.test(binary)) return JSON.stringify(binary);
  const bytes = binaryBytes(binary);
  const text = utf8Text(bytes);
  if (text !== undefined) return JSON.stringify(text);
  let hex = '';
  for (const b of bytes.subarray(0, 64)) hex += b.toString(16).padStart(2, '0');
  return `0x${hex}${bytes.length > 64 ? '…' : ''}`;
}

/** True when both hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
