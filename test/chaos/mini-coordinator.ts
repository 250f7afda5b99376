// A coordinator-in-miniature: Go valkeyaside's Get (read, lock, load, compare-and-set, wait for the push or take
// over from a dead holder) with a local cache fed by TRACKED.GET, driven over one bridge session. It lets the chaos
// checker test the bridge's promises without workerd. Two deliberate differences from the library
// (worker/coordinator.ts, worker/locks.ts): each lock has its own id and marker (so a del can never be undone by an
// older load of the same client: no ABA), and a get that saw a placeholder through an uncacheable read polls
// instead of waiting for a push that cannot come. `naive` turns off the race protection (cacheable flag, poisoning)
// so tests can prove the checker has teeth.
import { RespSimple, type RespValue } from '../../shared/resp/index.ts';
import { SCRIPT_SHA, isPlaceholder, newClientId } from '../../shared/valkeyaside.ts';
import { BridgeReplyError, MiniSession, SessionDownError, type Arg } from './mini-session.ts';

export class MiniTimeoutError extends Error {
  override name = 'MiniTimeoutError';
}

/** The coordinator crashed (isolate death) while the get was in progress. */
export class CrashedError extends Error {
  override name = 'CrashedError';
}

export interface MiniOptions {
  readonly url: string;
  readonly token: string;
  /** Liveness marker ttl (ms); a holder whose marker is gone is taken over. */
  readonly clientTtlMs: number;
  /** Cache whatever TRACKED.GET returns and ignore pushes for reads in flight (the broken design of notes §7). */
  readonly naive?: boolean;
}

export type MiniLoader = (key: string) => Promise<string>;
export interface MiniGetResult { readonly value: string | null; readonly outcome: string }

interface Flight { poisoned: boolean }
const decoder = new TextDecoder();
const str = (v: RespValue | undefined): string | null => (v instanceof Uint8Array ? decoder.decode(v) : v instanceof RespSimple ? v.value : null);
const POLL_MS = 25;

export class MiniCoordinator {
  readonly session: MiniSession;
  readonly #cache = new Map<string, { value: string | null; expiresAt: number }>();
  readonly #flights = new Map<string, Set<Flight>>();
  readonly #waiters = new Map<string, Set<() => void>>();
  /** Replaced on crash: work of an older life stops at its next step. */
  #life = {};

