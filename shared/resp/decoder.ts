// The RESP2/RESP3 decoder: a resumable state machine fed arbitrary chunks, bounded by limits checked before any
// allocation. Both the bridge (client commands, Valkey replies) and the Worker (bridge replies) parse with it.

import { resolveDecoderOptions } from './decoder-options.ts';
import type { RespDecoderOptions } from './decoder-options.ts';
import {
  assertNoLineBreak, decodeText, parseBigNumber, parseBoolean, parseDouble, parseInteger, parseLength,
  parseVerbatimFormat, preview, protocolError,
} from './line-parser.ts';
import {
  ARRAY, ATTRIBUTE, BIG_NUMBER, BLOB_ERROR, BOOLEAN, BULK, CR, DOUBLE, ERROR, INTEGER, LF, MAP, NULL, PUSH, SET,
  SIMPLE, VERBATIM,
} from './type-bytes.ts';
import {
  RespAttributed, RespBigNumber, RespDouble, RespErrorReply, RespMap, RespPush, RespSet, RespSimple, RespVerbatim,
} from './types.ts';
import type { RespValue } from './types.ts';

export { RESP_DECODER_DEFAULTS } from './decoder-options.ts';
export type { RespDecoderOptions } from './decoder-options.ts';

// Bytes that may start a value: RESP2 and RESP3 types only (inline commands are not supported).
const TYPE_BYTES = new Uint8Array(256);
for (const b of [SIMPLE, ERROR, INTEGER, BULK, ARRAY, NULL, BOOLEAN, DOUBLE, BIG_NUMBER, BLOB_ERROR, VERBATIM]) {
  TYPE_BYTES[b] = 1;
}
for (const b of [MAP, SET, PUSH, ATTRIBUTE]) TYPE_BYTES[b] = 1;

/** An aggregate still collecting its elements (an attribute collects its entries, then the value they annotate). */
interface Frame {
  readonly type: number;
  remaining: number;
  readonly items: RespValue[];
}

function pairs(items: RespValue[], end: number): Array<[RespValue, RespValue]> {
  const out: Array<[RespValue, RespValue]> = [];
  for (let i = 0; i < end; i += 2) out.push([items[i]!, items[i + 1]!]);
  return out;
}

/**
 * Decodes a stream of RESP2/RESP3 values from chunks split anywhere. Malformed or over-limit input throws a
 * `ProtocolError` (`code` ERR_RESP_TYPE, ERR_RESP_LENGTH, ERR_RESP_CRLF, ERR_RESP_DEPTH, ERR_RESP_TOO_BIG with
 * `closeCode` 1009, ERR_RESP_SYNTAX); after that the decoder is broken and every `feed` throws the same error.
 *
 * @example
 * const decoder = new RespDecoder({ maxBulkBytes: 1024 * 1024 });
 * socket.on('data', (chunk) => { for (const reply of decoder.feed(chunk)) handle(reply); });
 */
export class RespDecoder {
  readonly #limits: ReturnType<typeof resolveDecoderOptions>;
  readonly #allocate: (size: number) => Uint8Array;
  #error: unknown = undefined;
  readonly #stack: Frame[] = [];
  /** Start of a line not yet terminated, kept as the chunks' pieces (the caller's memory, not copies). */
  #linePieces: Uint8Array[] = [];
  #lineBytes = 0;
  /** Type of the bulk-like payload being read, or 0 between values. */
  #bulkType = 0;
  #bulkSize = 0;
  #bulkMissing = 0;
  /** Received parts of the payload, joined once it is complete: never allocated from the declared size alone. */
  #bulkPieces: Uint8Array[] = [];
  #bulkPayload: Uint8Array | undefined = undefined;
  #crlfSeen = 0;
  #held = 0;

  /** @throws {RangeError} when an option is not a positive safe integer. */
  constructor(options?: RespDecoderOptions) {
    this.#limits = resolveDecoderOptions(options);
    const allocate = options?.allocate;
    if (allocate !== undefined && typeof allocate !== 'function') throw new RangeError('RespDecoder option allocate must be a function');
    this.#allocate = allocate ?? ((size) => new Uint8Array(size));
  }

  /** Input bytes received for the value not yet complete: 0 between values. */
  get bufferedBytes(): number {
    return this.#held;
  }

  /** Forgets everything buffered and any earlier error, as for a new connection. */
  reset(): void {
    this.#error = undefined;
    this.#stack.length = 0;
    this.#linePieces = [];
    this.#lineBytes = 0;
    this.#bulkType = 0;
    this.#bulkPieces = [];
    this.#bulkPayload = undefined;
    this.#crlfSeen = 0;
    this.#held = 0;
  }

