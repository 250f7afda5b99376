// The error classes both sides throw. One base class with a stable `code`; subclasses only where callers branch.

/** Base class of every error this library throws. `code` is stable across versions; match on it, not on text. */
export class ValkeyasideError extends Error {
  override name = 'ValkeyasideError';
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * Malformed or over-limit RESP, or a broken wire-protocol rule. `closeCode` is the WebSocket close code a peer
 * should send when it sees this error (1002 protocol error, 1009 too big).
 */
export class ProtocolError extends ValkeyasideError {
  override name = 'ProtocolError';
  readonly closeCode: number;
  constructor(code: string, message: string, closeCode = 1002) {
    super(code, message);
    this.closeCode = closeCode;
  }
}

/** An error reply from Valkey or from the bridge (`-ERR ...`). `prefix` is its first word, e.g. `WRONGTYPE`. */
export class ReplyError extends ValkeyasideError {
  override name = 'ReplyError';
  readonly prefix: string;
  constructor(message: string) {
    super('ERR_REPLY', message);
    const space = message.indexOf(' ');
    this.prefix = space === -1 ? message : message.slice(0, space);
  }
}

/** A deadline passed (caller's timeout, AbortSignal, or the get's ttl). `value` holds a loaded value that came too late. */
export class TimeoutError extends ValkeyasideError {
  override name = 'TimeoutError';
  readonly value: unknown;
  constructor(message: string, options?: { cause?: unknown; value?: unknown }) {
    super('ERR_TIMEOUT', message, options);
    this.value = options?.value;
  }
}

/**
 * The cache cannot serve right now: the connection to the bridge closed or could not be opened (code
 * `ERR_CONNECTION`), or the bridge cannot reach Valkey (code `ERR_UNAVAILABLE`, `cause` = the bridge's `TRYAGAIN`
 * ReplyError). Catch this one class for "cache down"; ReplyError is kept for real command errors.
 */
export class ConnectionError extends ValkeyasideError {
  override name = 'ConnectionError';
  constructor(message: string, options?: { cause?: unknown; code?: 'ERR_CONNECTION' | 'ERR_UNAVAILABLE' }) {
    super(options?.code ?? 'ERR_CONNECTION', message, options);
  }
}