  constructor(readonly name: string, private readonly options: MiniOptions) {
    this.session = new MiniSession(options.url, options.token, {
      onPush: (keys) => (keys === null ? this.#forgetAll() : keys.forEach((k) => this.#invalidate(k))),
      onClose: () => this.#forgetAll(),
    });
  }

  /** Entries held locally (value, or null for a cached miss), for the quiescence agreement check. */
  localEntries(): Map<string, string | null> {
    const out = new Map<string, string | null>();
    for (const [key, entry] of this.#cache) if (entry.expiresAt > performance.now()) out.set(key, entry.value);
    return out;
  }

  async get(key: string, ttlMs: number, loader: MiniLoader | null, deadlineAt: number): Promise<MiniGetResult> {
    const life = this.#life;
    let waited = false;
    let tookOver = false;
    for (;;) {
      this.#alive(life);
      if (performance.now() >= deadlineAt) throw new MiniTimeoutError(`get ${key} timed out`);
      const woken = this.#watch(key);
      try {
        const local = this.#cache.get(key);
        const fresh = local !== undefined && local.expiresAt > performance.now();
        let read = fresh ? { value: local.value, cacheable: true } : await this.#read(key, ttlMs, deadlineAt, life);
        let value = read.value;
        if (value === null && loader !== null) {
          const lock = await this.#lock(key, ttlMs, deadlineAt, life);
          if (lock.mine) return await this.#load(key, ttlMs, lock.id, loader, deadlineAt, life, tookOver);
          value = lock.holder;
          read = { value, cacheable: false };
        }
        if (value === null || !isPlaceholder(value)) {
          return { value, outcome: value === null ? 'miss' : waited ? 'waited' : fresh ? 'hit' : 'server-hit' };
        }
        const markerWoken = this.#watch(value);
        try {
          const marker = await this.#read(value, this.options.clientTtlMs, deadlineAt, life);
          if (marker.value === null) {
            await this.#command(['EVALSHA', SCRIPT_SHA.delkey, 1, key, value], deadlineAt, life);
            tookOver = true;
            continue;
          }
          waited = true;
          // A push comes only for reads the bridge registered (cacheable ones); otherwise look again shortly.
          const poll = read.cacheable && marker.cacheable ? deadlineAt : Math.min(deadlineAt, performance.now() + POLL_MS);
          await this.#pause(Promise.race([woken.fired, markerWoken.fired]), poll, life);
        } finally {
          markerWoken.release();
        }
      } catch (error) {
        if (!(error instanceof SessionDownError) || performance.now() >= deadlineAt) throw error;
      } finally {
        woken.release();
      }
    }
  }

  /** A del through this coordinator: the local copy goes first, so no later get here can see the old value. */
  async del(key: string, deadlineAt: number): Promise<void> {
    this.#invalidate(key);
    await this.#command(['DEL', key], deadlineAt, this.#life);
  }

  /** A write through the bridge (SET PX). */
  async write(key: string, value: string, ttlMs: number, deadlineAt: number): Promise<void> {
    this.#invalidate(key);
    await this.#command(['SET', key, value, 'PX', ttlMs], deadlineAt, this.#life);
  }

  /** Isolate death: the socket is cut, nothing is cleaned up (locks and markers stay until they expire). */
  crash(): void {
    this.#life = {};
    this.session.terminate();
    this.#forgetAll();
  }

  stop(): Promise<void> {
    return this.session.stop();
  }

  async #read(key: string, capMs: number, deadlineAt: number, life: object): Promise<{ value: string | null; cacheable: boolean }> {
    const flight: Flight = { poisoned: false };
    const set = this.#flights.get(key) ?? new Set<Flight>();
    set.add(flight);
    this.#flights.set(key, set);
    const sentAt = performance.now();
    try {
      const reply = await this.#command(['TRACKED.GET', key, capMs], deadlineAt, life);
      if (!Array.isArray(reply) || reply.length !== 3) throw new Error(`bad TRACKED.GET reply for ${key}`);
      const value = str(reply[0]);
      const ttlMs = Number(reply[1]);
      const cacheable = reply[2] === true && !flight.poisoned;
      if (this.options.naive) this.#cache.set(key, { value, expiresAt: sentAt + (ttlMs || capMs) });
      else if (cacheable && ttlMs > 0) this.#cache.set(key, { value, expiresAt: sentAt + ttlMs });
      return { value, cacheable: reply[2] === true };
    } finally {
      set.delete(flight);
      if (set.size === 0 && this.#flights.get(key) === set) this.#flights.delete(key);
    }
  }

  /** A fresh id and its marker for this lock, then `SET key id NX GET PX ttl`. */
  async #lock(key: string, ttlMs: number, deadlineAt: number, life: object): Promise<{ mine: true; id: string } | { mine: false; holder: string }> {
    const id = newClientId();
    await this.#command(['SET', id, '', 'PX', this.options.clientTtlMs], deadlineAt, life);
    let holder: string | null;
    try {
      holder = str(await this.#command(['SET', key, id, 'NX', 'GET', 'PX', ttlMs], deadlineAt, life));
    } catch (error) {
      this.#background(['DEL', id]);
      throw error;
    }
    if (holder === null) return { mine: true, id };
    this.#background(['DEL', id]);
    return { mine: false, holder };
  }

  async #load(key: string, ttlMs: number, id: string, loader: MiniLoader, deadlineAt: number, life: object, tookOver: boolean): Promise<MiniGetResult> {
    const refresh = setInterval(() => {
      if (life !== this.#life) clearInterval(refresh); // a crashed coordinator refreshes nothing
      else this.#background(['SET', id, '', 'PX', this.options.clientTtlMs]);
    }, Math.max(10, this.options.clientTtlMs / 3));
    const release = () => {
      clearInterval(refresh);
      if (life !== this.#life) return; // crashed: nothing is cleaned up
      this.#background(['EVALSHA', SCRIPT_SHA.delkey, 1, key, id]);
      this.#background(['DEL', id]);
    };
    let value: string;
    try {
      value = await this.#until(loader(key), deadlineAt, life);
    } catch (error) {
      release();
      throw error;
    }
    try {
      const reply = await this.#command(['EVALSHA', SCRIPT_SHA.setkey, 1, key, id, value, ttlMs], deadlineAt, life);
      const stored = str(reply) === 'OK';
      clearInterval(refresh);
      this.#background(['DEL', id]);
      return { value, outcome: stored ? (tookOver ? 'took-over' : 'loaded') : 'not-cached' };
    } catch (error) {
      release();
      if (error instanceof SessionDownError || error instanceof BridgeReplyError) return { value, outcome: 'not-cached' };
      throw error;
    }
  }

  #command(args: readonly Arg[], deadlineAt: number, life: object): Promise<RespValue> {
    this.#alive(life);
    return this.#until(this.session.command(args, deadlineAt), deadlineAt, life);
  }

  #background(args: readonly Arg[]): void {
    this.session.command(args, performance.now() + 2_000).catch(() => undefined);
  }

  /** Settles like `promise`, or rejects with MiniTimeoutError at `deadlineAt`. */
  async #until<T>(promise: Promise<T>, deadlineAt: number, life: object): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new MiniTimeoutError('deadline passed')), Math.max(0, deadlineAt - performance.now()));
    });
    promise.catch(() => undefined);
    try {
      return await Promise.race([promise, expired]);
    } finally {
      clearTimeout(timer);
      this.#alive(life);
    }
  }

  /** Waits for `event` or until `untilAt`, whichever comes first; the caller's loop checks the deadline. */
  async #pause(event: Promise<void>, untilAt: number, life: object): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([event, new Promise<void>((resolve) => { timer = setTimeout(resolve, Math.max(0, untilAt - performance.now())); })]);
    clearTimeout(timer);
    this.#alive(life);
  }

  #alive(life: object): void {
    if (life !== this.#life) throw new CrashedError(`${this.name} crashed`);
  }

  #watch(key: string): { fired: Promise<void>; release(): void } {
    let wake!: () => void;
    const fired = new Promise<void>((resolve) => { wake = resolve; });
    const set = this.#waiters.get(key) ?? new Set<() => void>();
    set.add(wake);
    this.#waiters.set(key, set);
    return {
      fired,
      release: () => {
        set.delete(wake);
        if (set.size === 0 && this.#waiters.get(key) === set) this.#waiters.delete(key);
      },
    };
  }

  #invalidate(key: string): void {
    this.#cache.delete(key);
    if (!this.options.naive) for (const flight of this.#flights.get(key) ?? []) flight.poisoned = true;
    for (const wake of this.#waiters.get(key) ?? []) wake();
  }

  #forgetAll(): void {
    this.#cache.clear();
    if (!this.options.naive) for (const set of this.#flights.values()) for (const flight of set) flight.poisoned = true;
    for (const set of this.#waiters.values()) for (const wake of set) wake();
  }
}