  /**
   * Decodes `chunk` and returns every value it completes, in order (often none, or several). Returned bulk strings
   * are copies, but an unfinished value keeps views of the chunks it started in: do not reuse a chunk's memory.
   * @throws {ProtocolError} on malformed or over-limit input, and on every call after that.
   */
  feed(chunk: Uint8Array): RespValue[] {
    if (this.#error !== undefined) throw this.#error;
    try {
      return this.#feed(chunk);
    } catch (error) {
      this.#error = error;
      throw error;
    }
  }

  #feed(chunk: Uint8Array): RespValue[] {
    const out: RespValue[] = [];
    const end = chunk.length;
    let pos = 0;
    let valueStart = 0;
    while (pos < end) {
      if (this.#bulkType !== 0) {
        pos = this.#readBulk(chunk, pos, out);
      } else if (this.#lineBytes > 0) {
        pos = this.#continueLine(chunk, pos, out);
      } else {
        const type = chunk[pos]!;
        if (TYPE_BYTES[type] === 0) {
          const hex = type.toString(16).padStart(2, '0');
          throw protocolError('ERR_RESP_TYPE', `unknown RESP type byte 0x${hex} ${preview(chunk, pos, pos + 1)}`);
        }
        const lf = chunk.indexOf(LF, pos + 1);
        if (lf === -1) {
          this.#holdLine(chunk.subarray(pos));
          pos = end;
        } else {
          this.#checkLineLength(lf - pos);
          this.#line(chunk, pos, lf, out);
          pos = lf + 1;
        }
      }
      if (this.#stack.length === 0 && this.#bulkType === 0 && this.#lineBytes === 0) {
        valueStart = pos;
        this.#held = 0;
      }
    }
    this.#held += end - valueStart;
    return out;
  }

