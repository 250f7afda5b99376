// The RESP3 encoder: commands (arrays of bulk strings) and every value of the model. Each call measures first,
// then writes into exactly one Uint8Array, so a reply or a pipeline of commands is a single buffer for the socket.

import {
  ARRAY, ATTRIBUTE, BIG_NUMBER, BLOB_ERROR, BOOLEAN, BULK, CR, DOUBLE, ERROR, INTEGER, LF, MAP, NULL, PUSH, SET,
  SIMPLE, VERBATIM,
} from './type-bytes.ts';
import {
  RespAttributed, RespBigNumber, RespDouble, RespErrorReply, RespMap, RespPush, RespSet, RespSimple, RespVerbatim,
} from './types.ts';
import type { RespValue } from './types.ts';

const utf8 = new TextEncoder();
const LOWER_T = 0x74; // 't'
const LOWER_F = 0x66; // 'f'

/** UTF-8 byte length of `text` as TextEncoder writes it (a lone surrogate becomes U+FFFD: 3 bytes). */
function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) {
      bytes += 1;
    } else if (unit >= 0xd800 && unit < 0xdc00 && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2; // a surrogate pair: two units, four bytes
      i++;
    } else {
      bytes += 2;
    }
  }
  return bytes;
}

function writeText(out: Uint8Array, at: number, text: string, bytes: number): number {
  if (bytes === text.length && bytes <= 64) {
    for (let i = 0; i < bytes; i++) out[at + i] = text.charCodeAt(i);
  } else {
    utf8.encodeInto(text, out.subarray(at, at + bytes));
  }
  return at + bytes;
}

function decimalDigits(n: number): number {
  let digits = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    digits++;
  }
  return digits;
}

/** Writes `<type><n>\r\n` for a non-negative length or count. */
function writeHeader(out: Uint8Array, at: number, type: number, n: number): number {
  out[at] = type;
  const end = at + 1 + decimalDigits(n);
  for (let i = end - 1; i > at; i--) {
    out[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  out[end] = CR;
  out[end + 1] = LF;
  return end + 2;
}

const headerSize = (n: number): number => 1 + decimalDigits(n) + 2;

function writeCrlf(out: Uint8Array, at: number): number {
  out[at] = CR;
  out[at + 1] = LF;
  return at + 2;
}

/** Decimal text of an integer number; unsafe integers go through BigInt because String(1e21) is '1e+21'. */
function integerText(n: number, what: string): string {
  if (!Number.isInteger(n)) throw new TypeError(`${what} must be a finite integer, received ${n}`);
  return Number.isSafeInteger(n) ? String(n + 0) : BigInt(n).toString();
}

function doubleText(n: number): string {
  if (typeof n !== 'number') throw new TypeError(`RespDouble value must be a number, received ${typeof n}`);
  if (n === Infinity) return 'inf';
  if (n === -Infinity) return '-inf';
  if (Number.isNaN(n)) return 'nan';
  // String() gives the shortest text that parses back to the same double; only the sign of zero needs help.
  return Object.is(n, -0) ? '-0' : String(n);
}

function stringOf(text: string, what: string): string {
  if (typeof text !== 'string') throw new TypeError(`${what} must be a string, received ${typeof text}`);
  return text;
}

/** Simple strings and errors are CRLF-terminated, so they cannot carry CR or LF themselves. */
function lineText(text: string, what: string): string {
  if (/[\r\n]/.test(stringOf(text, what))) {
    throw new TypeError(`${what} must not contain CR or LF (use a bulk or blob error): ${JSON.stringify(text)}`);
  }
  return text;
}

function bigNumberText(n: bigint): string {
  if (typeof n !== 'bigint') throw new TypeError(`RespBigNumber value must be a bigint, received ${typeof n}`);
  return n.toString();
}

function verbatimFormat(format: string): string {
  if (typeof format !== 'string' || !/^[\x21-\x7e]{3}$/.test(format)) {
    throw new TypeError(`RespVerbatim format must be three visible ASCII characters, received ${String(format)}`);
  }
  return format;
}

/**
 * Encodes a command as a RESP array of bulk strings, e.g. `['SET', 'k', 'v']` to `*3\r\n$3\r\nSET\r\n...`.
 * Strings are written as UTF-8, byte arrays verbatim (any byte, CRLF included), numbers as decimal integers.
 * @throws {TypeError} for a number that is not a finite integer, or an argument of another type.
 */
export function encodeCommand(args: ReadonlyArray<string | Uint8Array | number>): Uint8Array {
  const texts: Array<string | Uint8Array> = new Array(args.length);
  const lengths: number[] = new Array(args.length);
  let size = headerSize(args.length);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const text = typeof arg === 'number' ? integerText(arg, `command argument ${i}`) : arg;
    if (typeof text === 'string') {
      lengths[i] = utf8Length(text);
    } else if (text instanceof Uint8Array) {
      lengths[i] = text.length;
    } else {
      throw new TypeError(`command argument ${i} must be a string, Uint8Array or number, received ${typeof arg}`);
    }
    texts[i] = text;
    size += headerSize(lengths[i]!) + lengths[i]! + 2;
  }
  const out = new Uint8Array(size);
  let at = writeHeader(out, 0, ARRAY, args.length);
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i]!;
    const length = lengths[i]!;
    at = writeHeader(out, at, BULK, length);
    if (typeof text === 'string') {
      at = writeText(out, at, text, length);
    } else {
      out.set(text, at);
      at += length;
    }
    at = writeCrlf(out, at);
  }
  return out;
}

