// RespDecoder against literal bytes: every RESP2/RESP3 type fed whole, byte by byte and split at every position,
// the limits, and every malformed input with its error class, code, close code and message.

import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../shared/errors.ts';
import {
  RESP_DECODER_DEFAULTS,
  RespAttributed,
  RespBigNumber,
  RespDecoder,
  RespDouble,
  RespErrorReply,
  RespMap,
  RespPush,
  RespSet,
  RespSimple,
  RespVerbatim,
} from '../../shared/resp/index.ts';
import type { RespDecoderOptions, RespValue } from '../../shared/resp/index.ts';

const utf8 = new TextEncoder();

/** Bytes of the parts: strings as UTF-8, number arrays as raw bytes. */
function bytes(...parts: Array<string | number[] | Uint8Array>): Uint8Array {
  const chunks = parts.map((part) => (typeof part === 'string' ? utf8.encode(part) : Uint8Array.from(part)));
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

function feedInPieces(decoder: RespDecoder, input: Uint8Array, size: number): RespValue[] {
  const values: RespValue[] = [];
  for (let at = 0; at < input.length; at += size) values.push(...decoder.feed(input.subarray(at, at + size)));
  return values;
}

/** Decodes `input` whole, byte by byte and split in two at every position; all must agree. */
function decode(input: Uint8Array | string, options?: RespDecoderOptions): RespValue[] {
  const data = typeof input === 'string' ? bytes(input) : input;
  const whole = new RespDecoder(options).feed(data);
  const byteByByte = new RespDecoder(options);
  expect(feedInPieces(byteByByte, data, 1)).toStrictEqual(whole);
  expect(byteByByte.bufferedBytes).toBe(0);
  for (let split = 1; split < data.length && data.length <= 512; split++) {
    const decoder = new RespDecoder(options);
    const values = [...decoder.feed(data.subarray(0, split)), ...decoder.feed(data.subarray(split))];
    expect(values).toStrictEqual(whole);
  }
  return whole;
}

const decodeOne = (input: Uint8Array | string): RespValue => {
  const values = decode(input);
  expect(values).toHaveLength(1);
  return values[0]!;
};

function caught(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error, none was thrown');
}

/** Feeds `input` whole and byte by byte; both must fail with `code`, and the decoder must stay broken. */
function expectRejected(input: Uint8Array | string, code: string, fragment: string, options?: RespDecoderOptions) {
  const data = typeof input === 'string' ? bytes(input) : input;
  const decoder = new RespDecoder(options);
  const error = caught(() => decoder.feed(data));
  expect(error).toBeInstanceOf(ProtocolError);
  const protocolError = error as ProtocolError;
  expect(protocolError.code).toBe(code);
  expect(protocolError.closeCode).toBe(code === 'ERR_RESP_TOO_BIG' ? 1009 : 1002);
  expect(protocolError.message).toContain(fragment);
  expect(caught(() => decoder.feed(bytes('+OK\r\n')))).toBe(protocolError);
  expect(caught(() => decoder.feed(new Uint8Array(0)))).toBe(protocolError);
  const slow = caught(() => feedInPieces(new RespDecoder(options), data, 1));
  expect(slow).toBeInstanceOf(ProtocolError);
  expect((slow as ProtocolError).code).toBe(code);
}

describe('RespDecoder: RESP2 types', () => {
  it('decodes simple strings, including empty and UTF-8 ones', () => {
    expect(decodeOne('+OK\r\n')).toStrictEqual(new RespSimple('OK'));
    expect(decodeOne('+\r\n')).toStrictEqual(new RespSimple(''));
    expect(decodeOne('+привет 😀\r\n')).toStrictEqual(new RespSimple('привет 😀'));
  });

  it('decodes simple errors as RespErrorReply values, not thrown errors', () => {
    expect(decodeOne('-ERR unknown command\r\n')).toStrictEqual(new RespErrorReply('ERR unknown command', false));
    expect(decodeOne('-WRONGTYPE Operation\r\n')).toStrictEqual(new RespErrorReply('WRONGTYPE Operation'));
  });

  it('decodes integers as numbers when safe and bigints otherwise', () => {
    expect(decode(':0\r\n:-42\r\n:+7\r\n:1234567890123456\r\n')).toStrictEqual([0, -42, 7, 1234567890123456]);
    expect(Object.is(decodeOne(':-0\r\n'), 0)).toBe(true);
    expect(decodeOne(':9007199254740991\r\n')).toBe(Number.MAX_SAFE_INTEGER);
    expect(decodeOne(':-9007199254740991\r\n')).toBe(Number.MIN_SAFE_INTEGER);
    expect(decodeOne(':9007199254740992\r\n')).toBe(9007199254740992n);
    expect(decodeOne(':-12345678901234567890\r\n')).toBe(-12345678901234567890n);
    expect(decodeOne(':00000000000000000042\r\n')).toBe(42);
  });

  it('decodes bulk strings, the empty one and the RESP2 null', () => {
    expect(decodeOne('$5\r\nhello\r\n')).toStrictEqual(bytes('hello'));
    expect(decodeOne('$0\r\n\r\n')).toStrictEqual(new Uint8Array(0));
    expect(decodeOne('$-1\r\n')).toBeNull();
  });

  it('keeps CRLF, NUL and 0xff inside bulk strings', () => {
    const payload = [0x0d, 0x0a, 0x00, 0xff, 0x0d, 0x0a, 0x24, 0x2a, 0x0d];
    expect(decodeOne(bytes('$9\r\n', payload, '\r\n'))).toStrictEqual(Uint8Array.from(payload));
  });

  it('decodes arrays, nested arrays, the empty array and the RESP2 null array', () => {
    expect(decodeOne('*2\r\n$3\r\nfoo\r\n:1\r\n')).toStrictEqual([bytes('foo'), 1]);
    expect(decodeOne('*2\r\n*1\r\n+a\r\n*0\r\n')).toStrictEqual([[new RespSimple('a')], []]);
    expect(decodeOne('*-1\r\n')).toBeNull();
    expect(decodeOne('*3\r\n$-1\r\n*-1\r\n_\r\n')).toStrictEqual([null, null, null]);
  });
});

describe('RespDecoder: RESP3 types', () => {
  it('decodes null and booleans', () => {
    expect(decode('_\r\n#t\r\n#f\r\n')).toStrictEqual([null, true, false]);
  });

  it('decodes doubles with exponents, signs and the special values', () => {
    const values = decode(',1.5\r\n,-2\r\n,1e10\r\n,1.5E-3\r\n,-0\r\n,inf\r\n,-inf\r\n,+inf\r\n,nan\r\n');
    expect(values).toStrictEqual(
      [1.5, -2, 1e10, 1.5e-3, -0, Infinity, -Infinity, Infinity, NaN].map((n) => new RespDouble(n)),
    );
    expect(Object.is((values[4] as RespDouble).value, -0)).toBe(true);
  });

  it('decodes big numbers', () => {
    expect(decodeOne('(3492890328409238509324850943850943825024385\r\n')).toStrictEqual(
      new RespBigNumber(3492890328409238509324850943850943825024385n),
    );
    expect(decodeOne('(-12\r\n')).toStrictEqual(new RespBigNumber(-12n));
  });

  it('decodes blob errors and verbatim strings', () => {
    expect(decodeOne('!21\r\nSYNTAX invalid syntax\r\n')).toStrictEqual(
      new RespErrorReply('SYNTAX invalid syntax', true),
    );
    expect(decodeOne('=15\r\ntxt:Some string\r\n')).toStrictEqual(new RespVerbatim('txt', bytes('Some string')));
    expect(decodeOne('=4\r\nmkd:\r\n')).toStrictEqual(new RespVerbatim('mkd', new Uint8Array(0)));
  });

  it('decodes maps, sets and pushes', () => {
    expect(decodeOne('%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n#f\r\n')).toStrictEqual(
      new RespMap([
        [new RespSimple('first'), 1],
        [bytes('second'), false],
      ]),
    );
    expect(decodeOne('%0\r\n')).toStrictEqual(new RespMap([]));
    expect(decodeOne('~3\r\n+a\r\n:1\r\n_\r\n')).toStrictEqual(new RespSet([new RespSimple('a'), 1, null]));
    expect(decodeOne('>2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n')).toStrictEqual(
      new RespPush([bytes('invalidate'), [bytes('key')]]),
    );
    expect(decodeOne('>2\r\n$10\r\ninvalidate\r\n_\r\n')).toStrictEqual(new RespPush([bytes('invalidate'), null]));
  });

  it('attaches attributes to the value that follows them', () => {
    const input = '|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.1923\r\n*2\r\n:2039123\r\n:9543892\r\n';
    expect(decodeOne(input)).toStrictEqual(
      new RespAttributed(
        [[new RespSimple('key-popularity'), new RespMap([[bytes('a'), new RespDouble(0.1923)]])]],
        [2039123, 9543892],
      ),
    );
    expect(decodeOne('*2\r\n|1\r\n+ttl\r\n:5\r\n$1\r\nv\r\n:7\r\n')).toStrictEqual([
      new RespAttributed([[new RespSimple('ttl'), 5]], bytes('v')),
      7,
    ]);
    expect(decodeOne('|0\r\n#t\r\n')).toStrictEqual(new RespAttributed([], true));
  });
});

describe('RespDecoder: chunking', () => {
  it('returns every value of one chunk in order', () => {
    expect(decode('+OK\r\n:1\r\n$1\r\nx\r\n*1\r\n_\r\n')).toStrictEqual([new RespSimple('OK'), 1, bytes('x'), [null]]);
  });

  it('returns nothing until a value completes, then counts nothing as buffered', () => {
    const decoder = new RespDecoder();
    expect(decoder.feed(bytes('*2\r\n$5\r\nhel'))).toStrictEqual([]);
    expect(decoder.bufferedBytes).toBe(11);
    expect(decoder.feed(bytes('lo\r\n:1\r\n+O'))).toStrictEqual([[bytes('hello'), 1]]);
    expect(decoder.bufferedBytes).toBe(2);
    expect(decoder.feed(bytes('K\r\n'))).toStrictEqual([new RespSimple('OK')]);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('returns bulk strings that later writes to the fed chunk cannot change', () => {
    const decoder = new RespDecoder();
    const chunk = bytes('$3\r\nabc\r\n');
    const [value] = decoder.feed(chunk);
    chunk.fill(0x7a);
    expect(value).toStrictEqual(bytes('abc'));
  });

  it('returns plain Uint8Array copies when fed Node Buffers', () => {
    const chunk = Buffer.from('*2\r\n$3\r\nabc\r\n$2\r\nde');
    const decoder = new RespDecoder();
    expect(decoder.feed(chunk)).toStrictEqual([]);
    const [value] = decoder.feed(Buffer.from('\r\n')) as [Uint8Array[]];
    chunk.fill(0x7a);
    expect(value).toStrictEqual([bytes('abc'), bytes('de')]);
    expect(Object.getPrototypeOf(value[0])).toBe(Uint8Array.prototype);
    expect(Object.getPrototypeOf(value[1])).toBe(Uint8Array.prototype);
  });

  it('decodes a 1 MiB bulk string fed in 7-byte chunks', () => {
    const payload = new Uint8Array(1024 * 1024).map((_, i) => (i * 31) & 0xff);
    const input = bytes(`$${payload.length}\r\n`, payload, '\r\n');
    const decoder = new RespDecoder();
    const values = feedInPieces(decoder, input, 7);
    expect(values).toHaveLength(1);
    expect(values[0]).toBeInstanceOf(Uint8Array);
    // Buffer.compare rather than toStrictEqual: a deep equality of 1 MiB element by element takes seconds.
    expect(Buffer.compare(values[0] as Uint8Array, payload)).toBe(0);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('decodes 10,000 small replies fed in 3-byte chunks', () => {
    const input = bytes('*10000\r\n' + '$3\r\nabc\r\n:12\r\n'.repeat(5000));
    const values = feedInPieces(new RespDecoder(), input, 3);
    expect(values).toHaveLength(1);
    expect((values[0] as RespValue[]).length).toBe(10000);
    expect((values[0] as RespValue[])[9999]).toBe(12);
  });

  it('decodes again after reset, forgetting a broken state', () => {
    const decoder = new RespDecoder();
    expect(() => decoder.feed(bytes('?'))).toThrow(ProtocolError);
    decoder.reset();
    expect(decoder.feed(bytes('$2\r\nhi\r\n'))).toStrictEqual([bytes('hi')]);
    decoder.feed(bytes('*2\r\n:1'));
    decoder.reset();
    expect(decoder.bufferedBytes).toBe(0);
    expect(decoder.feed(bytes(':2\r\n'))).toStrictEqual([2]);
  });
});

describe('RespDecoder: options and limits', () => {
  it('exposes frozen defaults', () => {
    expect(RESP_DECODER_DEFAULTS).toStrictEqual({
      maxBulkBytes: 16 * 1024 * 1024,
      maxAggregateLength: 1_048_576,
      maxDepth: 32,
      maxLineBytes: 65_536,
    });
    expect(Object.isFrozen(RESP_DECODER_DEFAULTS)).toBe(true);
  });

  it('copies bulk payloads into what allocate makes (whole or in pieces), never views of the input', () => {
    const made: number[] = [];
    const decoder = new RespDecoder({ allocate: (size) => { made.push(size); return Buffer.allocUnsafeSlow(size); } });
    const input = Buffer.from('*2\r\n$3\r\nabc\r\n$5\r\nhello\r\n');
    const [whole] = decoder.feed(input) as [Uint8Array[]];
    input.fill(0);
    expect(whole.map((b) => Buffer.isBuffer(b))).toEqual([true, true]);
    expect(whole.map((b) => Buffer.from(b).toString())).toEqual(['abc', 'hello']);
    const split = Buffer.from('$5\r\nhello\r\n');
    const pieces = [...split].flatMap((byte) => decoder.feed(Uint8Array.of(byte)));
    expect(pieces.length).toBe(1);
    expect(Buffer.isBuffer(pieces[0])).toBe(true);
    expect(made).toEqual([3, 5, 5]);
    expect(() => new RespDecoder({ allocate: 'no' as unknown as (size: number) => Uint8Array })).toThrow('allocate must be a function');
  });

  it('rejects an option that is not a positive safe integer, naming it and the value', () => {
    for (const bad of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) {
      expect(() => new RespDecoder({ maxDepth: bad })).toThrow(RangeError);
      expect(() => new RespDecoder({ maxBulkBytes: bad })).toThrow(
        `maxBulkBytes must be a positive safe integer, received ${bad}`,
      );
    }
    expect(() => new RespDecoder({ maxLineBytes: '10' as unknown as number })).toThrow(
      'maxLineBytes must be a positive safe integer, received "10"',
    );
  });

  it('accepts values at each limit and rejects one past it', () => {
    const limits = { maxBulkBytes: 4, maxAggregateLength: 2, maxDepth: 2, maxLineBytes: 3 };
    const atLimits = '$4\r\nabcd\r\n*2\r\n*2\r\n_\r\n_\r\n_\r\n%2\r\n_\r\n_\r\n_\r\n_\r\n+abc\r\n';
    expect(decode(atLimits, limits)).toHaveLength(4);
    expectRejected('$5\r\n', 'ERR_RESP_TOO_BIG', 'bulk length 5 over maxBulkBytes (4)', limits);
    expectRejected('=5\r\n', 'ERR_RESP_TOO_BIG', 'bulk length 5 over maxBulkBytes (4)', limits);
    expectRejected('*3\r\n', 'ERR_RESP_TOO_BIG', 'aggregate length 3 over maxAggregateLength (2)', limits);
    expectRejected('%3\r\n', 'ERR_RESP_TOO_BIG', 'aggregate length 3 over maxAggregateLength (2)', limits);
    expectRejected('*1\r\n*1\r\n*1\r\n', 'ERR_RESP_DEPTH', 'maxDepth (2)', limits);
    expectRejected('*1\r\n|1\r\n~0\r\n', 'ERR_RESP_DEPTH', 'maxDepth (2)', limits);
    expectRejected('+abcd\r\n', 'ERR_RESP_TOO_BIG', 'maxLineBytes (3)', limits);
    expectRejected(':1234\r\n', 'ERR_RESP_TOO_BIG', 'maxLineBytes (3)', limits);
  });

  it('rejects a depth bomb without overflowing the stack', () => {
    expectRejected('*1\r\n'.repeat(1000), 'ERR_RESP_DEPTH', 'deeper than maxDepth (32)');
    expect(decode('*1\r\n'.repeat(32) + ':1\r\n')).toHaveLength(1);
    expectRejected('|0\r\n'.repeat(100), 'ERR_RESP_DEPTH', 'maxDepth (32)');
  });

  it('rejects a declared huge bulk or aggregate before anything arrives', () => {
    expectRejected('$99999999999\r\n', 'ERR_RESP_TOO_BIG', 'bulk length 99999999999 over maxBulkBytes (16777216)');
    expectRejected('!16777217\r\n', 'ERR_RESP_TOO_BIG', 'bulk length 16777217');
    expectRejected('*99999999999\r\n', 'ERR_RESP_TOO_BIG', 'aggregate length 99999999999');
    expectRejected(`$${'9'.repeat(400)}\r\n`, 'ERR_RESP_TOO_BIG', 'over maxBulkBytes');
  });

  it('rejects an over-long line that never ends instead of buffering it', () => {
    expectRejected('+' + 'a'.repeat(70_000), 'ERR_RESP_TOO_BIG', 'RESP line longer than maxLineBytes (65536)');
    expectRejected('$' + '1'.repeat(70_000), 'ERR_RESP_TOO_BIG', 'maxLineBytes (65536)');
    expect(decode(`+${'a'.repeat(65_536)}\r\n`)).toHaveLength(1);
  });
});

describe('RespDecoder: malformed input', () => {
  it('rejects unknown type bytes, including inline commands', () => {
    expectRejected('GET key\r\n', 'ERR_RESP_TYPE', 'unknown RESP type byte 0x47 "G"');
    expectRejected('\r\n', 'ERR_RESP_TYPE', '0x0d');
    expectRejected(bytes([0x00]), 'ERR_RESP_TYPE', '0x00');
    expectRejected('+OK\r\n@', 'ERR_RESP_TYPE', '0x40');
  });

  it('rejects bad lengths: non-digits, empty, and negatives other than the -1 null', () => {
    expectRejected('$abc\r\n', 'ERR_RESP_LENGTH', 'non-digit bulk length "abc"');
    expectRejected('*1x\r\n', 'ERR_RESP_LENGTH', 'non-digit aggregate length "1x"');
    expectRejected('$\r\n', 'ERR_RESP_LENGTH', 'empty bulk length');
    expectRejected('$-2\r\n', 'ERR_RESP_LENGTH', 'negative bulk length "-2"');
    expectRejected('*-5\r\n', 'ERR_RESP_LENGTH', 'negative aggregate length "-5"');
    expectRejected('$+3\r\n', 'ERR_RESP_LENGTH', 'non-digit');
    for (const type of ['!', '=', '%', '~', '>', '|']) {
      expectRejected(`${type}-1\r\n`, 'ERR_RESP_LENGTH', `negative length -1 for type ${type}`);
    }
  });

  it('rejects a line not ended by CRLF', () => {
    expectRejected('+OK\n', 'ERR_RESP_CRLF', 'not terminated by CRLF: "+OK\\n"');
    expectRejected(':1\rx\n', 'ERR_RESP_CRLF', 'not terminated by CRLF');
    expectRejected('+O\rK\r\n', 'ERR_RESP_CRLF', 'bare CR or LF inside a line');
    expectRejected('-ERR\rx\r\n', 'ERR_RESP_CRLF', 'bare CR');
  });

  it('rejects a bulk payload not followed by CRLF', () => {
    expectRejected('$3\r\nabcd\r\n', 'ERR_RESP_CRLF', 'missing CRLF after 3-byte bulk payload, got "d"');
    expectRejected('$3\r\nabc\rX', 'ERR_RESP_CRLF', 'got "X"');
    expectRejected('$0\r\n\n', 'ERR_RESP_CRLF', 'after 0-byte bulk payload');
    expectRejected('!1\r\nab', 'ERR_RESP_CRLF', 'after 1-byte');
  });

  it('rejects malformed integers, booleans, doubles, big numbers and nulls', () => {
    expectRejected(':abc\r\n', 'ERR_RESP_SYNTAX', 'bad integer "abc"');
    expectRejected(':\r\n', 'ERR_RESP_SYNTAX', 'bad integer');
    expectRejected(':-\r\n', 'ERR_RESP_SYNTAX', 'bad integer "-"');
    expectRejected(':1.5\r\n', 'ERR_RESP_SYNTAX', 'bad integer "1.5"');
    expectRejected('#x\r\n', 'ERR_RESP_SYNTAX', 'bad boolean "x" (expected t or f)');
    expectRejected('#\r\n', 'ERR_RESP_SYNTAX', 'bad boolean');
    expectRejected('#tt\r\n', 'ERR_RESP_SYNTAX', 'bad boolean "tt"');
    for (const bad of ['abc', '1.2.3', '', 'Infinity', '1e', '.5', '1.', 'NaN', '0x10']) {
      expectRejected(`,${bad}\r\n`, 'ERR_RESP_SYNTAX', `bad double ${JSON.stringify(bad)}`);
    }
    expectRejected('(12a\r\n', 'ERR_RESP_SYNTAX', 'bad big number "12a"');
    expectRejected('(\r\n', 'ERR_RESP_SYNTAX', 'bad big number');
    expectRejected('(-\r\n', 'ERR_RESP_SYNTAX', 'bad big number');
    expectRejected('_x\r\n', 'ERR_RESP_SYNTAX', 'bad null');
  });

  it('rejects a verbatim string without its three-letter format and colon', () => {
    expectRejected('=3\r\ntxt\r\n', 'ERR_RESP_SYNTAX', "verbatim string of 3 bytes has no 'fmt:' prefix");
    expectRejected('=9\r\ntxt-hello\r\n', 'ERR_RESP_SYNTAX', `without 'fmt:' prefix: "txt-"`);
    expectRejected('=6\r\nt\nx:ab\r\n', 'ERR_RESP_SYNTAX', "without 'fmt:' prefix");
  });
});
