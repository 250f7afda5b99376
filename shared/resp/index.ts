// The RESP codec's public surface: the value model, the decoder and the encoder. Re-exports only; import from here.

export {
  RespAttributed,
  RespBigNumber,
  RespDouble,
  RespErrorReply,
  RespMap,
  RespPush,
  RespSet,
  RespSimple,
  RespVerbatim,
} from './types.ts';
export type { RespValue } from './types.ts';
export { RESP_DECODER_DEFAULTS, RespDecoder } from './decoder.ts';
export type { RespDecoderOptions } from './decoder.ts';
export { encodeCommand, encodeValue, encodeValues } from './encoder.ts';