  #holdLine(piece: Uint8Array): void {
    this.#linePieces.push(piece);
    this.#lineBytes += piece.length;
    this.#checkLineLength(this.#lineBytes);
  }

  /** `before` counts the bytes from the type byte up to the LF (or all so far): type + content + CR at most. */
  #checkLineLength(before: number): void {
    if (before > this.#limits.maxLineBytes + 2) {
      throw protocolError('ERR_RESP_TOO_BIG', `RESP line longer than maxLineBytes (${this.#limits.maxLineBytes})`);
    }
  }

  #continueLine(chunk: Uint8Array, pos: number, out: RespValue[]): number {
    const lf = chunk.indexOf(LF, pos);
    if (lf === -1) {
      this.#holdLine(chunk.subarray(pos));
      return chunk.length;
    }
    this.#checkLineLength(this.#lineBytes + lf - pos);
    const line = new Uint8Array(this.#lineBytes + lf + 1 - pos);
    let at = 0;
    for (const piece of this.#linePieces) {
      line.set(piece, at);
      at += piece.length;
    }
    line.set(chunk.subarray(pos, lf + 1), at);
    this.#linePieces = [];
    this.#lineBytes = 0;
    this.#line(line, 0, line.length - 1, out);
    return lf + 1;
  }

  /** Handles the line `bytes[start, lf]`: `start` is the type byte, `lf` the index of its LF. */
  #line(bytes: Uint8Array, start: number, lf: number, out: RespValue[]): void {
    if (bytes[lf - 1] !== CR) {
      throw protocolError('ERR_RESP_CRLF', `RESP line not terminated by CRLF: ${preview(bytes, start, lf + 1)}`);
    }
    const from = start + 1;
    const to = lf - 1;
    switch (bytes[start]) {
      case SIMPLE:
        assertNoLineBreak(bytes, from, to);
        return this.#value(new RespSimple(decodeText(bytes, from, to)), out);
      case ERROR:
        assertNoLineBreak(bytes, from, to);
        return this.#value(new RespErrorReply(decodeText(bytes, from, to), false), out);
      case INTEGER:
        return this.#value(parseInteger(bytes, from, to), out);
      case NULL:
        if (to !== from) throw protocolError('ERR_RESP_SYNTAX', `bad null ${preview(bytes, start, to)}`);
        return this.#value(null, out);
      case BOOLEAN:
        return this.#value(parseBoolean(bytes, from, to), out);
      case DOUBLE:
        return this.#value(new RespDouble(parseDouble(bytes, from, to)), out);
      case BIG_NUMBER:
        return this.#value(new RespBigNumber(parseBigNumber(bytes, from, to)), out);
      case BULK:
      case BLOB_ERROR:
      case VERBATIM:
        return this.#bulkHeader(bytes[start]!, parseLength(bytes, from, to, 'bulk'), out);
      default:
        return this.#aggregateHeader(bytes[start]!, parseLength(bytes, from, to, 'aggregate'), out);
    }
  }

  #bulkHeader(type: number, size: number, out: RespValue[]): void {
    if (size === -1 && type === BULK) return this.#value(null, out);
    if (size === -1) throw negativeLength(type);
    if (size > this.#limits.maxBulkBytes) {
      throw protocolError('ERR_RESP_TOO_BIG', `bulk length ${size} over maxBulkBytes (${this.#limits.maxBulkBytes})`);
    }
    if (type === VERBATIM && size < 4) {
      throw protocolError('ERR_RESP_SYNTAX', `verbatim string of ${size} bytes has no 'fmt:' prefix`);
    }
    this.#bulkType = type;
    this.#bulkSize = size;
    this.#bulkMissing = size;
    this.#crlfSeen = 0;
  }

  #aggregateHeader(type: number, count: number, out: RespValue[]): void {
    if (count === -1 && type === ARRAY) return this.#value(null, out);
    if (count === -1) throw negativeLength(type);
    if (count > this.#limits.maxAggregateLength) {
      const limit = this.#limits.maxAggregateLength;
      throw protocolError('ERR_RESP_TOO_BIG', `aggregate length ${count} over maxAggregateLength (${limit})`);
    }
    if (this.#stack.length >= this.#limits.maxDepth) {
      throw protocolError('ERR_RESP_DEPTH', `RESP nesting deeper than maxDepth (${this.#limits.maxDepth})`);
    }
    if (count === 0 && type !== ATTRIBUTE) return this.#value(build(type, []), out);
    const remaining = type === MAP ? count * 2 : type === ATTRIBUTE ? count * 2 + 1 : count;
    this.#stack.push({ type, remaining, items: [] });
  }

  #readBulk(chunk: Uint8Array, pos: number, out: RespValue[]): number {
    const end = chunk.length;
    if (this.#bulkMissing > 0) {
      if (this.#bulkPieces.length === 0 && end - pos >= this.#bulkSize + 2) {
        // Common case: payload and CRLF in this chunk. Copied, so that later writes to the chunk cannot reach it;
        // not with chunk.slice(), which on a Node Buffer returns a view.
        const payload = this.#allocate(this.#bulkSize);
        payload.set(chunk.subarray(pos, pos + this.#bulkSize));
        this.#bulkPayload = payload;
        pos += this.#bulkSize;
        this.#bulkMissing = 0;
      } else {
        const take = Math.min(this.#bulkMissing, end - pos);
        this.#bulkPieces.push(chunk.subarray(pos, pos + take));
        this.#bulkMissing -= take;
        pos += take;
        if (this.#bulkMissing > 0) return pos;
        this.#bulkPayload = this.#joinBulk();
      }
    } else if (this.#bulkPayload === undefined) {
      this.#bulkPayload = new Uint8Array(0);
    }
    for (; this.#crlfSeen < 2 && pos < end; this.#crlfSeen++, pos++) {
      if (chunk[pos] !== (this.#crlfSeen === 0 ? CR : LF)) {
        const got = preview(chunk, pos, pos + 1);
        throw protocolError('ERR_RESP_CRLF', `missing CRLF after ${this.#bulkSize}-byte bulk payload, got ${got}`);
      }
    }
    if (this.#crlfSeen < 2) return pos;
    const value = bulkValue(this.#bulkType, this.#bulkPayload);
    this.#bulkType = 0;
    this.#bulkPayload = undefined;
    this.#value(value, out);
    return pos;
  }

  #joinBulk(): Uint8Array {
    const joined = this.#allocate(this.#bulkSize);
    let at = 0;
    for (const piece of this.#bulkPieces) {
      joined.set(piece, at);
      at += piece.length;
    }
    this.#bulkPieces = [];
    return joined;
  }

  /** Adds a complete value to the innermost open aggregate, closing every aggregate it completes. */
  #value(value: RespValue, out: RespValue[]): void {
    const stack = this.#stack;
    let done = value;
    for (;;) {
      const frame = stack[stack.length - 1];
      if (frame === undefined) {
        out.push(done);
        return;
      }
      frame.items.push(done);
      if (--frame.remaining > 0) return;
      stack.pop();
      done = build(frame.type, frame.items);
    }
  }
}

function build(type: number, items: RespValue[]): RespValue {
  switch (type) {
    case MAP:
      return new RespMap(pairs(items, items.length));
    case SET:
      return new RespSet(items);
    case PUSH:
      return new RespPush(items);
    case ATTRIBUTE:
      return new RespAttributed(pairs(items, items.length - 1), items[items.length - 1]!);
    default:
      return items;
  }
}

function bulkValue(type: number, payload: Uint8Array): RespValue {
  if (type === BULK) return payload;
  if (type === BLOB_ERROR) return new RespErrorReply(decodeText(payload, 0, payload.length), true);
  return new RespVerbatim(parseVerbatimFormat(payload), payload.subarray(4));
}

/** Only `$-1` and `*-1` (RESP2 nulls) may be negative. */
function negativeLength(type: number): Error {
  return protocolError('ERR_RESP_LENGTH', `negative length -1 for type ${String.fromCharCode(type)}`);
}
