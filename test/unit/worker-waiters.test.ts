import { describe, expect, it } from 'vitest';
import { TimeoutError } from '../../shared/errors.ts';
import { Deadline, Waiters } from '../../worker/waiters.ts';

describe('worker waiters', () => {
  it('wakes every watch of a key, and only that key', async () => {
    const waiters = new Waiters();
    const a1 = waiters.watch('a');
    const a2 = waiters.watch('a');
    const b = waiters.watch('b');
    waiters.wake('a');
    await Promise.all([a1.fired, a2.fired]);
    expect(a1.hasFired && a2.hasFired).toBe(true);
    expect(b.hasFired).toBe(false);
    b.release();
    expect(waiters.size).toBe(0);
  });

  it('gives a watch taken after a wake a fresh signal', () => {
    const waiters = new Waiters();
    const before = waiters.watch('k');
    waiters.wake('k');
    const after = waiters.watch('k');
    expect(before.hasFired).toBe(true);
    expect(after.hasFired).toBe(false);
  });

  it('wakes every waiter when the bridge drops', async () => {
    const waiters = new Waiters();
    const watches = ['a', 'b', 'c'].map((key) => waiters.watch(key));
    waiters.wakeAll();
    await Promise.all(watches.map((w) => w.fired));
    expect(waiters.size).toBe(0);
  });

  it('frees a key once its last watch is released, and tolerates double release', () => {
    const waiters = new Waiters();
    const one = waiters.watch('k');
    const two = waiters.watch('k');
    one.release();
    one.release();
    expect(waiters.size).toBe(1);
    two.release();
    expect(waiters.size).toBe(0);
  });
});

describe('worker deadline', () => {
  it('rejects a wait with a TimeoutError when it passes', async () => {
    const deadline = new Deadline(10, 'get("k")');
    const never = new Promise<never>(() => {});
    const error = await deadline.race(never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ code: 'ERR_TIMEOUT', message: 'get("k") timed out after 10 ms' });
    expect(deadline.expired).toBe(true);
    expect(() => deadline.check()).toThrow(TimeoutError);
  });

  it('lets a settled promise win and expires at once on cancel', async () => {
    const deadline = new Deadline(60_000, 'get("k")');
    await expect(deadline.race(Promise.resolve(7))).resolves.toBe(7);
    deadline.cancel('was aborted by the caller');
    await expect(deadline.race(Promise.resolve(8))).rejects.toThrow('get("k") was aborted by the caller');
    expect(deadline.error?.message).toBe('get("k") was aborted by the caller');
    deadline.dispose();
  });
});
