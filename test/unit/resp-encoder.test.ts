// encodeCommand, encodeValue and encodeValues against exact bytes, and the TypeErrors for values RESP cannot carry.

import { describe, expect, it } from 'vitest';
import {
  RespAttributed,
  RespBigNumber,
  RespDouble,
  RespErrorReply,
  RespMap,
  RespPush,
  RespSet,
  RespSimple,
  RespVerbatim,
  encodeCommand,
  encodeValue,
  encodeValues,
} from '../../shared/resp/index.ts';
import type { RespValue } from '../../shared/resp/index.ts';

const utf8 = new TextEncoder();

/** Bytes of the parts: strings as UTF-8, number arrays as raw bytes. */
function bytes(...parts: Array<string | number[]>): Uint8Array {
  return Uint8Array.from(parts.flatMap((part) => (typeof part === 'string' ? [...utf8.encode(part)] : part)));
}

describe('encodeCommand', () => {
  it('writes an array of bulk strings', () => {
    expect(encodeCommand(['SET', 'k', 'v'])).toStrictEqual(bytes('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n'));
    expect(encodeCommand(['PING'])).toStrictEqual(bytes('*1\r\n$4\r\nPING\r\n'));
    expect(encodeCommand(['GET', ''])).toStrictEqual(bytes('*2\r\n$3\r\nGET\r\n$0\r\n\r\n'));
    expect(encodeCommand([])).toStrictEqual(bytes('*0\r\n'));
  });

  it('copies binary arguments verbatim, CRLF, NUL and 0xff included', () => {
    const value = Uint8Array.from([0x0d, 0x0a, 0x00, 0xff, 0x24, 0x0d, 0x0a]);
    expect(encodeCommand(['SET', 'k', value])).toStrictEqual(
      bytes('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$7\r\n', [0x0d, 0x0a, 0x00, 0xff, 0x24, 0x0d, 0x0a], '\r\n'),
    );
  });

  it('measures non-ASCII strings in UTF-8 bytes', () => {
    expect(encodeCommand(['GET', 'ключ'])).toStrictEqual(bytes('*2\r\n$3\r\nGET\r\n$8\r\nключ\r\n'));
    expect(encodeCommand(['😀', 'é€'])).toStrictEqual(bytes('*2\r\n$4\r\n😀\r\n$5\r\né€\r\n'));
    // A lone surrogate is written as U+FFFD, as TextEncoder does, and measured so.
    expect(encodeCommand(['\ud800x'])).toStrictEqual(bytes('*1\r\n$4\r\n', [0xef, 0xbf, 0xbd], 'x\r\n'));
    const long = 'ключ-'.repeat(40);
    expect(encodeCommand([long])).toStrictEqual(bytes(`*1\r\n$${utf8.encode(long).length}\r\n${long}\r\n`));
  });

  it('writes long ASCII arguments and multi-digit lengths', () => {
    const key = 'k'.repeat(1234);
    expect(encodeCommand(['GET', key])).toStrictEqual(bytes(`*2\r\n$3\r\nGET\r\n$1234\r\n${key}\r\n`));
  });

  it('writes numbers as decimal integers', () => {
    expect(encodeCommand(['EXPIRE', 'k', 60, -7, 0, -0])).toStrictEqual(
      bytes('*6\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$2\r\n60\r\n$2\r\n-7\r\n$1\r\n0\r\n$1\r\n0\r\n'),
    );
    expect(encodeCommand([2 ** 53 + 2, 1e21])).toStrictEqual(
      bytes('*2\r\n$16\r\n9007199254740994\r\n$22\r\n1000000000000000000000\r\n'),
    );
  });

  it('rejects numbers that are not finite integers, and arguments of other types', () => {
    expect(() => encodeCommand(['SET', 'k', 1.5])).toThrow(
      new TypeError('command argument 2 must be a finite integer, received 1.5'),
    );
    expect(() => encodeCommand([NaN])).toThrow('command argument 0 must be a finite integer, received NaN');
    expect(() => encodeCommand([Infinity])).toThrow(TypeError);
    expect(() => encodeCommand(['GET', null as unknown as string])).toThrow(
      new TypeError('command argument 1 must be a string, Uint8Array or number, received object'),
    );
    expect(() => encodeCommand([10n as unknown as number])).toThrow(TypeError);
  });
});

