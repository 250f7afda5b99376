// The web-standard globals shared/ may use: present in workerd and Node alike. Declared here (not via
// lib.dom or @types/node) so that shared/ fails to type-check if it reaches for anything else.
declare class TextEncoder {
  encode(input?: string): Uint8Array;
  encodeInto(source: string, destination: Uint8Array): { read: number; written: number };
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean });
  decode(input?: Uint8Array, options?: { stream?: boolean }): string;
}
declare const crypto: { getRandomValues<T extends Uint8Array>(array: T): T };
