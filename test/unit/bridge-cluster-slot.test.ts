// The key → hash slot function against values from a real server's CLUSTER KEYSLOT (valkey 8.0.1), hash tags
// included, on bytes that are not UTF-8.
import { describe, expect, it } from 'vitest';
import { crc16, keySlot } from '../../bridge/cluster-slot.ts';

describe('cluster slots', () => {
  it('crc16 is XMODEM (the cluster spec check value)', () => {
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
  });

  it.each([
    ['123456789', 12739],
    ['foo', 12182],
    ['bar', 5061],
    ['user1000', 3443],
    ['{user1000}.following', 3443],
    ['foo{}{bar}', 8363],
    ['foo{{bar}}zap', 4015],
    ['foo{bar}{zap}', 5061],
    ['{}', 15257],
    ['valkeyid:abc', 7552],
    ['', 0],
  ])('keySlot(%j) is %i, as CLUSTER KEYSLOT says', (key, slot) => {
    expect(keySlot(key)).toBe(slot);
    expect(keySlot(Buffer.from(key, 'latin1'))).toBe(slot);
  });

  it('hashes bytes, not text: a latin1 string and its bytes agree, and a non-UTF-8 byte is not replaced', () => {
    const bytes = Uint8Array.from([0xff, 0xfe, 0x7b, 0x80, 0x7d]);
    expect(keySlot(Buffer.from(bytes).toString('latin1'))).toBe(keySlot(bytes));
    expect(keySlot(bytes)).toBe(crc16(Uint8Array.from([0x80])) % 16384);
    expect(keySlot(bytes)).not.toBe(keySlot(Buffer.from('\ufffd{\ufffd}', 'utf8')));
  });
});
