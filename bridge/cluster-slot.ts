// Valkey Cluster's key → hash slot function: CRC16 (XMODEM) of the key's bytes, or of its hash tag (the bytes
// between the first `{` and the next `}`, when not empty), modulo 16384. Keys are bytes: no decoding.

export const SLOT_COUNT = 16384;

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** CRC16-CCITT (XMODEM: poly 0x1021, init 0), the checksum the cluster spec uses. */
export function crc16(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  return crc;
}

/** The hash slot of `key` (bytes, or a latin1 string made from bytes). */
export function keySlot(key: Uint8Array | string): number {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'latin1') : key;
  const open = bytes.indexOf(0x7b); // {
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1); // }
    if (close > open + 1) return crc16(bytes, open + 1, close) % SLOT_COUNT;
  }
  return crc16(bytes) % SLOT_COUNT;
}
