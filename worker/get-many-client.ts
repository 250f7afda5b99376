// getMany on the caller's side: distinct keys, each joining this isolate's unsent call for it when there is one
// (get-flights.ts), the rest grouped by coordinator (one getManyValues RPC each, in parallel). The keys the
// coordinators lock in their first pass go to ONE loadMany call: a barrier waits for every coordinator's first callback.
import { TimeoutError, ValkeyasideError } from '../shared/errors.ts';
import type { CoordinatorClient, GetOptions, GetResult, KeyForms, ValueForm } from './coordinator-client.ts';
import { rpcFailure, untilDeadline } from './rpc-deadline.ts';
import { fromWireError } from './errors.ts';
import { Flight, flightMode, joinerResult } from './get-flights.ts';
import type { FlightResults } from './get-flights.ts';
import { positiveMs } from './options.ts';
import type { GetManyReply, LoadManyCallback, LoadManyReply } from './rpc.ts';

/** What a loadMany gets besides the keys. */
export interface LoadManyContext<K = string> {
  /** The keys to load (as the caller passed them): exactly the ones this call locked. */
  readonly keys: readonly K[];
  /** The getMany's ttl (ms): the locks' and, unless `setTtl` is called, the stored values'. */
  readonly ttlMs: number;
  /** Aborts when the getMany's deadline passes or the caller's signal fires. */
  readonly signal: AbortSignal;
  /** Stores every value this call returns with this ttl (ms) instead. */
  setTtl(ttlMs: number): void;
}

/** A loadMany's answer: a value per key it found. Keys left out are not cached and come back null. */
export type LoadManyResult<T, K> = ReadonlyMap<K, T> | Readonly<Record<string, T>>;

/** Loads the keys of a getMany that missed, in one call. It runs in the calling Worker; what it throws, getMany throws. */
export type LoadMany<T = string, K = string> = (keys: K[], ctx: LoadManyContext<K>) => LoadManyResult<T, K> | Promise<LoadManyResult<T, K>>;

/** @throws TypeError when `keys` is not an array, or for an invalid key (as `forms` says). */
export function keyList<K, F>(keys: readonly K[], forms: (key: K) => F): F[] {
  if (!Array.isArray(keys)) throw new TypeError(`keys must be an array; got ${keys === null ? 'null' : typeof keys}`);
  return keys.map(forms);
}

/** One getMany call's caller-side state, shared by its loadMany wrapper and its deadline handling. */
interface ManyState<T> {
  readonly abort: AbortController;
  cancelled?: { message: string; cause: unknown };
  loaderError?: { error: unknown };
  /** What loadMany returned, by binary key: handed back as it was. */
  readonly loaded: Map<string, T>;
}

/** The value `result` holds for `key`, or undefined when the loader left it out. */
function lookUp<T, K>(result: LoadManyResult<T, K>, key: K): T | undefined {
  if (result instanceof Map) return result.get(key);
  if (result === null || typeof result !== 'object') throw new TypeError(`loadMany must return a Map or a plain object; got ${result === null ? 'null' : typeof result}`);
  if (typeof key !== 'string') throw new TypeError('loadMany must return a Map keyed by the keys it was given when they are bytes');
  return Object.hasOwn(result, key) ? (result as Record<string, T>)[key] : undefined;
}

/**
 * Holds every coordinator's first loader callback until each coordinator has called it or answered, then runs the
 * loader once for all of their keys and hands each coordinator its share. Later callbacks load at once.
 */
class FirstLoad {
  #waiting: number;
  readonly #reported: boolean[];
  readonly #batch: Array<{ binaries: string[]; resolve(reply: LoadManyReply): void; reject(error: unknown): void }> = [];
  readonly #load: (binaries: string[]) => Promise<LoadManyReply>;

  constructor(coordinators: number, load: (binaries: string[]) => Promise<LoadManyReply>) {
    this.#waiting = coordinators;
    this.#reported = new Array<boolean>(coordinators).fill(false);
    this.#load = load;
  }

