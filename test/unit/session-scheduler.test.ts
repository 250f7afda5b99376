// SessionScheduler is pure logic: fake sessions record their turns, so the order (round-robin, fresh sessions first)
// and the caps (in flight over all sessions and per token) can be checked exactly. Passes run on setImmediate.
import { describe, expect, it } from 'vitest';
import { SessionScheduler, TURN_QUANTUM, type Runnable, type TokenBudget, type TurnResult } from '../../bridge/session-scheduler.ts';

const nextPass = () => new Promise<void>((resolve) => setImmediate(resolve));

class FakeSession implements Runnable {
  readonly tokenBudget: TokenBudget;
  work: number;
  readonly #name: string;
  readonly #scheduler: SessionScheduler;
  readonly #turns: string[];

  constructor(name: string, work: number, scheduler: SessionScheduler, turns: string[], token = { maxInflight: 1e9, maxOwedBytes: 1e9 }) {
    this.#name = name;
    this.work = work;
    this.#scheduler = scheduler;
    this.#turns = turns;
    this.tokenBudget = scheduler.budgetFor(token);
  }

  runTurn(max: number): TurnResult {
    let n = 0;
    while (n < max && this.work > 0 && this.#scheduler.hasRoom(this.tokenBudget)) {
      this.#scheduler.dispatched(this.tokenBudget);
      this.work--;
      n++;
    }
    this.#turns.push(`${this.#name}${n}`);
    return this.work === 0 ? 'done' : 'more';
  }
}

describe('SessionScheduler', () => {
  it('runs a session at once when nobody waits, so an idle bridge adds no delay', () => {
    const scheduler = new SessionScheduler(1_000);
    const turns: string[] = [];
    scheduler.wake(new FakeSession('a', 3, scheduler, turns));
    expect(turns).toEqual(['a3']);
    expect(scheduler.inflight).toBe(3);
  });

  it('gives busy sessions turns of one quantum each, in a ring, and serves a newly woken session ahead of the ring', async () => {
    const scheduler = new SessionScheduler(1_000_000);
    const turns: string[] = [];
    const a = new FakeSession('a', 10 * TURN_QUANTUM, scheduler, turns);
    const b = new FakeSession('b', 10 * TURN_QUANTUM, scheduler, turns);
    scheduler.wake(a);
    scheduler.wake(b);
    expect(turns).toEqual([`a${TURN_QUANTUM}`]);
    await nextPass();
    expect(turns.slice(0, 3)).toEqual([`a${TURN_QUANTUM}`, `b${TURN_QUANTUM}`, `a${TURN_QUANTUM}`]);
    const bystander = new FakeSession('c', 1, scheduler, turns);
    scheduler.wake(bystander);
    turns.length = 0;
    await nextPass();
    expect(turns[0]).toBe('c1');
    while (a.work + b.work > 0) await nextPass();
    expect(turns.filter((t) => t !== 'c1').every((t) => t === `a${TURN_QUANTUM}` || t === `b${TURN_QUANTUM}`)).toBe(true);
  });

  it('holds every session at maxInflightTotal and resumes them as commands are answered', async () => {
    const scheduler = new SessionScheduler(40);
    const turns: string[] = [];
    const a = new FakeSession('a', 100, scheduler, turns);
    const b = new FakeSession('b', 100, scheduler, turns);
    scheduler.wake(a);
    scheduler.wake(b);
    for (let i = 0; i < 5; i++) await nextPass();
    expect(scheduler.inflight).toBe(40);
    const held = turns.length;
    await nextPass();
    expect(turns.length).toBe(held);
    scheduler.answered(a.tokenBudget, 20);
    await nextPass();
    expect(scheduler.inflight).toBe(40);
    expect(200 - a.work - b.work).toBe(60);
  });

  it('parks the sessions of a token at its budget while another token\'s session goes on', async () => {
    const scheduler = new SessionScheduler(1_000_000);
    const turns: string[] = [];
    const tenantA = { maxInflight: 20, maxOwedBytes: 1e9 };
    const a1 = new FakeSession('a', 100, scheduler, turns, tenantA);
    const a2 = new FakeSession('A', 100, scheduler, turns, tenantA);
    const b = new FakeSession('b', 100, scheduler, turns);
    for (const s of [a1, a2, b]) scheduler.wake(s);
    while (b.work > 0) await nextPass();
    expect(a1.tokenBudget.inflight).toBe(20);
    expect(a1.work + a2.work).toBe(180);
    scheduler.answered(a1.tokenBudget, 20);
    await nextPass();
    expect(a1.work + a2.work).toBe(160);
    // Owed bytes too: over the token's maxOwedBytes its sessions wait until some drain.
    scheduler.answered(a1.tokenBudget, 20);
    scheduler.owed(a1.tokenBudget, 2e9);
    await nextPass();
    expect(a1.work + a2.work).toBe(160);
    scheduler.owed(a1.tokenBudget, -2e9);
    await nextPass();
    expect(a1.work + a2.work).toBe(140);
  });

  it('skips a session removed while it waited', async () => {
    const scheduler = new SessionScheduler(1_000_000);
    const turns: string[] = [];
    const a = new FakeSession('a', 100, scheduler, turns);
    scheduler.wake(a);
    scheduler.remove(a);
    turns.length = 0;
    await nextPass();
    expect(turns).toEqual([]);
  });
});
