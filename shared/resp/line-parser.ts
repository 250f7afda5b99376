// Parsers for the content of one RESP line (lengths, integers, doubles, booleans, big numbers) and the verbatim
// prefix, straight from the bytes. Internal to shared/resp/: the decoder owns framing and limits, this the formats.

import { ProtocolError } from '../errors.ts';

const CR = 0x0d;
const LF = 0x0a;
const PLUS = 0x2b; // '+'
const MINUS = 0x2d; // '-'
const COLON = 0x3a;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const LOWER_T = 0x74; // 't'
const LOWER_F = 0x66; // 'f'

/** Close code 1009 for over-limit input, 1002 for everything else. */
export function protocolError(code: string, message: string): ProtocolError {
  return new ProtocolError(code, message, code === 'ERR_RESP_TOO_BIG' ? 1009 : 1002);
}

const utf8 = new TextDecoder('utf-8');

/** `bytes[start, end)` one char per byte when short; callers validate or only display the result. */
function ascii(bytes: Uint8Array, start: number, end: number): string {
  if (end - start > 64) return utf8.decode(bytes.subarray(start, end));
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

/** A short, escaped excerpt of `bytes[start, end)` for error messages. */
export function preview(bytes: Uint8Array, start: number, end: number): string {
  const cut = Math.min(end, start + 32);
  return JSON.stringify(ascii(bytes, start, cut)) + (cut < end ? '...' : '');
}

/** UTF-8 text of `bytes[start, end)`; short ASCII (the usual `+OK`, `-ERR ...`) skips TextDecoder. */
export function decodeText(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= 64) {
    let plain = true;
    for (let i = start; i < end && plain; i++) plain = bytes[i]! < 0x80;
    if (plain) return ascii(bytes, start, end);
  }
  return utf8.decode(bytes.subarray(start, end));
}

/** Rejects a CR or LF inside a simple line: RESP forbids them, and the encoder could not write them back. */
export function assertNoLineBreak(bytes: Uint8Array, start: number, end: number): void {
  for (let i = start; i < end; i++) {
    if (bytes[i] === CR || bytes[i] === LF) {
      throw protocolError('ERR_RESP_CRLF', `bare CR or LF inside a line: ${preview(bytes, start, end)}`);
    }
  }
}

/**
 * A length or count: decimal digits, or exactly `-1` (returned as -1; the caller decides whether null is allowed).
 * Huge values are returned as they are (possibly Infinity) so the caller reports them against its limit.
 */
export function parseLength(bytes: Uint8Array, start: number, end: number, what: string): number {
  if (end - start === 2 && bytes[start] === MINUS && bytes[start + 1] === DIGIT_0 + 1) return -1;
  if (start === end) throw protocolError('ERR_RESP_LENGTH', `empty ${what} length`);
  let n = 0;
  for (let i = start; i < end; i++) {
    const b = bytes[i]!;
    if (b < DIGIT_0 || b > DIGIT_9) {
      const why = b === MINUS ? 'negative' : 'non-digit';
      throw protocolError('ERR_RESP_LENGTH', `${why} ${what} length ${preview(bytes, start, end)}`);
    }
    n = n * 10 + (b - DIGIT_0);
  }
  return n;
}

/** `:` integer: a number when safe, otherwise a bigint. */
export function parseInteger(bytes: Uint8Array, start: number, end: number): number | bigint {
  let i = start;
  const negative = bytes[i] === MINUS;
  if (negative || bytes[i] === PLUS) i++;
  if (i === end) throw protocolError('ERR_RESP_SYNTAX', `bad integer ${preview(bytes, start, end)}`);
  let n = 0;
  for (let j = i; j < end; j++) {
    const b = bytes[j]!;
    if (b < DIGIT_0 || b > DIGIT_9) {
      throw protocolError('ERR_RESP_SYNTAX', `bad integer ${preview(bytes, start, end)}`);
    }
    n = n * 10 + (b - DIGIT_0);
  }
  // 15 digits always fit in a double exactly; longer ones go through BigInt to stay exact.
  if (end - i <= 15) return negative ? 0 - n : n;
  const big = BigInt(ascii(bytes, start, end));
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

/** `(` big number. */
export function parseBigNumber(bytes: Uint8Array, start: number, end: number): bigint {
  let i = start;
  if (bytes[i] === MINUS || bytes[i] === PLUS) i++;
  let ok = i < end;
  for (let j = i; ok && j < end; j++) ok = bytes[j]! >= DIGIT_0 && bytes[j]! <= DIGIT_9;
  if (!ok) throw protocolError('ERR_RESP_SYNTAX', `bad big number ${preview(bytes, start, end)}`);
  return BigInt(ascii(bytes, start, end));
}

const DOUBLE = /^[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/** `,` double: `inf`, `-inf`, `nan` or a decimal with optional fraction and exponent. */
export function parseDouble(bytes: Uint8Array, start: number, end: number): number {
  const text = ascii(bytes, start, end);
  if (text === 'inf' || text === '+inf') return Infinity;
  if (text === '-inf') return -Infinity;
  if (text === 'nan') return NaN;
  if (!DOUBLE.test(text)) throw protocolError('ERR_RESP_SYNTAX', `bad double ${preview(bytes, start, end)}`);
  return Number(text);
}

/** `#` boolean: exactly `t` or `f`. */
export function parseBoolean(bytes: Uint8Array, start: number, end: number): boolean {
  if (end - start === 1 && bytes[start] === LOWER_T) return true;
  if (end - start === 1 && bytes[start] === LOWER_F) return false;
  throw protocolError('ERR_RESP_SYNTAX', `bad boolean ${preview(bytes, start, end)} (expected t or f)`);
}

/** The three-letter format of a verbatim payload (`txt:...`): three visible ASCII characters, then ':'. */
export function parseVerbatimFormat(payload: Uint8Array): string {
  let ok = payload.length >= 4 && payload[3] === COLON;
  for (let i = 0; ok && i < 3; i++) ok = payload[i]! > 0x20 && payload[i]! < 0x7f;
  if (!ok) throw protocolError('ERR_RESP_SYNTAX', `verbatim string without 'fmt:' prefix: ${preview(payload, 0, 4)}`);
  return String.fromCharCode(payload[0]!, payload[1]!, payload[2]!);
}
