// The one deadline helper of the caller's side (every RPC a Worker makes to a coordinator, and every wait for one),
// and how an RPC that failed as a whole becomes a typed error.
import { ConnectionError, TimeoutError, ValkeyasideError } from '../shared/errors.ts';
import { errorMessage } from './errors.ts';

/** An RPC that failed as a whole (not an error reply): config errors from the coordinator's constructor stay as they are. */
export function rpcFailure(error: unknown, name: string): unknown {
  if (error instanceof TypeError || error instanceof RangeError || error instanceof ValkeyasideError) return error;
  const message = errorMessage(error);
  if (/^(TypeError|RangeError): /.test(message)) return error;
  return new ConnectionError(`coordinator ${JSON.stringify(name)} failed: ${message}`, { cause: error });
}

/**
 * Settles as `work` does, unless `timeoutMs` passes or `signal` aborts first: then `giveUp(message, cause)` runs at
 * once and the result rejects with the error its returned function makes. With `lingerOneTurn` that rejection waits
 * one macrotask, so work settling right then (a loader returning as the deadline passes) still wins.
 */
export function untilDeadline<T>(work: Promise<T>, what: string, timeoutMs: number, signal: AbortSignal | undefined,
  giveUp: (message: string, cause: unknown) => () => unknown, lingerOneTurn = false): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let gaveUp = false;
    const finish = (settle: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      settle();
    };
    const stop = (message: string, cause?: unknown) => {
      if (gaveUp) return;
      gaveUp = true;
      const failure = giveUp(message, cause);
      const fail = () => finish(() => reject(failure()));
      if (lingerOneTurn) setTimeout(fail, 0);
      else fail();
    };
    const onAbort = () => stop(`${what} was aborted by the caller's signal`, signal?.reason);
    const timer = setTimeout(() => stop(`${what} timed out after ${timeoutMs} ms`), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then((value) => finish(() => resolve(value)), (error: unknown) => finish(() => reject(error)));
  });
}

/** The `giveUp` of a wait that only rejects: a TimeoutError with the message (and the signal's reason as `cause`). */
export function timeoutError(message: string, cause: unknown): () => TimeoutError {
  return () => new TimeoutError(message, cause === undefined ? undefined : { cause });
}
