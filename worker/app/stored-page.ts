// What the example app stores per key, and how it reads any value another client wrote. A plain origin body is
// stored as its exact bytes, so Go services and valkey-cli read and write the same values; only what plain bytes
// cannot say (another content type, a cached 404) gets a small envelope. Format: docs/app.md.
import { utf8Text } from '../../shared/bytes.ts';

/** A page as the app serves it. */
export interface Page {
  readonly status: 200 | 404;
  readonly contentType: string;
  readonly body: Uint8Array;
}

/** `\0VAE1\n`: starts an envelope. A NUL first byte keeps it apart from text; a plain value that starts so is enveloped. */
export const ENVELOPE_MAGIC = new Uint8Array([0x00, 0x56, 0x41, 0x45, 0x31, 0x0a]);

const TEXT = 'text/plain; charset=utf-8';
const BINARY = 'application/octet-stream';
const ascii = new TextEncoder();
const NEWLINE = 0x0a;

function startsWithMagic(bytes: Uint8Array): boolean {
  if (bytes.length < ENVELOPE_MAGIC.length) return false;
  return ENVELOPE_MAGIC.every((b, i) => bytes[i] === b);
}

/** The content type a plain value is served with: text when it is UTF-8, else bytes. */
export function plainContentType(body: Uint8Array): string {
  return utf8Text(body) !== undefined ? TEXT : BINARY;
}

/** True when serving `body` as a plain value gives back `contentType` (absent, or the same media type and charset). */
function plainSays(body: Uint8Array, contentType: string | null): boolean {
  if (contentType === null || contentType.trim() === '') return true;
  const given = contentType.toLowerCase().replace(/\s+/g, '');
  const plain = plainContentType(body).replace(/\s+/g, '');
  return given === plain || given === plain.split(';')[0];
}

/** The bytes to store for an origin answer: the body itself when plain bytes say it all, else an envelope. */
export function encodePage(status: 200 | 404, contentType: string | null, body: Uint8Array): Uint8Array {
  if (status === 200 && !startsWithMagic(body) && plainSays(body, contentType)) return body;
  const header = ascii.encode(`${status} ${(contentType ?? '').replace(/[\r\n]/g, ' ')}\n`);
  const out = new Uint8Array(ENVELOPE_MAGIC.length + header.length + body.length);
  out.set(ENVELOPE_MAGIC, 0);
  out.set(header, ENVELOPE_MAGIC.length);
  out.set(body, ENVELOPE_MAGIC.length + header.length);
  return out;
}

/** A stored value as a page: an envelope as written, anything else as a 200 of exactly those bytes. */
export function decodePage(stored: Uint8Array): Page {
  if (startsWithMagic(stored)) {
    const end = stored.indexOf(NEWLINE, ENVELOPE_MAGIC.length);
    const header = end === -1 ? '' : new TextDecoder().decode(stored.subarray(ENVELOPE_MAGIC.length, end));
    const match = /^(200|404) (.*)$/.exec(header);
    if (match !== null) {
      const body = stored.subarray(end + 1);
      const status = match[1] === '404' ? 404 : 200;
      return { status, contentType: match[2] || plainContentType(body), body };
    }
  }
  return { status: 200, contentType: plainContentType(stored), body: stored };
}
