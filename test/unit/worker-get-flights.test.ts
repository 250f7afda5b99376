// The coalescing core (worker/get-flights.ts) as pure logic: who may join a call, with which deadline and signal it
// is sent, when it is given up, and that a lone caller shares nothing.
import { describe, expect, it } from 'vitest';
import { Flight, GetFlights, flightMode, joinerResult } from '../../worker/get-flights.ts';
import type { FlightResults } from '../../worker/get-flights.ts';

type Sent = { timeoutMs: number; signal: AbortSignal | undefined };
type Results = FlightResults<string>;

/** A send that records its calls (`called` resolves on the first) and answers when `answer` is called. */
function recorder(): { sent: Sent[]; called: Promise<void>; send: (timeoutMs: number, signal: AbortSignal | undefined) => Promise<Results>; answer(): void } {
  const sent: Sent[] = [];
  let answer = () => {};
  let markCalled = () => {};
  const answered = new Promise<void>((resolve) => { answer = resolve; });
  const called = new Promise<void>((resolve) => { markCalled = resolve; });
  return {
    sent,
    called,
    answer: () => answer(),
    send: async (timeoutMs, signal) => {
      sent.push({ timeoutMs, signal });
      markCalled();
      await answered;
      return new Map([['k', { value: 'v', outcome: 'loaded' as const }]]);
    },
  };
}

const SLOTS = [['c', 'k']] as const;

/** What a leader does (coordinator-client.ts, get-many-client.ts): open, one microtask, send. */
async function lead(flights: GetFlights, flight: Flight<string>, slots: typeof SLOTS, mode: string, signal: AbortSignal | undefined,
  what: string): Promise<Results | undefined> {
  flights.open(flight as Flight<unknown>, slots, mode);
  await undefined;
  return flights.send(flight, slots, mode, signal, what);
}

describe('Flight and GetFlights.open / send', () => {
  it('a lone leader sends nothing shared: lead answers undefined and the leader makes its own call', async () => {
    const flights = new GetFlights();
    const mode = flightMode({}, true);
    const { sent, send } = recorder();
    const flight = new Flight(send, 300);
    const leading = lead(flights, flight, SLOTS, mode, undefined, 'get(k)');
    expect(flights.find('c', 'k', mode)).toBe(flight);
    expect(await leading).toBeUndefined();
    expect(sent).toEqual([]);
    expect(flight.sent).toBe(true);
    expect(flights.find('c', 'k', mode)).toBeUndefined();
  });

  it('callers of the same turn share one send under the latest deadline and an own signal; it aborts when the last leaves', async () => {
    const flights = new GetFlights();
    const mode = flightMode({}, true);
    const { sent, called, send, answer } = recorder();
    const flight = new Flight(send, 100);
    const leaderSignal = new AbortController();
    const leading = lead(flights, flight, SLOTS, mode, leaderSignal.signal, 'get(k)');
    const joinerSignal = new AbortController();
    const joining = flights.find<string>('c', 'k', mode)!.join(5_000, joinerSignal.signal, 'get(k)');
    await called;
    expect(sent).toHaveLength(1);
    expect(sent[0]!.timeoutMs).toBeGreaterThan(4_000);
    expect(sent[0]!.signal).not.toBe(leaderSignal.signal);
    leaderSignal.abort(new Error('leader left'));
    await expect(leading).rejects.toMatchObject({ name: 'TimeoutError', message: 'get(k) was aborted by the caller\'s signal' });
    expect(sent[0]!.signal!.aborted).toBe(false);
    joinerSignal.abort(new Error('joiner left'));
    await expect(joining).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(sent[0]!.signal!.aborted).toBe(true);
    answer();
  });

  it('every participant gets the shared answer', async () => {
    const flights = new GetFlights();
    const mode = flightMode({}, false);
    const { sent, called, send, answer } = recorder();
    const leading = lead(flights, new Flight(send, 1_000), SLOTS, mode, undefined, 'get(k)');
    const joining = flights.find<string>('c', 'k', mode)!.join(1_000, undefined, 'get(k)');
    await called;
    answer();
    expect((await leading)!.get('k')).toEqual({ value: 'v', outcome: 'loaded' });
    expect((await joining).get('k')).toEqual({ value: 'v', outcome: 'loaded' });
    expect(sent).toHaveLength(1);
  });

  it('takes no joiner once sent, and a leader whose signal aborted before it was sent gives up', async () => {
    const flights = new GetFlights();
    const mode = flightMode({}, true);
    const { sent, send } = recorder();
    const flight = new Flight(send, 100);
    const abort = new AbortController();
    const leading = lead(flights, flight, SLOTS, mode, abort.signal, 'get(k)');
    abort.abort(new Error('gone'));
    await expect(leading).rejects.toMatchObject({ name: 'TimeoutError' });
    await expect(flight.join(100, undefined, 'get(k)')).rejects.toThrow('after the call was sent');
    expect(sent).toEqual([]);
  });

  it('a del detaches the key\'s flight; a detached leader leaves a newer flight registered', async () => {
    const flights = new GetFlights();
    const text = flightMode({}, true);
    const { send } = recorder();
    const first = new Flight(send, 100);
    const leading = lead(flights, first, SLOTS, text, undefined, 'get(k)');
    expect(flights.find('c', 'k', flightMode({}, true))).toBeUndefined();
    flights.detach('c', 'k');
    expect(flights.find('c', 'k', text)).toBeUndefined();
    // Runs between the first leader's release and the next one's (microtasks run in order).
    const between = Promise.resolve().then(() => flights.find('c', 'k', text));
    const next = new Flight(send, 100);
    const nextLeading = lead(flights, next, SLOTS, text, undefined, 'get(k)');
    expect(await leading).toBeUndefined();
    expect(await between).toBe(next);
    expect(await nextLeading).toBeUndefined();
    expect(flights.find('c', 'k', text)).toBeUndefined();
  });
});

describe('the helpers', () => {
  it('a joiner gets its own copy of bytes, and "waited" for another caller\'s load', () => {
    const bytes = new Uint8Array([1, 2]);
    const joined = joinerResult({ value: bytes, outcome: 'loaded' });
    expect(joined).toEqual({ value: new Uint8Array([1, 2]), outcome: 'waited' });
    expect(joined.value).not.toBe(bytes);
    expect(joinerResult({ value: 'x', outcome: 'hit' })).toEqual({ value: 'x', outcome: 'hit' });
  });
});
