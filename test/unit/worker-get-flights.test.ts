// The coalescing core (worker/get-flights.ts) as pure logic: who may join a call, with which deadline and signal it
// is sent, and when it is given up.
import { describe, expect, it } from 'vitest';
import { Flight, GetFlights, flightMode, joinerResult } from '../../worker/get-flights.ts';
import type { FlightResults } from '../../worker/get-flights.ts';

type Sent = { timeoutMs: number; signal: AbortSignal | undefined };

function recorder(): { sent: Sent[]; send: (timeoutMs: number, signal: AbortSignal | undefined) => Promise<FlightResults<string>> } {
  const sent: Sent[] = [];
  return { sent, send: async (timeoutMs, signal) => { sent.push({ timeoutMs, signal }); return new Map([['k', { value: 'v', outcome: 'loaded' as const }]]); } };
}

describe('Flight', () => {
  it('a lone caller is sent with its own timeout and signal, as an uncoalesced get', async () => {
    const { sent, send } = recorder();
    const flight = new Flight(send);
    const signal = new AbortController().signal;
    flight.join(300, signal);
    await flight.started;
    expect(flight.solo).toBe(true);
    expect((await flight.result).get('k')).toEqual({ value: 'v', outcome: 'loaded' });
    expect(sent).toEqual([{ timeoutMs: 300, signal }]);
  });

  it('several callers share one send under the latest deadline and an own signal; it aborts when the last leaves', async () => {
    const { sent, send } = recorder();
    const flight = new Flight(send);
    const a = flight.join(100, undefined);
    const b = flight.join(5_000, undefined);
    expect(flight.sent).toBe(false);
    await flight.result;
    expect(flight.solo).toBe(false);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.timeoutMs).toBeGreaterThan(4_000);
    a.leave();
    expect(sent[0]!.signal!.aborted).toBe(false);
    b.leave();
    expect(sent[0]!.signal!.aborted).toBe(true);
  });

  it('takes no joiner once sent, and is not sent at all when every caller left before', async () => {
    const { sent, send } = recorder();
    const flight = new Flight(send);
    flight.join(100, undefined).leave();
    await expect(flight.result).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(sent).toEqual([]);
    expect(() => flight.join(100, undefined)).toThrow('after the call was sent');
  });
});

describe('GetFlights and the helpers', () => {
  it('finds a key\'s flight per mode until it ends or a del detaches it', async () => {
    const flights = new GetFlights();
    const text = flightMode({}, true);
    const { send } = recorder();
    const flight = new Flight(send);
    flights.register('c', 'k', text, flight);
    expect(flights.find('c', 'k', text)).toBe(flight);
    expect(flights.find('c', 'k', flightMode({}, true))).toBeUndefined();
    flights.detach('c', 'k');
    expect(flights.find('c', 'k', text)).toBeUndefined();
    const next = new Flight(send);
    flights.register('c', 'k', text, next);
    next.join(100, undefined);
    await next.result;
    await Promise.resolve();
    expect(flights.find('c', 'k', text)).toBeUndefined();
  });

  it('a joiner gets its own copy of bytes, and "waited" for another caller\'s load', () => {
    const bytes = new Uint8Array([1, 2]);
    const joined = joinerResult({ value: bytes, outcome: 'loaded' });
    expect(joined).toEqual({ value: new Uint8Array([1, 2]), outcome: 'waited' });
    expect(joined.value).not.toBe(bytes);
    expect(joinerResult({ value: 'x', outcome: 'hit' })).toEqual({ value: 'x', outcome: 'hit' });
  });
});
