// Property tests of the codec: random nested values survive encode -> decode under random chunk splits, and random
// or mutated bytes make the decoder throw nothing but ProtocolError, the same way however the input is split.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../shared/errors.ts';
import {
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
  encodeValues,
} from '../../shared/resp/index.ts';
import type { RespDecoderOptions, RespValue } from '../../shared/resp/index.ts';

const lineText = fc.string({ unit: 'binary', maxLength: 12 }).map((text) => text.replace(/[\r\n]/g, ''));
const anyText = fc.string({ unit: 'binary', maxLength: 12 });
const payload = fc.oneof(
  fc.uint8Array({ maxLength: 24 }),
  fc.constantFrom(Uint8Array.of(0x0d, 0x0a), Uint8Array.of(0x24, 0x31, 0x0d, 0x0a, 0x00, 0xff)),
);
const visibleAscii = fc.integer({ min: 0x21, max: 0x7e }).map((code) => String.fromCharCode(code));
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

const leaf: fc.Arbitrary<RespValue> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.maxSafeInteger().map((n) => n + 0), // the decoder never yields -0 for an integer
  fc.bigInt({ min: SAFE + 1n, max: 2n ** 128n }).chain((n) => fc.constantFrom(n, -n)),
  payload,
  lineText.map((text) => new RespSimple(text)),
  lineText.map((text) => new RespErrorReply(text, false)),
  anyText.map((text) => new RespErrorReply(text, true)),
  fc
    .oneof(fc.double(), fc.constantFrom(0, -0, NaN, Infinity, -Infinity, 0.1, 1e21, 1.5e-7, Number.MIN_VALUE))
    .map((n) => new RespDouble(n)),
  fc.bigInt().map((n) => new RespBigNumber(n)),
  fc
    .tuple(fc.string({ unit: visibleAscii, minLength: 3, maxLength: 3 }), payload)
    .map(([format, value]) => new RespVerbatim(format, value)),
);

const { value: respValue } = fc.letrec<{ value: RespValue; aggregate: RespValue }>((tie) => ({
  value: fc.oneof({ maxDepth: 4, depthIdentifier: 'resp' }, leaf, leaf, tie('aggregate')),
  aggregate: fc.oneof(
    fc.array(tie('value'), { maxLength: 4 }),
    fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 3 }).map((entries) => new RespMap(entries)),
    fc.array(tie('value'), { maxLength: 4 }).map((items) => new RespSet(items)),
    fc.array(tie('value'), { maxLength: 4 }).map((items) => new RespPush(items)),
    fc
      .tuple(fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 2 }), tie('value'))
      .map(([attributes, value]) => new RespAttributed(attributes, value)),
  ),
}));

/** Cut positions (any order, duplicates allowed) turned into chunk boundaries by `feedSplit`. */
const cuts = fc.array(fc.nat(), { maxLength: 8 });

type Outcome = { values: RespValue[]; error?: undefined } | { values?: undefined; error: ProtocolError };

/** Feeds `data` cut at `at` (taken modulo its length); any error other than a ProtocolError fails the property. */
function feedSplit(data: Uint8Array, at: number[], options?: RespDecoderOptions): Outcome {
  const bounds = [...new Set(at.map((n) => (data.length === 0 ? 0 : n % data.length)))].sort((a, b) => a - b);
  const decoder = new RespDecoder(options);
  const values: RespValue[] = [];
  let from = 0;
  try {
    for (const to of [...bounds, data.length]) {
      values.push(...decoder.feed(data.subarray(from, to)));
      from = to;
    }
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    expect(() => decoder.feed(Uint8Array.of(0x2b, 0x0d, 0x0a))).toThrow(error);
    return { error };
  }
  return { values };
}

/** Whole and split feeding must agree: the same values, or an error with the same code. */
function expectSameOutcome(data: Uint8Array, at: number[], options?: RespDecoderOptions): Outcome {
  const whole = feedSplit(data, [], options);
  const split = feedSplit(data, at, options);
  if (whole.error === undefined) {
    expect(split.values).toStrictEqual(whole.values);
  } else {
    expect(split.error?.code).toBe(whole.error.code);
  }
  return whole;
}

