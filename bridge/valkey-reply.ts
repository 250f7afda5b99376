// Converts iovalkey's buffer-mode replies (Buffer, number, null, arrays, ReplyError) into RespValue, and maps
// failures to the error replies of docs/protocol.md. iovalkey speaks RESP2, so a status (`+OK`) and a bulk string
// both arrive as a Buffer: the caller says which one the command returns.
import { ReplyError } from 'iovalkey';
import { RespErrorReply, RespSimple, type RespValue } from '../shared/resp/types.ts';
import type { ErrorKind } from './metrics.ts';
import { ValkeyUnavailableError } from './tracked-pair.ts';

export function toRespValue(reply: unknown, statusReply: boolean): RespValue {
  if (reply === null || reply === undefined) return null;
  if (Buffer.isBuffer(reply)) return statusReply ? new RespSimple(reply.toString('latin1')) : reply;
  if (typeof reply === 'number' || typeof reply === 'bigint') return reply;
  if (typeof reply === 'string') return statusReply ? new RespSimple(reply) : Buffer.from(reply, 'utf8');
  if (Array.isArray(reply)) return reply.map((item) => toRespValue(item, false));
  if (reply instanceof Error) return new RespErrorReply(oneLine(reply.message));
  return new RespErrorReply('ERR bridge: unexpected reply type from valkey');
}

/** An error reply for a failed command, and its metric kind. `applied`: the command may have reached Valkey. */
export function failureReply(err: unknown, commandTimeoutMs: number): { reply: RespErrorReply; kind: ErrorKind; applied: boolean } {
  if (err instanceof ReplyError) return { reply: new RespErrorReply(oneLine((err as Error).message)), kind: 'valkey', applied: true };
  if (err instanceof ValkeyUnavailableError) return { reply: new RespErrorReply('TRYAGAIN valkey is unavailable'), kind: 'unavailable', applied: false };
  const message = err instanceof Error ? err.message : String(err);
  if (message.startsWith("Stream isn't writeable")) {
    return { reply: new RespErrorReply('TRYAGAIN valkey is unavailable'), kind: 'unavailable', applied: false };
  }
  if (message === 'Command timed out') {
    return { reply: new RespErrorReply(`TIMEOUT valkey did not reply within ${commandTimeoutMs} ms`), kind: 'timeout', applied: true };
  }
  if ((err as Error | undefined)?.name === 'MaxRetriesPerRequestError' || message === 'Connection is closed.') {
    // Lost with the connection: it may or may not have run. The new epoch flushes every session anyway.
    return { reply: new RespErrorReply('TRYAGAIN valkey is unavailable'), kind: 'unavailable', applied: true };
  }
  return { reply: new RespErrorReply('ERR bridge: internal error'), kind: 'internal', applied: true };
}

/** True when a failed command may still have reached Valkey (so a write must be treated as applied). */
export function mayHaveRun(err: unknown): boolean {
  return failureReply(err, 0).applied;
}

/** Error replies are one line on the wire. */
function oneLine(message: string): string {
  return message.replace(/[\r\n]+/g, ' ');
}
