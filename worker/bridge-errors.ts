// The errors a bridge socket fails commands with: a dropped command (its socket closed before the reply), which the
// coordinator may start over on a fresh socket, and error replies, where `TRYAGAIN` means the cache is down.
import { ConnectionError, ReplyError, type ValkeyasideError } from '../shared/errors.ts';
import type { RespErrorReply } from '../shared/resp/index.ts';

const dropped = new WeakSet<object>();

/** True for the error of a command that was sent but whose socket closed before the reply: safe to retry a read. */
export function isDropped(error: unknown): boolean {
  return typeof error === 'object' && error !== null && dropped.has(error);
}

/** A ConnectionError that `isDropped` recognises: the work it interrupted should start over on a fresh socket. */
export function droppedError(message: string): ConnectionError {
  const error = new ConnectionError(message);
  markDropped(error);
  return error;
}

/** Marks `error` as the failure of commands whose socket dropped (see `isDropped`). */
export function markDropped(error: ConnectionError): void {
  dropped.add(error);
}

/** An error reply as thrown: `TRYAGAIN` (the bridge cannot reach Valkey) is the cache being down, not a command error. */
export function replyFailure(reply: RespErrorReply): ValkeyasideError {
  const error = new ReplyError(reply.message);
  if (error.prefix !== 'TRYAGAIN') return error;
  return new ConnectionError(`the bridge cannot reach Valkey now (${reply.message})`, { cause: error, code: 'ERR_UNAVAILABLE' });
}