  call(index: number, binaries: string[]): Promise<LoadManyReply> {
    if (this.#reported[index]) return this.#load(binaries);
    this.#reported[index] = true;
    const reply = new Promise<LoadManyReply>((resolve, reject) => this.#batch.push({ binaries, resolve, reject }));
    this.#arrive();
    return reply;
  }

  /** The coordinator answered: it will not call back for a first batch. */
  answered(index: number): void {
    if (this.#reported[index]) return;
    this.#reported[index] = true;
    this.#arrive();
  }

  #arrive(): void {
    if (--this.#waiting > 0) return;
    const batch = this.#batch;
    const all = batch.flatMap((entry) => entry.binaries);
    if (all.length === 0) {
      for (const entry of batch) entry.resolve({ ok: true, values: [], cancelled: false });
      return;
    }
    this.#load(all).then((reply) => {
      let offset = 0;
      for (const entry of batch) {
        const values = reply.ok ? reply.values.slice(offset, offset + entry.binaries.length) : [];
        offset += entry.binaries.length;
        entry.resolve(reply.ok ? { ...reply, values } : reply);
      }
    }, (error: unknown) => { for (const entry of batch) entry.reject(error); });
  }
}

/** `CacheAside.getManyWithOutcome` in any view. */
export async function getMany<T, K>(client: CoordinatorClient, list: readonly KeyForms<K>[], ttlMs: number, loadMany: LoadMany<T, K> | undefined,
  form: ValueForm<T, K>, options: GetOptions = {}): Promise<Map<K, GetResult<T>>> {
  positiveMs('ttlMs', ttlMs);
  if (loadMany !== undefined && typeof loadMany !== 'function') throw new TypeError(`loadMany must be a function; got ${typeof loadMany}`);
  const timeoutMs = client.timeoutFor(ttlMs, options);
  const what = `getMany(${list.length} keys)`;
  const signal = options.signal;
  if (signal?.aborted) throw new TimeoutError(`${what} was aborted before it started`, { cause: signal.reason });
  const distinct = new Map<string, KeyForms<K>>();
  for (const keys of list) if (!distinct.has(keys.binary)) distinct.set(keys.binary, keys);
  const mode = flightMode(form, loadMany !== undefined);
  const joined = new Map<Flight<T>, string[]>();
  const own: KeyForms<K>[] = [];
  for (const [binary, keys] of distinct) {
    const flight = client.options.coalesce ? client.flights.find<T>(client.nameFor(binary), binary, mode) : undefined;
    if (flight !== undefined) joined.set(flight, [...(joined.get(flight) ?? []), binary]);
    else own.push(keys);
  }
  const waits: Array<Promise<Array<[string, GetResult<T>]>>> = [...joined].map(async ([flight, binaries]) => {
    const results = await flight.join(timeoutMs, signal, what);
    return binaries.map((binary): [string, GetResult<T>] => [binary, joinerResult(results.get(binary)!)]);
  });
  if (own.length > 0) {
    const send = (callTimeoutMs: number, callSignal: AbortSignal | undefined) =>
      loadKeys(client, own, ttlMs, callTimeoutMs, loadMany, form, callSignal, what);
    const ownResults = async (): Promise<FlightResults<T>> => {
      if (!client.options.coalesce) return send(timeoutMs, signal);
      const slots = own.map((keys) => [client.nameFor(keys.binary), keys.binary] as const);
      const flight = new Flight<T>(send, timeoutMs);
      client.flights.open(flight as Flight<unknown>, slots, mode);
      // One microtask: the gets and getManys of these keys that start in this turn join; then it takes no more.
      await undefined;
      return client.flights.send(flight, slots, mode, signal, what) ?? send(timeoutMs, signal);
    };
    waits.push(ownResults().then((results) => own.map((keys): [string, GetResult<T>] => [keys.binary, results.get(keys.binary)!])));
  }
  const settled = await Promise.allSettled(waits);
  const failed = settled.find((outcome) => outcome.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  const byBinary = new Map(settled.flatMap((outcome) => (outcome as PromiseFulfilledResult<Array<[string, GetResult<T>]>>).value));
  const results = new Map<K, GetResult<T>>();
  for (const keys of list) results.set(keys.key, byBinary.get(keys.binary)!);
  return results;
}

/** The call of one getMany flight: one getManyValues RPC per coordinator, one loadMany for their first batches. */
async function loadKeys<T, K>(client: CoordinatorClient, keys: readonly KeyForms<K>[], ttlMs: number, timeoutMs: number,
  loadMany: LoadMany<T, K> | undefined, form: ValueForm<T, K>, signal: AbortSignal | undefined, what: string): Promise<FlightResults<T>> {
  const byBinary = new Map(keys.map((forms) => [forms.binary, forms]));
  const groups = new Map<string, KeyForms<K>[]>();
  for (const forms of keys) {
    const name = client.nameFor(forms.binary);
    groups.set(name, [...(groups.get(name) ?? []), forms]);
  }
  const state: ManyState<T> = { abort: new AbortController(), loaded: new Map() };
  const load = async (binaries: string[]): Promise<LoadManyReply> => {
    if (state.cancelled !== undefined || loadMany === undefined) return { ok: false, cancelled: true };
    const wanted = binaries.map((binary) => byBinary.get(binary)!);
    let ttlOverrideMs: number | undefined;
    try {
      const loadKeysList = wanted.map((forms) => forms.key);
      const result = await loadMany(loadKeysList, {
        keys: loadKeysList, ttlMs, signal: state.abort.signal, setTtl(ms: number) { ttlOverrideMs = positiveMs('setTtl(ttlMs)', ms); },
      });
      const values = wanted.map((forms) => {
        const value = lookUp(result, forms.key);
        if (value === undefined) return null;
        const bytes = form.toBytes(value, forms.key);
        state.loaded.set(forms.binary, value);
        return bytes;
      });
      const cancelled = state.cancelled !== undefined;
      return ttlOverrideMs === undefined ? { ok: true, values, cancelled } : { ok: true, values, ttlMs: ttlOverrideMs, cancelled };
    } catch (error) {
      state.loaderError ??= { error };
      return { ok: false, cancelled: state.cancelled !== undefined };
    }
  };
  const first = new FirstLoad(groups.size, load);
  const requestId = crypto.randomUUID();
  const calls = [...groups].map(([name, group], index) => {
    const stub = client.stub(name);
    const callback: LoadManyCallback | undefined = loadMany && ((binaries) => first.call(index, binaries));
    const reply = (stub.getManyValues({ keys: group.map((forms) => forms.binary), ttlMs, timeoutMs, requestId }, callback) as Promise<GetManyReply>)
      .catch((error: unknown) => { throw rpcFailure(error, name); });
    const answered = () => first.answered(index);
    reply.then(answered, answered);
    return { stub, group, reply };
  });
  const settled = await untilDeadline(Promise.allSettled(calls.map((call) => call.reply)), what, timeoutMs, signal, (message, cause) => {
    state.cancelled = { message, cause };
    state.abort.abort(new TimeoutError(message, { cause }));
    return () => {
      for (const call of calls) call.stub.cancelGet(requestId).catch(() => {});
      return new TimeoutError(message, { cause });
    };
  }, true);
  if (state.cancelled !== undefined) throw new TimeoutError(state.cancelled.message, { cause: state.cancelled.cause });
  const results = new Map<string, GetResult<T>>();
  let error: unknown;
  let loaderFailed = false;
  calls.forEach((call, index) => {
    const outcome = settled[index]!;
    if (outcome.status === 'rejected' || outcome.value.kind === 'error') {
      error ??= outcome.status === 'rejected' ? outcome.reason : fromWireError((outcome.value as { error: Parameters<typeof fromWireError>[0] }).error);
      return;
    }
    outcome.value.replies.forEach((reply, i) => {
      const forms = call.group[i]!;
      if (reply.kind === 'loader-error') loaderFailed = true;
      else if (reply.kind === 'error') error ??= fromWireError(reply.error);
      else if (reply.value === null) results.set(forms.binary, { value: null, outcome: reply.outcome });
      else {
        const own = (reply.outcome === 'loaded' || reply.outcome === 'took-over' || reply.outcome === 'not-cached') && state.loaded.has(forms.binary);
        results.set(forms.binary, { value: own ? state.loaded.get(forms.binary)! : form.fromBytes(reply.value, forms.key), outcome: reply.outcome });
      }
    });
  });
  if (loaderFailed) throw state.loaderError !== undefined ? state.loaderError.error : new ValkeyasideError('ERR_INTERNAL', `${what}: the loader failed but its error was lost`);
  if (error !== undefined) throw error;
  return results;
}