describe('encodeValue', () => {
  const cases: Array<[string, RespValue, string | Uint8Array]> = [
    ['null', null, '_\r\n'],
    ['true', true, '#t\r\n'],
    ['false', false, '#f\r\n'],
    ['an integer', 42, ':42\r\n'],
    ['a negative integer', -42, ':-42\r\n'],
    ['negative zero', -0, ':0\r\n'],
    ['an unsafe integer number', 2 ** 60, ':1152921504606846976\r\n'],
    ['a bigint', -(2n ** 64n), ':-18446744073709551616\r\n'],
    ['a bulk string', bytes('hello'), '$5\r\nhello\r\n'],
    ['an empty bulk string', new Uint8Array(0), '$0\r\n\r\n'],
    ['a binary bulk string', bytes([0x0d, 0x0a, 0x00, 0xff]), bytes('$4\r\n', [0x0d, 0x0a, 0x00, 0xff], '\r\n')],
    ['an array', [bytes('a'), 1, null], '*3\r\n$1\r\na\r\n:1\r\n_\r\n'],
    ['an empty array', [], '*0\r\n'],
    ['a nested array', [[], [true]], '*2\r\n*0\r\n*1\r\n#t\r\n'],
    ['a simple string', new RespSimple('OK'), '+OK\r\n'],
    ['a UTF-8 simple string', new RespSimple('ключ'), '+ключ\r\n'],
    ['a simple error', new RespErrorReply('ERR bad'), '-ERR bad\r\n'],
    ['a blob error', new RespErrorReply('SYNTAX\r\nbad é', true), '!14\r\nSYNTAX\r\nbad é\r\n'],
    ['a double', new RespDouble(1.5), ',1.5\r\n'],
    ['an integral double', new RespDouble(3), ',3\r\n'],
    ['a tiny double', new RespDouble(1.5e-7), ',1.5e-7\r\n'],
    ['a huge double', new RespDouble(1e300), ',1e+300\r\n'],
    ['negative zero as a double', new RespDouble(-0), ',-0\r\n'],
    ['infinity', new RespDouble(Infinity), ',inf\r\n'],
    ['negative infinity', new RespDouble(-Infinity), ',-inf\r\n'],
    ['NaN', new RespDouble(NaN), ',nan\r\n'],
    ['a big number', new RespBigNumber(-(10n ** 40n)), '(-10000000000000000000000000000000000000000\r\n'],
    ['a verbatim string', new RespVerbatim('txt', bytes('Some string')), '=15\r\ntxt:Some string\r\n'],
    [
      'a map',
      new RespMap([[new RespSimple('a'), 1], [bytes('b'), [null]]]),
      '%2\r\n+a\r\n:1\r\n$1\r\nb\r\n*1\r\n_\r\n',
    ],
    ['an empty map', new RespMap([]), '%0\r\n'],
    ['a set', new RespSet([1, 2]), '~2\r\n:1\r\n:2\r\n'],
    ['a push', new RespPush([bytes('invalidate'), null]), '>2\r\n$10\r\ninvalidate\r\n_\r\n'],
    [
      'an attributed value',
      new RespAttributed([[new RespSimple('ttl'), 5]], bytes('v')),
      '|1\r\n+ttl\r\n:5\r\n$1\r\nv\r\n',
    ],
  ];

  for (const [name, value, expected] of cases) {
    it(`writes ${name}`, () => {
      expect(encodeValue(value)).toStrictEqual(typeof expected === 'string' ? bytes(expected) : expected);
    });
  }

  it('writes long simple strings with multi-byte characters', () => {
    const text = 'é'.repeat(100) + 'a'.repeat(100);
    expect(encodeValue(new RespSimple(text))).toStrictEqual(bytes(`+${text}\r\n`));
  });

  it('rejects plain non-integer numbers: doubles must be RespDouble', () => {
    expect(() => encodeValue(1.5)).toThrow(
      new TypeError('a plain number (use RespDouble for doubles) must be a finite integer, received 1.5'),
    );
    expect(() => encodeValue([1, NaN])).toThrow(TypeError);
    expect(() => encodeValue(Infinity)).toThrow(TypeError);
  });

  it('rejects CR or LF in simple strings and simple errors', () => {
    expect(() => encodeValue(new RespSimple('a\r\nb'))).toThrow(
      new TypeError('RespSimple value must not contain CR or LF (use a bulk or blob error): "a\\r\\nb"'),
    );
    expect(() => encodeValue(new RespSimple('a\nb'))).toThrow(TypeError);
    expect(() => encodeValue(new RespErrorReply('ERR\r'))).toThrow('RespErrorReply message must not contain CR or LF');
  });

  it('rejects verbatim formats that are not three visible ASCII characters', () => {
    for (const format of ['tx', 'text', 't t', 'ключ'.slice(0, 3)]) {
      expect(() => encodeValue(new RespVerbatim(format, new Uint8Array(0)))).toThrow(
        `RespVerbatim format must be three visible ASCII characters, received ${format}`,
      );
    }
  });

  it('rejects values outside the model, before writing anything', () => {
    expect(() => encodeValue('text' as unknown as RespValue)).toThrow(
      new TypeError('cannot encode a string (use a Uint8Array or RespSimple) as RESP'),
    );
    expect(() => encodeValue(undefined as unknown as RespValue)).toThrow('cannot encode undefined as RESP');
    expect(() => encodeValue([{}] as unknown as RespValue)).toThrow('cannot encode [object Object] as RESP');
    expect(() => encodeValue(new RespDouble('1' as unknown as number))).toThrow('RespDouble value must be a number');
    const notBigint = new RespBigNumber(1 as unknown as bigint);
    expect(() => encodeValue(notBigint)).toThrow('RespBigNumber value must be a bigint');
  });
});

describe('encodeValues', () => {
  it('writes several values back to back into one buffer', () => {
    expect(encodeValues([new RespSimple('OK'), 1, null, [bytes('x')]])).toStrictEqual(
      bytes('+OK\r\n:1\r\n_\r\n*1\r\n$1\r\nx\r\n'),
    );
    expect(encodeValues([])).toStrictEqual(new Uint8Array(0));
  });

  it('rejects the whole batch when one value is invalid', () => {
    expect(() => encodeValues([1, new RespSimple('\n')])).toThrow(TypeError);
  });
});
