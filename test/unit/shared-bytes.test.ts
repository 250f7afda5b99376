import { describe, expect, it } from 'vitest';
import { binaryBytes, binaryKey, binaryString, describeKey, utf8Bytes, utf8Text, wireKey } from '../../shared/bytes.ts';

const bytes = (...b: number[]) => new Uint8Array(b);

describe('shared bytes: keys and values stay exact', () => {
  it('turns bytes into a binary string and back without loss, for every byte value', () => {
    const all = new Uint8Array(256).map((_, i) => i);
    const binary = binaryString(all);
    expect(binary).toHaveLength(256);
    expect(binaryBytes(binary)).toEqual(all);
    const big = new Uint8Array(100_000).map((_, i) => (i * 7) & 0xff);
    expect(binaryBytes(binaryString(big))).toEqual(big);
  });

  it('makes a text key its UTF-8 bytes, an ASCII key itself, and a byte key its bytes', () => {
    expect(binaryKey('user:1')).toBe('user:1');
    expect(binaryKey('\uFEFFk')).toBe(binaryString(bytes(0xef, 0xbb, 0xbf, 0x6b)));
    expect(binaryKey('é')).toBe(binaryKey(bytes(0xc3, 0xa9)));
    expect(binaryKey(bytes(0xff, 0xfe, 0x00, 0x41))).toBe('\xff\xfe\x00A');
  });

  it('refuses a key with a lone surrogate, or of another type, with a TypeError', () => {
    expect(() => binaryKey('a\uD800b')).toThrow(TypeError);
    expect(() => binaryKey('a\uD800b')).toThrow(/lone UTF-16 surrogate/);
    expect(() => binaryKey(42 as unknown as string)).toThrow(new TypeError('key must be a string or a Uint8Array; got number'));
    expect(binaryKey('\uD83D\uDE00')).toBe(binaryString(bytes(0xf0, 0x9f, 0x98, 0x80)));
  });

  it('decodes UTF-8 strictly: a BOM is kept, invalid bytes are refused, never replaced', () => {
    expect(utf8Text(bytes(0xef, 0xbb, 0xbf, 0x68, 0x69))).toBe('\uFEFFhi');
    expect(utf8Text(bytes(0xff, 0xfe, 0x00, 0x41))).toBeUndefined();
    expect(utf8Text(bytes(0xc3))).toBeUndefined();
    expect(utf8Text(bytes())).toBe('');
    expect(utf8Bytes('\uFEFFhi', 'v')).toEqual(bytes(0xef, 0xbb, 0xbf, 0x68, 0x69));
  });

  it('sends an ASCII key as is and any other as its bytes', () => {
    expect(wireKey('plain')).toBe('plain');
    expect(wireKey('\xff\x00')).toEqual(bytes(0xff, 0x00));
  });

  it('describes a key as text when it is UTF-8, else as hex', () => {
    expect(describeKey('k')).toBe('"k"');
    expect(describeKey(binaryKey('é'))).toBe('"é"');
    expect(describeKey('\xff\xfe')).toBe('0xfffe');
  });
});
