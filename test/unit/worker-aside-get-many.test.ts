// getMany's batching in a coordinator (worker/aside-get-many.ts) as pure logic, over scripted per-key gets: the
// first loader call waits until every key has locked, parked or finished; later locks go in later calls; keys the
// loader left out answer null. (The real per-key algorithm runs in test/integration/worker-get-many.test.ts.)
import { describe, expect, it } from 'vitest';
import { runGetMany, type KeyGets } from '../../worker/aside-get-many.ts';
import type { GetReply, LoadManyReply, LoaderCallback } from '../../worker/rpc.ts';
import { Deadline } from '../../worker/waiters.ts';

const bytes = (text: string) => new TextEncoder().encode(text);

/** Per key: 'lock' calls the loader at once; 'park' waits until `unpark` then locks; 'hit' answers a value. */
function scripted(plan: Record<string, 'lock' | 'park' | 'hit'>): { gets: KeyGets; unpark(): void } {
  let unpark!: () => void;
  const parked = new Promise<void>((resolve) => { unpark = resolve; });
  const load = async (key: string, loader: LoaderCallback | undefined): Promise<GetReply> => {
    const reply = await loader!(key, 1_000);
    return reply.ok ? { kind: 'value', value: reply.value, outcome: 'loaded' } : { kind: 'loader-error' };
  };
  return {
    unpark,
    gets: {
      async run(key, _ttlMs, loader, _deadline, _staleMs, onWait) {
        if (plan[key] === 'hit') return { kind: 'value', value: bytes(`hit:${key}`), outcome: 'hit' };
        if (plan[key] === 'park') {
          onWait?.();
          await parked;
        }
        return load(key, loader);
      },
    },
  };
}

describe('runGetMany', () => {
  it('loads every key locked in the first pass in one call, and a key locked after a wait in a later one', async () => {
    const { gets, unpark } = scripted({ a: 'lock', b: 'park', c: 'hit', d: 'lock' });
    const calls: string[][] = [];
    const deadline = new Deadline(5_000, 'getMany');
    const replies = runGetMany(gets, ['a', 'b', 'c', 'd'], 1_000, async (keys): Promise<LoadManyReply> => {
      calls.push(keys);
      if (calls.length === 1) unpark();
      return { ok: true, values: keys.map((key) => bytes(`v:${key}`)), cancelled: false };
    }, deadline);
    const answers = await replies;
    deadline.dispose();
    expect(calls).toEqual([['a', 'd'], ['b']]);
    expect(answers.map((r) => (r.kind === 'value' ? [new TextDecoder().decode(r.value!), r.outcome] : r.kind))).toEqual([
      ['v:a', 'loaded'], ['v:b', 'loaded'], ['hit:c', 'hit'], ['v:d', 'loaded'],
    ]);
  });

  it('answers null (outcome miss) for a key the loader left out, and a loader error for the rest when it failed', async () => {
    const { gets } = scripted({ a: 'lock', b: 'lock' });
    const deadline = new Deadline(5_000, 'getMany');
    const leftOut = await runGetMany(gets, ['a', 'b'], 1_000, async () => ({ ok: true, values: [bytes('v:a'), null], cancelled: false }), deadline);
    expect(leftOut[1]).toEqual({ kind: 'value', value: null, outcome: 'miss' });
    const failed = await runGetMany(gets, ['a', 'b'], 1_000, async () => ({ ok: false, cancelled: false }), deadline);
    deadline.dispose();
    expect(failed).toEqual([{ kind: 'loader-error' }, { kind: 'loader-error' }]);
  });

  it('calls nothing when every key finished without a lock, and refuses a reply without one value per key', async () => {
    const { gets } = scripted({ a: 'hit', b: 'lock' });
    const deadline = new Deadline(5_000, 'getMany');
    let called = 0;
    await runGetMany(gets, ['a'], 1_000, async () => { called++; return { ok: true, values: [], cancelled: false }; }, deadline);
    expect(called).toBe(0);
    const bad = await runGetMany(gets, ['b'], 1_000, async () => ({ ok: true, values: [], cancelled: false }), deadline);
    expect(bad).toMatchObject([{ kind: 'error', error: { code: 'ERR_BAD_REQUEST' } }]);
    deadline.dispose();
  });
});
