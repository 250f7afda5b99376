// getMany for one coordinator: Go's Get (AsideGet.run) for every key at once, with the loader deferred so the keys
// locked in the first pass are loaded in ONE call back to the caller (which joins every coordinator's first call into
// one loadMany); keys locked later (after a holder released without storing) go in further, smaller calls.
import { ValkeyasideError } from '../shared/errors.ts';
import { toWireError } from './errors.ts';
import type { GetReply, LoadManyCallback, LoadManyReply, LoaderCallback, LoaderReply } from './rpc.ts';
import type { Deadline } from './waiters.ts';

/** A locked key waiting for its batch's loader call. */
interface PendingLoad {
  readonly key: string;
  readonly resolve: (reply: LoaderReply) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Groups one getMany's loader calls. The first batch goes once every key has decided (taken the lock, parked on
 * another holder's lock, or finished), so it holds every key the first pass could lock; it is sent even when empty
 * while keys are parked, because the caller waits for every coordinator's first batch before it loads.
 */
class LoadBatches {
  readonly #callback: LoadManyCallback;
  readonly #ttlMs: number;
  readonly #deadline: Deadline;
  readonly #keys: number;
  #undecided: number;
  #finished = 0;
  #sentFirst = false;
  #queued = false;
  #batch: PendingLoad[] = [];
  /** Keys the loader left out: their get answers null, not a loader error. */
  readonly leftOut = new Set<string>();

  constructor(keys: number, callback: LoadManyCallback, ttlMs: number, deadline: Deadline) {
    this.#callback = callback;
    this.#ttlMs = ttlMs;
    this.#deadline = deadline;
    this.#keys = keys;
    this.#undecided = keys;
  }

  /** One key has decided (called once per key). */
  decided(): void {
    this.#undecided--;
    if (this.#undecided === 0 && !this.#sentFirst) this.#flush();
  }

  /** One key's get has ended (before it says it decided). */
  finished(): void {
    this.#finished++;
  }

  /** The loader callback of one key's get: joins the current batch. */
  load(key: string, decided: () => void): Promise<LoaderReply> {
    const reply = new Promise<LoaderReply>((resolve, reject) => this.#batch.push({ key, resolve, reject }));
    if (this.#sentFirst && !this.#queued) {
      this.#queued = true;
      queueMicrotask(() => this.#flush());
    }
    decided();
    return reply;
  }

  #flush(): void {
    const first = !this.#sentFirst;
    const batch = this.#batch;
    this.#sentFirst = true;
    this.#queued = false;
    this.#batch = [];
    if (batch.length === 0 && (!first || this.#finished === this.#keys)) return;
    if (this.#deadline.expired) {
      for (const pending of batch) pending.resolve({ ok: false, cancelled: true });
      return;
    }
    Promise.resolve(this.#callback(batch.map((pending) => pending.key), this.#ttlMs)).then(
      (reply) => this.#answer(batch, reply),
      (error: unknown) => { for (const pending of batch) pending.reject(error); });
  }

  #answer(batch: readonly PendingLoad[], reply: LoadManyReply): void {
    if (reply === null || typeof reply !== 'object') {
      const error = new ValkeyasideError('ERR_BAD_REQUEST', 'the loadMany wrapper answered with no reply');
      for (const pending of batch) pending.reject(error);
      return;
    }
    if (reply.ok !== true) {
      for (const pending of batch) pending.resolve({ ok: false, cancelled: reply.cancelled === true });
      return;
    }
    const values: unknown = reply.values;
    if (!Array.isArray(values) || values.length !== batch.length) {
      const error = new ValkeyasideError('ERR_BAD_REQUEST', 'the loadMany wrapper answered without one value per key');
      for (const pending of batch) pending.reject(error);
      return;
    }
    batch.forEach((pending, i) => {
      const value = values[i] as Uint8Array | null;
      if (value === null) {
        this.leftOut.add(pending.key);
        pending.resolve({ ok: false, cancelled: reply.cancelled });
        return;
      }
      pending.resolve(reply.ttlMs === undefined
        ? { ok: true, value, cancelled: reply.cancelled }
        : { ok: true, value, ttlMs: reply.ttlMs, cancelled: reply.cancelled });
    });
  }
}

/** What getMany needs of a coordinator's gets: AsideGet's `run` (kept structural so this module stands alone). */
export interface KeyGets {
  run(key: string, ttlMs: number, loader: LoaderCallback | undefined, deadline: Deadline, staleMs?: number, onWait?: () => void): Promise<GetReply>;
}

/**
 * Runs `gets.run` for every key (distinct binary strings) under one deadline. Each key keeps get's semantics: a
 * lock taken is stored by compare-and-set or released (AsideGet does both), whatever the loader or the deadline does.
 */
export async function runGetMany(gets: KeyGets, keys: readonly string[], ttlMs: number, callback: LoadManyCallback | undefined,
  deadline: Deadline): Promise<GetReply[]> {
  const batches = callback === undefined ? undefined : new LoadBatches(keys.length, callback, ttlMs, deadline);
  return Promise.all(keys.map(async (key): Promise<GetReply> => {
    let decided = false;
    const decide = () => {
      if (decided) return;
      decided = true;
      batches?.decided();
    };
    try {
      // No stale-while-revalidate window here: getMany reads and stores as plain gets do.
      const reply = await gets.run(key, ttlMs, batches && ((k: string) => batches.load(k, decide)), deadline, 0, decide);
      if (reply.kind === 'loader-error' && batches?.leftOut.has(key)) return { kind: 'value', value: null, outcome: 'miss' };
      return reply;
    } catch (error) {
      return { kind: 'error', error: toWireError(error) };
    } finally {
      batches?.finished();
      decide();
    }
  }));
}
