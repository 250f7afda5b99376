// The RespDecoder's limits: the exported options type, its frozen defaults and the one function validating them.
// Every limit is finite because the decoder sits at a security boundary (untrusted clients of the bridge).

/** Limits of one decoder. All are positive safe integers; every field has a finite default. */
export interface RespDecoderOptions {
  /** Largest bulk string, blob error or verbatim payload, in bytes. Default 16 MiB. */
  readonly maxBulkBytes?: number;
  /** Most elements in one array, set, push or attribute, or entries in one map. Default 1,048,576. */
  readonly maxAggregateLength?: number;
  /** Most aggregates (attributes included) nested inside each other; a flat array is depth 1. Default 32. */
  readonly maxDepth?: number;
  /** Longest line (`+OK`, `-ERR ...`, `:1`, a `$5` header), in bytes between the type byte and CRLF. Default 65,536. */
  readonly maxLineBytes?: number;
  /**
   * Makes the array a bulk payload is copied into (payloads are copies, never views of the input). Default
   * `new Uint8Array(size)`; a Node caller that hands payloads to Node APIs can pass `Buffer.allocUnsafeSlow` and skip
   * wrapping each one again.
   */
  readonly allocate?: (size: number) => Uint8Array;
}

type Limits = Omit<RespDecoderOptions, 'allocate'>;

/** The limits a `RespDecoder` uses when an option is left out. */
export const RESP_DECODER_DEFAULTS: Readonly<Required<Limits>> = Object.freeze({
  maxBulkBytes: 16 * 1024 * 1024,
  maxAggregateLength: 1_048_576,
  maxDepth: 32,
  maxLineBytes: 65_536,
});

/** Validates `options` once, at construction, and fills in the defaults. */
export function resolveDecoderOptions(options?: RespDecoderOptions): Readonly<Required<Limits>> {
  const resolved: Record<keyof Limits, number> = { ...RESP_DECODER_DEFAULTS };
  for (const name of Object.keys(RESP_DECODER_DEFAULTS) as Array<keyof Limits>) {
    const value: unknown = options?.[name];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      const received = typeof value === 'string' ? JSON.stringify(value) : String(value);
      throw new RangeError(`RespDecoder option ${name} must be a positive safe integer, received ${received}`);
    }
    resolved[name] = value;
  }
  return Object.freeze(resolved);
}
