// The chaos tools themselves: the checker flags each rule's violation on hand-built histories (and nothing on a
// clean one), and the fault proxy keeps a TCP stream's bytes in order while its delay changes (a reordering there
// once corrupted Valkey's replies and looked like a bridge bug).
import { EventEmitter, once } from 'node:events';
import { createServer, connect as tcpConnect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { checkHistory, DEFAULT_CHECK_OPTIONS, violations } from '../chaos/checker.ts';
import { History, type Op, type OpKind } from '../chaos/history.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

/** A history with explicit times (ms), so each rule's boundary is exact. */
function build(ops: Array<{ kind: OpKind; client?: string; start: number; end: number | null; value?: string | null; outcome?: string; ok?: boolean; ttlMs?: number; deadline?: number; staleMs?: number }>,
  loads: Array<{ value: string; opIndex: number; computedAt: number }> = []): History {
  const history = new History();
  const made: Op[] = [];
  for (const spec of ops) {
    const op = history.begin(spec.kind, spec.kind === 'flush' ? '' : 'k', spec.client ?? (spec.kind.startsWith('outside') ? 'outside' : 'c0'),
      { value: spec.value, ttlMs: spec.ttlMs, deadline: spec.deadline, staleMs: spec.staleMs });
    Object.assign(op, { start: spec.start, end: spec.end, ok: spec.ok ?? true, outcome: spec.outcome });
    made.push(op);
  }
  for (const load of loads) history.loads.set(load.value, { key: 'k', value: load.value, opId: made[load.opIndex]!.id, computedAt: load.computedAt, ttlMs: 60_000 });
  return history;
}

describe('chaos tools: the checker', () => {
  it('accepts a history where every read saw the latest value', () => {
    const result = checkHistory(build([
      { kind: 'outside-write', start: 0, end: 1, value: 'w1', ttlMs: 60_000 },
      { kind: 'get', start: 2, end: 3, value: 'w1' },
      { kind: 'del', start: 4, end: 5 },
      { kind: 'get', start: 6, end: 7, value: null },
    ]));
    expect(violations(result)).toBe(0);
    expect(result.reads).toBe(2);
  });

  it('flags (a): a value a del through the same coordinator replaced before the get started', () => {
    const result = checkHistory(build([
      { kind: 'outside-write', start: 0, end: 1, value: 'w1', ttlMs: 60_000 },
      { kind: 'del', start: 2, end: 3 },
      { kind: 'get', start: 4, end: 5, value: 'w1' },
    ]));
    expect(result.staleAfterBridgeWrite).toBe(1);
  });

  it('allows another coordinator the push bound after a del, and flags it past the bound', () => {
    const bound = DEFAULT_CHECK_OPTIONS.crossClientBoundMs;
    const at = (getStart: number) => checkHistory(build([
      { kind: 'outside-write', start: 0, end: 1, value: 'w1', ttlMs: 60_000 },
      { kind: 'del', client: 'c1', start: 2, end: 3 },
      { kind: 'get', start: getStart, end: getStart + 1, value: 'w1' },
    ]));
    expect(at(3 + bound - 1).staleAfterBridgeWrite).toBe(0);
    expect(at(3 + bound - 1).windowReads.crossClient).toBe(1);
    expect(at(3 + bound + 1).staleAfterBridgeWrite).toBe(1);
  });

  it('flags a stale answer after any del or write was acknowledged (no push bound), and one given while still fresh', () => {
    const bound = DEFAULT_CHECK_OPTIONS.crossClientBoundMs;
    const afterDel = (outcome: string) => checkHistory(build([
      { kind: 'outside-write', start: 0, end: 1, value: 'w1', ttlMs: 1_000 },
      { kind: 'del', client: 'c1', start: 2, end: 3 },
      { kind: 'get', start: 5, end: 6, value: 'w1', outcome, staleMs: 500 },
    ]));
    // A fresh copy on another coordinator may lag by the push; a stale answer may not.
    expect(violations(afterDel('hit'))).toBe(0);
    expect(afterDel('stale').staleOutsideWindow).toBe(1);
    expect(bound).toBeGreaterThan(5);
    const at = (getStart: number) => checkHistory(build([
      { kind: 'outside-write', start: 0, end: 1, value: 'w1', ttlMs: 1_000 },
      { kind: 'get', start: getStart, end: getStart + 1, value: 'w1', outcome: 'stale', staleMs: 500 },
    ]));
    // Fresh until 1000 - 500; a stale answer may come early by the read's latency (staleEarlySlackMs), no more.
    expect(at(600).staleOutsideWindow).toBe(0);
    expect(at(500 - DEFAULT_CHECK_OPTIONS.staleEarlySlackMs - 10).staleOutsideWindow).toBe(1);
    expect(at(600).staleServed).toBe(1);
  });

  it('flags (b) only past the bound for writes made outside the bridge', () => {
    const bound = DEFAULT_CHECK_OPTIONS.outsideBoundMs;
    const at = (getStart: number) => checkHistory(build([
      { kind: 'outside-write', start: 0, end: 1, value: 'w1', ttlMs: 60_000 },
      { kind: 'outside-write', start: 2, end: 3, value: 'w2', ttlMs: 60_000 },
      { kind: 'get', start: getStart, end: getStart + 1, value: 'w1' },
    ]));
    expect(at(3 + bound - 1).staleAfterOutsideWrite).toBe(0);
    expect(at(3 + bound + 1).staleAfterOutsideWrite).toBe(1);
  });

  it('flags (c): a loaded value computed before a del and seen after it', () => {
    const result = checkHistory(build([
      { kind: 'get', start: 0, end: 10, value: 'L1', outcome: 'loaded' },
      { kind: 'del', start: 2, end: 3 },
      { kind: 'get', client: 'c0', start: 11, end: 12, value: 'L1' },
    ], [{ value: 'L1', opIndex: 0, computedAt: 1 }]));
    expect(result.loadStoredAfterDel).toBe(1);
  });

  it('flags a null served while a value was certainly in place, an expired value, an unknown value and a hung get', () => {
    const result = checkHistory(build([
      { kind: 'outside-write', start: 0, end: 1, value: 'short', ttlMs: 10 },
      { kind: 'get', start: 50, end: 51, value: 'short' },
      { kind: 'bridge-write', start: 60, end: 61, value: 'b1', ttlMs: 60_000 },
      { kind: 'get', start: 62, end: 63, value: null },
      { kind: 'get', start: 64, end: 65, value: 'nobody-wrote-this' },
      { kind: 'get', start: 66, end: null, deadline: 100 },
    ]));
    expect(result).toMatchObject({ servedExpired: 1, staleNull: 1, unknownValues: 1, hung: 1 });
  });
});

describe('chaos tools: the fault proxy', () => {
  it('keeps bytes in order while the delay changes under a stream of small writes', async () => {
    const received: Buffer[] = [];
    let receivedBytes = 0;
    const arrived = new EventEmitter();
    const sink = createServer((socket: Socket) => socket.on('data', (chunk) => {
      received.push(chunk);
      receivedBytes += chunk.length;
      arrived.emit('data');
    }));
    sink.listen(0, '127.0.0.1');
    await once(sink, 'listening');
    const proxy = await startTcpProxy('127.0.0.1', (sink.address() as { port: number }).port);
    const client = tcpConnect(proxy.port, '127.0.0.1');
    await once(client, 'connect');
    const n = 2_000;
    for (let i = 0; i < n; i++) {
      if (i % 100 === 0) proxy.setDelay('toServer', [0, 7, 1, 13, 0, 3][(i / 100) % 6]!);
      client.write(`${i},`);
      if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    proxy.setDelay('toServer', 0);
    const expected = Array.from({ length: n }, (_, i) => `${i},`).join('');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${receivedBytes} of ${expected.length} bytes arrived`)), 10_000);
      const check = () => {
        if (receivedBytes < expected.length) return;
        clearTimeout(timer);
        resolve();
      };
      arrived.on('data', check);
      check();
    });
    expect(Buffer.concat(received).toString()).toBe(expected);
    client.destroy();
    await proxy.close();
    sink.close();
  });
});
