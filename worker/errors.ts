// The Worker library's own error class (typed values that fail to (de)serialize) and the plain-object form errors
// take across the Durable Object RPC boundary, where class identity and custom fields would otherwise be lost.
import { ConnectionError, ProtocolError, ReplyError, TimeoutError, ValkeyasideError } from '../shared/errors.ts';

/** The message of a thrown value, whatever was thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A typed value could not be serialized (code `ERR_SERIALIZE`, nothing cached) or a cached value could not be
 * deserialized (code `ERR_DESERIALIZE`: the codec failed, or the string API read bytes that are not valid UTF-8).
 * `key` names the key; `cause` holds the codec's own error.
 */
export class SerializationError extends ValkeyasideError {
  override name = 'SerializationError';
  /** The key as the caller gave it. */
  readonly key: string | Uint8Array;
  constructor(code: 'ERR_SERIALIZE' | 'ERR_DESERIALIZE', key: string | Uint8Array, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.key = key;
  }
}

/**
 * An error as it crosses RPC: a plain object. A TimeoutError's late value does not cross: the loader ran in the
 * caller, which still holds it.
 */
export interface WireError {
  readonly name: string;
  readonly code: string;
  readonly message: string;
  /** ProtocolError only. */
  readonly closeCode?: number;
  /** ConnectionError only: the Valkey reply behind it (`TRYAGAIN`). */
  readonly cause?: WireError;
}

export function toWireError(error: unknown): WireError {
  if (error instanceof TimeoutError) return { name: error.name, code: error.code, message: error.message };
  if (error instanceof ProtocolError) return { name: error.name, code: error.code, message: error.message, closeCode: error.closeCode };
  if (error instanceof ConnectionError) {
    const cause = error.cause instanceof ValkeyasideError ? { cause: toWireError(error.cause) } : {};
    return { name: error.name, code: error.code, message: error.message, ...cause };
  }
  if (error instanceof ValkeyasideError) return { name: error.name, code: error.code, message: error.message };
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { name: 'ValkeyasideError', code: 'ERR_INTERNAL', message: `coordinator failed: ${message}` };
}

/** Rebuilds the error class a WireError came from, so callers can branch with `instanceof` and `code`. */
export function fromWireError(wire: WireError): ValkeyasideError {
  switch (wire.name) {
    case 'TimeoutError':
      return new TimeoutError(wire.message);
    case 'ConnectionError':
      return new ConnectionError(wire.message, {
        code: wire.code === 'ERR_UNAVAILABLE' ? 'ERR_UNAVAILABLE' : 'ERR_CONNECTION',
        ...(wire.cause ? { cause: fromWireError(wire.cause) } : {}),
      });
    case 'ReplyError':
      return new ReplyError(wire.message);
    case 'ProtocolError':
      return new ProtocolError(wire.code, wire.message, wire.closeCode);
    default:
      return new ValkeyasideError(wire.code, wire.message);
  }
}