/**
 * Encodes one value as RESP3. Doubles must be `RespDouble` (a plain non-integer number is rejected); integers
 * outside the safe range may be numbers or bigints. Strings are not values: use a Uint8Array or `RespSimple`.
 * @throws {TypeError} for a non-integer number, a simple string or error containing CR or LF, a verbatim format
 * that is not three visible ASCII characters, or anything outside the RespValue model.
 */
export function encodeValue(value: RespValue): Uint8Array {
  const out = new Uint8Array(sizeOf(value));
  write(out, 0, value);
  return out;
}

/**
 * Encodes several values into one buffer, back to back (for example every reply of a pipeline).
 * @throws {TypeError} as `encodeValue`.
 */
export function encodeValues(values: readonly RespValue[]): Uint8Array {
  let size = 0;
  for (const value of values) size += sizeOf(value);
  const out = new Uint8Array(size);
  let at = 0;
  for (const value of values) at = write(out, at, value);
  return out;
}

/** Measures `value` and validates it, so that `write` never fails half way. */
function sizeOf(value: RespValue): number {
  if (value === null) return 3;
  if (typeof value === 'boolean') return 4;
  if (typeof value === 'number') return 3 + integerText(value, 'a plain number (use RespDouble for doubles)').length;
  if (typeof value === 'bigint') return 3 + value.toString().length;
  if (value instanceof Uint8Array) return headerSize(value.length) + value.length + 2;
  if (Array.isArray(value)) return headerSize(value.length) + sizeOfAll(value);
  if (value instanceof RespSimple) return 3 + utf8Length(lineText(value.value, 'RespSimple value'));
  if (value instanceof RespErrorReply) {
    if (!value.blob) return 3 + utf8Length(lineText(value.message, 'RespErrorReply message'));
    const bytes = utf8Length(stringOf(value.message, 'RespErrorReply message'));
    return headerSize(bytes) + bytes + 2;
  }
  if (value instanceof RespDouble) return 3 + doubleText(value.value).length;
  if (value instanceof RespBigNumber) return 3 + bigNumberText(value.value).length;
  if (value instanceof RespVerbatim) {
    verbatimFormat(value.format);
    return headerSize(4 + value.value.length) + 4 + value.value.length + 2;
  }
  if (value instanceof RespMap) return headerSize(value.entries.length) + sizeOfPairs(value.entries);
  if (value instanceof RespSet || value instanceof RespPush) {
    return headerSize(value.items.length) + sizeOfAll(value.items);
  }
  if (value instanceof RespAttributed) {
    return headerSize(value.attributes.length) + sizeOfPairs(value.attributes) + sizeOf(value.value);
  }
  const kind = typeof value === 'string' ? 'a string (use a Uint8Array or RespSimple)' : String(value);
  throw new TypeError(`cannot encode ${kind} as RESP`);
}