const smallLimits = fc.option(
  fc.record({
    maxBulkBytes: fc.integer({ min: 1, max: 16 }),
    maxAggregateLength: fc.integer({ min: 1, max: 4 }),
    maxDepth: fc.integer({ min: 1, max: 4 }),
    maxLineBytes: fc.integer({ min: 1, max: 16 }),
  }),
  { nil: undefined },
);

/** Pieces of RESP, valid and not, so that noise gets past the type byte and into every parser. */
const respToken = fc.constantFrom(
  ...['+OK', '-ERR', ':12', ':-', '$3', '$-1', '$-2', '$x', '*2', '*-1', '*0', '_', '#t', '#x', ',1.5', ',inf', ',1e'],
  ...['(12', '(1a', '!4', '=8', '=2', 'txt:', '%1', '~2', '>1', '|1', '|0', 'abc', '\r\n', '\r\n', '\r', '\n', '', '9'],
);
const tokenNoise = fc.array(respToken, { maxLength: 40 }).map((tokens) => new TextEncoder().encode(tokens.join('')));

/** A valid encoding damaged once: truncated, a byte replaced, bytes inserted or a range removed. */
const mutated = fc
  .tuple(
    fc.array(respValue, { minLength: 1, maxLength: 3 }),
    fc.nat(),
    fc.nat(),
    fc.uint8Array({ minLength: 1, maxLength: 6 }),
  )
  .chain(([values, position, length, inserted]) => {
    const encoded = encodeValues(values);
    const at = position % (encoded.length + 1);
    return fc.constantFrom(
      encoded.subarray(0, at),
      Uint8Array.from([...encoded.subarray(0, at), inserted[0]!, ...encoded.subarray(at + 1)]),
      Uint8Array.from([...encoded.subarray(0, at), ...inserted, ...encoded.subarray(at)]),
      Uint8Array.from([...encoded.subarray(0, at), ...encoded.subarray(at + 1 + (length % 8))]),
    );
  });

describe('RESP codec properties', () => {
  it('decodes what it encodes, however the bytes are split', () => {
    fc.assert(
      fc.property(fc.array(respValue, { minLength: 1, maxLength: 4 }), cuts, (values, at) => {
        const encoded = encodeValues(values);
        const outcome = feedSplit(encoded, at);
        expect(outcome.error).toBeUndefined();
        expect(outcome.values).toStrictEqual(values);
        expect(encodeValues(outcome.values!)).toStrictEqual(encoded);
      }),
      { numRuns: 400 },
    );
  });

  it('throws only ProtocolError on random bytes, the same way whole or split', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), cuts, smallLimits, (data, at, limits) => {
        expectSameOutcome(data, at, limits);
      }),
      { numRuns: 300 },
    );
  });

  it('throws only ProtocolError on RESP-like noise, the same way whole or split', () => {
    fc.assert(
      fc.property(tokenNoise, cuts, smallLimits, (noise, at, limits) => {
        expectSameOutcome(noise, at, limits);
      }),
      { numRuns: 500 },
    );
  });

  it('throws only ProtocolError on damaged encodings, and never on a truncated one', () => {
    fc.assert(
      fc.property(mutated, cuts, smallLimits, (data, at, limits) => {
        expectSameOutcome(data, at, limits);
      }),
      { numRuns: 400 },
    );
    fc.assert(
      fc.property(fc.array(respValue, { minLength: 1, maxLength: 3 }), fc.nat(), cuts, (values, cut, at) => {
        const encoded = encodeValues(values);
        const prefix = encoded.subarray(0, cut % encoded.length);
        const outcome = expectSameOutcome(prefix, at);
        expect(outcome.error).toBeUndefined();
        expect(outcome.values!.length).toBeLessThan(values.length);
        expect(outcome.values).toStrictEqual(values.slice(0, outcome.values!.length));
      }),
      { numRuns: 300 },
    );
  });
});
