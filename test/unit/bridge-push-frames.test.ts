// Pushes encoded once per key per turn (bridge/push-frames.ts): the bytes shared by a key's readers decode to exactly
// the push a session would have encoded for itself, and a later turn encodes afresh.
import { describe, expect, it } from 'vitest';
import { NULL_PUSH, encodedPush } from '../../bridge/push-frames.ts';
import { RespDecoder, RespPush } from '../../shared/resp/index.ts';

const decode = (bytes: Uint8Array) => new RespDecoder().feed(bytes);
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('bridge: push frames', () => {
  it('shares one encoding of a key within a turn, and it is the key\'s push, byte for byte', async () => {
    const key = 'k\u00ff\u0000'; // binary key as latin1: one char per byte
    const first = encodedPush([key]);
    expect(encodedPush([key])).toBe(first);
    const [push] = decode(first);
    expect(push).toBeInstanceOf(RespPush);
    const [kind, keys] = (push as RespPush).items as [Uint8Array, Uint8Array[]];
    expect(Buffer.from(kind).toString()).toBe('invalidate');
    expect(keys.map((k) => [...k])).toEqual([[0x6b, 0xff, 0x00]]);
    await nextTurn();
    const later = encodedPush([key]);
    expect(later).not.toBe(first);
    expect([...later]).toEqual([...first]);
  });

  it('encodes several keys as one push, and the null push as drop-everything', () => {
    const [push] = decode(encodedPush(['a', 'b']));
    expect(((push as RespPush).items[1] as Uint8Array[]).map((k) => Buffer.from(k).toString())).toEqual(['a', 'b']);
    const [all] = decode(NULL_PUSH);
    expect((all as RespPush).items[1]).toBeNull();
  });
});
