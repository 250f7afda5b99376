// Coalescing in the caller's isolate: concurrent gets (and getMany keys) of one key, through one coordinator, view and
// loader-or-not, share one coordinator call and one loader run. A call takes joiners only until it is sent, so each
// caller's share reaches the coordinator after that caller started (docs/guarantees.md, "Coalescing").
import { TimeoutError } from '../shared/errors.ts';
import type { GetOutcome } from './rpc.ts';

/** One key's answer (CacheAside's GetResult; declared here so this module stays free of the Workers runtime types). */
export interface GetResult<T> {
  readonly value: T | null;
  readonly outcome: GetOutcome;
}

/** One caller's interest in a flight. */
interface Participant {
  readonly timeoutMs: number;
  readonly deadlineAt: number;
  readonly signal: AbortSignal | undefined;
}

/** A coordinator call's answer: a result per key (binary string) it covers. */
export type FlightResults<T> = ReadonlyMap<string, GetResult<T>>;

/** Sends the call, with the deadline and signal that cover every participant. */
export type SendFlight<T> = (timeoutMs: number, signal: AbortSignal | undefined) => Promise<FlightResults<T>>;

/**
 * One coordinator call shared by its participants, sent on the next microtask: so its participants are the callers
 * of one turn of the isolate, i.e. of one request (workerd cancels what a finished request left pending, so a call
 * one request sent must not be what another waits for). With one participant it runs under that caller's own
 * deadline and signal, exactly as an uncoalesced get; with several, until the last one's deadline, and it is given
 * up (the RPC cancelled, the loader's signal aborted) once every participant has left.
 */
export class Flight<T> {
  readonly #participants = new Set<Participant>();
  /** Made only for a call with several participants (a lone caller's own signal serves): the hit path stays cheap. */
  #abort: AbortController | undefined;
  #sent = false;
  #solo = false;
  /** Resolves when the call is sent; then `solo` says whether it has one participant. */
  readonly started: Promise<void>;
  readonly result: Promise<FlightResults<T>>;

  constructor(send: SendFlight<T>) {
    this.started = Promise.resolve().then(() => { this.#sent = true; });
    this.result = this.started.then(() => {
      const participants = [...this.#participants];
      if (participants.length === 0) throw new TimeoutError('every caller gave up before the call was sent');
      if (participants.length === 1) {
        this.#solo = true;
        // Sent on the next microtask, the call keeps the caller's own timeout (and its message names it).
        const [only] = participants as [Participant];
        if (only.signal?.aborted) throw new TimeoutError('the caller\'s signal aborted before the call was sent', { cause: only.signal.reason });
        return send(only.timeoutMs, only.signal);
      }
      this.#abort = new AbortController();
      return send(Math.max(1, Math.max(...participants.map((p) => p.deadlineAt)) - Date.now()), this.#abort.signal);
    });
    this.result.catch(() => {});
  }

  /** True once sent: then it takes no more participants. */
  get sent(): boolean {
    return this.#sent;
  }

  /** True once sent with a single participant (then the call honours that caller's deadline and signal itself). */
  get solo(): boolean {
    return this.#solo;
  }

  /** Joins (only before it is sent), with this caller's deadline from now; `leave` gives this participant up. */
  join(timeoutMs: number, signal: AbortSignal | undefined): { leave(): void } {
    if (this.#sent) throw new Error('Flight.join after the call was sent');
    const participant: Participant = { timeoutMs, deadlineAt: Date.now() + timeoutMs, signal };
    this.#participants.add(participant);
    return {
      leave: () => {
        if (!this.#participants.delete(participant)) return;
        if (this.#sent && this.#participants.size === 0) this.#abort?.abort(new TimeoutError('every caller gave up'));
      },
    };
  }
}

/** What a caller that did not run the loader sees: its own copy of bytes, and `waited` for another caller's load. */
export function joinerResult<T>(result: GetResult<T>): GetResult<T> {
  const value = result.value instanceof Uint8Array ? (result.value.slice() as T) : result.value;
  const outcome = result.outcome === 'loaded' || result.outcome === 'took-over' ? 'waited' : result.outcome;
  return value === result.value && outcome === result.outcome ? result : { value, outcome };
}

/** Each view's two modes (with a loader, without): gets of one key through different views never share a call. */
const formModes = new WeakMap<object, readonly [string, string]>();
let lastFormId = 0;

/** The mode gets must share to be coalesced: the view (its ValueForm) and whether they have a loader. */
export function flightMode(form: object, withLoader: boolean): string {
  let modes = formModes.get(form);
  if (modes === undefined) {
    const id = ++lastFormId;
    modes = [`${id}:L`, `${id}:-`];
    formModes.set(form, modes);
  }
  return withLoader ? modes[0] : modes[1];
}

/** A flight's key: the coordinator and the key (binary string). Modes (view, loader or not) are kept apart inside. */
function slotKey(coordinator: string, binary: string): string {
  return `${coordinator}\u0000${binary}`;
}

/** The flights of one Durable Object namespace in this isolate, by key and mode. */
export class GetFlights {
  readonly #slots = new Map<string, Map<string, Flight<unknown>>>();

  /** The newest flight for the key in this mode (sent or not), while it runs. */
  find<T>(coordinator: string, binary: string, mode: string): Flight<T> | undefined {
    return this.#slots.get(slotKey(coordinator, binary))?.get(mode) as Flight<T> | undefined;
  }

  /** Makes `flight` the one later callers of the key in this mode find, until it ends or a del detaches it. */
  register<T>(coordinator: string, binary: string, mode: string, flight: Flight<T>): void {
    const key = slotKey(coordinator, binary);
    let modes = this.#slots.get(key);
    if (modes === undefined) {
      modes = new Map();
      this.#slots.set(key, modes);
    }
    modes.set(mode, flight as Flight<unknown>);
    const cleanUp = () => {
      const current = this.#slots.get(key);
      if (current?.get(mode) !== flight) return;
      current.delete(mode);
      if (current.size === 0) this.#slots.delete(key);
    };
    flight.result.then(cleanUp, cleanUp);
  }

  /** A del of the key in this isolate: later gets start their own flight, whatever is in flight now. */
  detach(coordinator: string, binary: string): void {
    this.#slots.delete(slotKey(coordinator, binary));
  }
}

/** Flights per namespace: coalescing never crosses two bindings, which are two caches. */
const flightsByNamespace = new WeakMap<object, GetFlights>();

export function flightsFor(namespace: object): GetFlights {
  let flights = flightsByNamespace.get(namespace);
  if (flights === undefined) {
    flights = new GetFlights();
    flightsByNamespace.set(namespace, flights);
  }
  return flights;
}
