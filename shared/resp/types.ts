// RESP2/RESP3 values as plain JS: the common types are natives (bulk = Uint8Array, integer = number or bigint,
// null, boolean, array), the rare ones are small classes so that encode(decode(x)) gives back the same bytes.

/** A RESP3 simple string (`+OK`). Bulk strings decode to `Uint8Array` instead. */
export class RespSimple {
  constructor(readonly value: string) {}
}

/** An error reply (`-ERR ...` or the RESP3 blob error `!<len>`). A value, not a thrown error. */
export class RespErrorReply {
  constructor(readonly message: string, readonly blob = false) {}
}

/** RESP3 double (`,1.5`). Integers decode to `number` (or `bigint` outside the safe range) instead. */
export class RespDouble {
  constructor(readonly value: number) {}
}

/** RESP3 big number (`(123...`). */
export class RespBigNumber {
  constructor(readonly value: bigint) {}
}

/** RESP3 verbatim string (`=<len>\r\ntxt:...`): `format` is the three-letter type. */
export class RespVerbatim {
  constructor(readonly format: string, readonly value: Uint8Array) {}
}

/** RESP3 map (`%`), kept as ordered entries because keys may be any value. */
export class RespMap {
  constructor(readonly entries: Array<[RespValue, RespValue]>) {}
}

/** RESP3 set (`~`). */
export class RespSet {
  constructor(readonly items: RespValue[]) {}
}

/** RESP3 push (`>`): out-of-band data such as `invalidate`. */
export class RespPush {
  constructor(readonly items: RespValue[]) {}
}

/** A value preceded by RESP3 attributes (`|`). */
export class RespAttributed {
  constructor(readonly attributes: Array<[RespValue, RespValue]>, readonly value: RespValue) {}
}

export type RespValue =
  | null
  | boolean
  | number
  | bigint
  | Uint8Array
  | RespValue[]
  | RespSimple
  | RespErrorReply
  | RespDouble
  | RespBigNumber
  | RespVerbatim
  | RespMap
  | RespSet
  | RespPush
  | RespAttributed;
