// The cache is down and the caller chose `onUnavailable: 'load'`: the loader runs alone, without lock or cache,
// under the get's deadline, at most `maxBypassLoads` at once in this isolate.
import { TimeoutError } from '../shared/errors.ts';
import type { ConnectionError } from '../shared/errors.ts';
import type { GetResult, KeyForms, ValueForm } from './coordinator-client.ts';
import { loaderContext } from './loader-call.ts';
import type { Loader } from './loader-call.ts';
import { untilDeadline } from './rpc-deadline.ts';

/** Loads running now in this isolate while bypassing the cache (`onUnavailable: 'load'`). */
let bypassLoads = 0;

/**
 * Runs the loader alone for a get the cache could not serve (`unavailable`). At most `maxBypassLoads` loaders run at
 * once in this isolate (counted until each settles, even past its get); past that the get throws `unavailable`.
 */
export async function bypassLoad<T, K>(keys: KeyForms<K>, ttlMs: number, timeoutMs: number, loader: Loader<T, K>, form: ValueForm<T, K>,
  signal: AbortSignal | undefined, unavailable: ConnectionError, maxBypassLoads: number): Promise<GetResult<T>> {
  if (bypassLoads >= maxBypassLoads) throw unavailable;
  bypassLoads++;
  const abort = new AbortController();
  const loading = Promise.resolve().then(() => loader(keys.key, loaderContext(keys.key, ttlMs, abort.signal, () => {})));
  const settled = () => { bypassLoads--; };
  loading.then(settled, settled);
  const value = await untilDeadline(loading, `get(${keys.display})`, timeoutMs, signal, (message, cause) => {
    const error = new TimeoutError(message, cause === undefined ? undefined : { cause });
    abort.abort(error);
    return () => error;
  });
  form.toBytes(value, keys.key);
  return { value, outcome: 'bypass' };
}