function sizeOfAll(items: readonly RespValue[]): number {
  let size = 0;
  for (const item of items) size += sizeOf(item);
  return size;
}

function sizeOfPairs(entries: ReadonlyArray<readonly [RespValue, RespValue]>): number {
  let size = 0;
  for (const [key, value] of entries) size += sizeOf(key) + sizeOf(value);
  return size;
}

function writeLine(out: Uint8Array, at: number, type: number, text: string): number {
  out[at] = type;
  return writeCrlf(out, writeText(out, at + 1, text, utf8Length(text)));
}

function writeAll(out: Uint8Array, at: number, items: readonly RespValue[]): number {
  for (const item of items) at = write(out, at, item);
  return at;
}

function writePairs(out: Uint8Array, at: number, entries: ReadonlyArray<readonly [RespValue, RespValue]>): number {
  for (const [key, value] of entries) at = write(out, write(out, at, key), value);
  return at;
}

/** Writes a value `sizeOf` has validated; returns the offset after it. */
function write(out: Uint8Array, at: number, value: RespValue): number {
  if (value === null) {
    out[at] = NULL;
    return writeCrlf(out, at + 1);
  }
  if (typeof value === 'boolean') {
    out[at] = BOOLEAN;
    out[at + 1] = value ? LOWER_T : LOWER_F;
    return writeCrlf(out, at + 2);
  }
  if (typeof value === 'number') return writeLine(out, at, INTEGER, integerText(value, 'number'));
  if (typeof value === 'bigint') return writeLine(out, at, INTEGER, value.toString());
  if (value instanceof Uint8Array) {
    at = writeHeader(out, at, BULK, value.length);
    out.set(value, at);
    return writeCrlf(out, at + value.length);
  }
  if (Array.isArray(value)) return writeAll(out, writeHeader(out, at, ARRAY, value.length), value);
  if (value instanceof RespSimple) return writeLine(out, at, SIMPLE, value.value);
  if (value instanceof RespErrorReply) {
    if (!value.blob) return writeLine(out, at, ERROR, value.message);
    const text = value.message;
    const bytes = utf8Length(text);
    return writeCrlf(out, writeText(out, writeHeader(out, at, BLOB_ERROR, bytes), text, bytes));
  }
  if (value instanceof RespDouble) return writeLine(out, at, DOUBLE, doubleText(value.value));
  if (value instanceof RespBigNumber) return writeLine(out, at, BIG_NUMBER, value.value.toString());
  if (value instanceof RespVerbatim) {
    at = writeHeader(out, at, VERBATIM, 4 + value.value.length);
    at = writeText(out, at, `${value.format}:`, 4);
    out.set(value.value, at);
    return writeCrlf(out, at + value.value.length);
  }
  if (value instanceof RespMap) {
    return writePairs(out, writeHeader(out, at, MAP, value.entries.length), value.entries);
  }
  if (value instanceof RespSet) return writeAll(out, writeHeader(out, at, SET, value.items.length), value.items);
  if (value instanceof RespPush) return writeAll(out, writeHeader(out, at, PUSH, value.items.length), value.items);
  const attributed = value as RespAttributed;
  at = writePairs(out, writeHeader(out, at, ATTRIBUTE, attributed.attributes.length), attributed.attributes);
  return write(out, at, attributed.value);
}
