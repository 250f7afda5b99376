// Coalescing in the caller's isolate: concurrent gets (and getMany keys) of one key, through one coordinator, view and
// loader-or-not, share one coordinator call and one loader run. A call takes joiners only until it is sent, so each
// caller's share reaches the coordinator after that caller started (docs/guarantees.md, "Coalescing").
import { TimeoutError } from '../shared/errors.ts';
import { timeoutError, untilDeadline } from './rpc-deadline.ts';
import type { GetOutcome } from './rpc.ts';

/** One key's answer (CacheAside's GetResult; declared here so this module stays free of the Workers runtime types). */
export interface GetResult<T> {
  readonly value: T | null;
  readonly outcome: GetOutcome;
}

/** One caller's interest in a shared call: until its own deadline. */
interface Participant {
  readonly deadlineAt: number;
}

/** A coordinator call's answer: a result per key (binary string) it covers. */
export type FlightResults<T> = ReadonlyMap<string, GetResult<T>>;

/** Sends the shared call, with the deadline and signal that cover every participant. */
export type SendFlight<T> = (timeoutMs: number, signal: AbortSignal | undefined) => Promise<FlightResults<T>>;

/**
 * A leading caller's call that others may join until it is sent, on the next microtask: so its participants are the
 * callers of one turn of the isolate, i.e. of one request (workerd cancels what a finished request left pending, so
 * a call one request sent must not be what another waits for). Nothing is allocated for joiners until one joins:
 * when none did, the leader makes its own call, under its own deadline and signal, exactly as an uncoalesced get
 * (the hit path stays as cheap). With joiners the call runs until the latest participant's deadline, and it is
 * given up (the RPC cancelled, the loader's signal aborted) once every participant has left.
 */
export class Flight<T> {
  readonly #send: SendFlight<T>;
  readonly #leader: Participant;
  /** The participants of a shared call, leader first; made on the first join. */
  #participants: Set<Participant> | undefined;
  /** Resolves when the shared call is sent (joiners wait for it); made on the first join. */
  #sentSignal: { promise: Promise<void>; resolve(): void } | undefined;
  #abort: AbortController | undefined;
  #result: Promise<FlightResults<T>> | undefined;
  #sent = false;

  /** The leader's flight, with the leader's deadline from now. */
  constructor(send: SendFlight<T>, leaderTimeoutMs: number) {
    this.#send = send;
    this.#leader = { deadlineAt: Date.now() + leaderTimeoutMs };
  }

  /** True once the leader closed it: then it takes no more participants. */
  get sent(): boolean {
    return this.#sent;
  }

  /**
   * The leader, one microtask after it started: closes the flight to joiners. Undefined when nobody joined (then the
   * leader makes its call itself); else the shared call is sent and this is the leader's wait for it.
   */
  close(signal: AbortSignal | undefined, what: string): Promise<FlightResults<T>> | undefined {
    this.#sent = true;
    const participants = this.#participants;
    if (participants === undefined) return undefined;
    let latest = 0;
    for (const participant of participants) latest = Math.max(latest, participant.deadlineAt);
    this.#abort = new AbortController();
    this.#result = this.#send(Math.max(1, latest - Date.now()), this.#abort.signal);
    this.#result.catch(() => {});
    this.#sentSignal!.resolve();
    return this.#wait(this.#leader, signal, what);
  }

  /** Joins (only before it is sent) with this caller's deadline from now and signal; leaving gives up only this caller. */
  async join(timeoutMs: number, signal: AbortSignal | undefined, what: string): Promise<FlightResults<T>> {
    if (this.#sent) throw new Error('Flight.join after the call was sent');
    const participant: Participant = { deadlineAt: Date.now() + timeoutMs };
    if (this.#participants === undefined) {
      this.#participants = new Set([this.#leader]);
      let resolve!: () => void;
      this.#sentSignal = { promise: new Promise<void>((r) => { resolve = r; }), resolve };
    }
    this.#participants.add(participant);
    await this.#sentSignal!.promise;
    return this.#wait(participant, signal, what);
  }

  /** One participant's wait for the shared call, under its own deadline and signal. */
  #wait(participant: Participant, signal: AbortSignal | undefined, what: string): Promise<FlightResults<T>> {
    const leave = () => {
      if (!this.#participants!.delete(participant)) return;
      if (this.#participants!.size === 0) this.#abort!.abort(new TimeoutError('every caller gave up'));
    };
    if (signal?.aborted) {
      leave();
      return Promise.reject(new TimeoutError(`${what} was aborted by the caller's signal`, { cause: signal.reason }));
    }
    return untilDeadline(this.#result!, what, Math.max(1, participant.deadlineAt - Date.now()), signal, (message, cause) => {
      leave();
      return timeoutError(message, cause);
    });
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

  /** The key's flight in this mode that still takes joiners, if any. */
  find<T>(coordinator: string, binary: string, mode: string): Flight<T> | undefined {
    return this.#slots.get(slotKey(coordinator, binary))?.get(mode) as Flight<T> | undefined;
  }

  /** Makes `flight` the one later callers of the key in this mode find, until `#release` (when it is sent) or a del. */
  #register(coordinator: string, binary: string, mode: string, flight: Flight<unknown>): void {
    const key = slotKey(coordinator, binary);
    let modes = this.#slots.get(key);
    if (modes === undefined) {
      modes = new Map();
      this.#slots.set(key, modes);
    }
    modes.set(mode, flight);
  }

  /** The flight was sent: later callers of the key start their own (unless a newer flight took its place). */
  #release(coordinator: string, binary: string, mode: string, flight: Flight<unknown>): void {
    const key = slotKey(coordinator, binary);
    const modes = this.#slots.get(key);
    if (modes?.get(mode) !== flight) return;
    modes.delete(mode);
    if (modes.size === 0) this.#slots.delete(key);
  }

  /**
   * Opens `flight` to joiners for its keys (`slots`: coordinator and binary key) in `mode`: the gets and getManys of
   * those keys that start in this turn join it, until its leader awaits one microtask and calls `send`.
   */
  open(flight: Flight<unknown>, slots: ReadonlyArray<readonly [coordinator: string, binary: string]>, mode: string): void {
    for (const [coordinator, binary] of slots) this.#register(coordinator, binary, mode, flight);
  }

  /**
   * The leader, one microtask after `open`: the flight takes no more joiners. Undefined when nobody joined: the leader
   * then makes its own call, under its own deadline and signal (nothing was allocated for sharing); else the shared
   * call is sent and this is the leader's wait for it.
   * @throws TimeoutError when the leader's signal aborted meanwhile.
   */
  send<T>(flight: Flight<T>, slots: ReadonlyArray<readonly [coordinator: string, binary: string]>, mode: string,
    signal: AbortSignal | undefined, what: string): Promise<FlightResults<T>> | undefined {
    for (const [coordinator, binary] of slots) this.#release(coordinator, binary, mode, flight as Flight<unknown>);
    const shared = flight.close(signal, what);
    if (shared !== undefined) return shared;
    if (signal?.aborted) throw new TimeoutError(`${what} was aborted by the caller's signal`, { cause: signal.reason });
    return undefined;
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
