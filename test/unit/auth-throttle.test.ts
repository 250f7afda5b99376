// AuthThrottle is pure logic on explicit timestamps: windows per address, their end, and the bound on addresses kept.
import { describe, expect, it } from 'vitest';
import { AuthThrottle } from '../../bridge/auth-throttle.ts';

describe('AuthThrottle', () => {
  it('refuses an address after maxFailures within the window, and tells how long until it ends', () => {
    const throttle = new AuthThrottle(3, 1_000);
    for (let i = 0; i < 3; i++) {
      expect(throttle.retryAfterMs('10.0.0.1', 100)).toBe(0);
      throttle.failed('10.0.0.1', 100);
    }
    expect(throttle.retryAfterMs('10.0.0.1', 400)).toBe(700);
    expect(throttle.retryAfterMs('10.0.0.2', 400)).toBe(0);
  });

  it('forgets an address once its window has ended', () => {
    const throttle = new AuthThrottle(1, 1_000);
    throttle.failed('10.0.0.1', 0);
    expect(throttle.retryAfterMs('10.0.0.1', 999)).toBe(1);
    expect(throttle.retryAfterMs('10.0.0.1', 1_000)).toBe(0);
    throttle.failed('10.0.0.1', 1_000);
    expect(throttle.retryAfterMs('10.0.0.1', 1_500)).toBe(500);
  });

  it('is off with maxFailures 0 and for an unknown address', () => {
    const off = new AuthThrottle(0, 1_000);
    for (let i = 0; i < 100; i++) off.failed('10.0.0.1', 0);
    expect(off.retryAfterMs('10.0.0.1', 0)).toBe(0);
    const on = new AuthThrottle(1, 1_000);
    on.failed(undefined, 0);
    expect(on.retryAfterMs(undefined, 0)).toBe(0);
  });

  it('keeps at most 10000 addresses, forgetting the oldest window first', () => {
    const throttle = new AuthThrottle(1, 60_000);
    throttle.failed('first', 0);
    for (let i = 0; i < 10_000; i++) throttle.failed(`a${i}`, 1);
    expect(throttle.retryAfterMs('first', 2)).toBe(0);
    expect(throttle.retryAfterMs('a0', 2)).toBeGreaterThan(0);
    expect(throttle.retryAfterMs('a9999', 2)).toBeGreaterThan(0);
  });
});
