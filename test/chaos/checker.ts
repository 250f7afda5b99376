// The stale-read checker: given a History, finds every get that returned a value some completed operation had
// definitely replaced before the get started (rules a, b, c of docs/guarantees.md), values served past their
// expiry, gets that never settled, and values nobody wrote. "Definitely" uses only interval order: X replaced v when
// X started after v was established and X ended before the get started (plus the bound X's kind allows).
import type { History, Load, Op } from './history.ts';

export interface CheckOptions {
  /** Rule (b): how long after an outside write/del (or a server restart) is acknowledged a value may still be served. */
  readonly outsideBoundMs: number;
  /**
   * A del or write through coordinator A, seen by a get on coordinator B: the bridge sends B's push before it acks
   * A, but B may not have processed it yet. 0 would demand delivery before the ack (it is only sent before).
   */
  readonly crossClientBoundMs: number;
  /** A get must settle by its deadline plus this. */
  readonly hungGraceMs: number;
  /** Clock granularity allowance for expiry (workerd's clock is ms-granular). */
  readonly expirySlackMs: number;
  /**
   * A `stale` answer may come this much before its ttl ended: the coordinator counts the PTTL from when it sent the
   * read, so it judges a value stale early by the read's latency (the safe side; never late).
   */
  readonly staleEarlySlackMs: number;
}

export const DEFAULT_CHECK_OPTIONS: CheckOptions = Object.freeze({
  outsideBoundMs: 2_000,
  crossClientBoundMs: 1_000,
  hungGraceMs: 2_000,
  expirySlackMs: 5,
  staleEarlySlackMs: 250,
});

export interface CheckResult {
  /** Gets that completed with an answer (the reads checked). */
  readonly reads: number;
  /** (a) a value replaced by a del/write through a coordinator before the get started. */
  readonly staleAfterBridgeWrite: number;
  /** (b) a value served longer than outsideBoundMs after an outside write/del/restart was acknowledged. */
  readonly staleAfterOutsideWrite: number;
  /** (c) a loader result computed before a del, visible after that del. */
  readonly loadStoredAfterDel: number;
  /** A null served although a value was definitely in place. */
  readonly staleNull: number;
  /** A value served after it had expired on the server. */
  readonly servedExpired: number;
  /** A value no write or load produced (a placeholder leaking, corruption). */
  readonly unknownValues: number;
  /** Gets not settled by deadline + hungGraceMs. */
  readonly hung: number;
  /**
   * Stale-while-revalidate: a `stale` answer whose value a del or write (any coordinator, or outside) had replaced
   * before the get started (no bound: the window ends at once everywhere), or that was still fresh.
   */
  readonly staleOutsideWindow: number;
  /** Informational: gets answered `stale`. */
  readonly staleServed: number;
  /** Informational: reads inside an allowed window (served after an ack, within its bound), and the longest lag. */
  readonly windowReads: { readonly outside: number; readonly crossClient: number; readonly maxOutsideLagMs: number; readonly maxCrossLagMs: number };
  /** The first few violations, described. */
  readonly examples: readonly string[];
}

/** Total of every rule that must be 0. */
export function violations(result: CheckResult): number {
  return result.staleAfterBridgeWrite + result.staleAfterOutsideWrite + result.loadStoredAfterDel + result.staleNull +
    result.servedExpired + result.unknownValues + result.hung + result.staleOutsideWindow;
}

const OUTSIDE = new Set(['outside-write', 'outside-del', 'flush']);
const THROUGH = new Set(['del', 'bridge-write']);
const VALUE_WRITES = new Set(['bridge-write', 'outside-write']);
const ABSENT_MAKERS = new Set(['del', 'outside-del', 'flush']);

/** Replacers sorted by start, with suffix minima of `end` so "some X started after T and ended before t" is O(log n). */
class ReplacerIndex {
  readonly #starts: number[];
  /** Index of the op with the smallest end among ops[i..]. */
  readonly #argMinEnd: number[];
  readonly #ops: Op[];
  constructor(ops: Op[]) {
    this.#ops = [...ops].sort((a, b) => a.start - b.start);
    this.#starts = this.#ops.map((op) => op.start);
    this.#argMinEnd = new Array<number>(this.#ops.length + 1).fill(-1);
    for (let i = this.#ops.length - 1; i >= 0; i--) {
      const next = this.#argMinEnd[i + 1]!;
      this.#argMinEnd[i] = next >= 0 && this.#ops[next]!.end! <= this.#ops[i]!.end! ? next : i;
    }
  }
  /** The earliest end among replacers that started strictly after `after` (Infinity when none), and that op. */
  earliestEndAfter(after: number): { end: number; op: Op | undefined } {
    let lo = 0;
    let hi = this.#starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#starts[mid]! > after) hi = mid;
      else lo = mid + 1;
    }
    const at = this.#argMinEnd[lo]!;
    return at < 0 ? { end: Infinity, op: undefined } : { end: this.#ops[at]!.end!, op: this.#ops[at] };
  }
}

type Established = { start: number; end: number; client: string; outside: boolean; ttlMs: number; what: string };

/** Value events sorted by end, with prefix maxima of `start`: "the latest-started event that ended before t". */
class EstablishedIndex {
  readonly #ends: number[];
  readonly #argMaxStart: number[];
  readonly #events: Established[];
  constructor(events: Established[]) {
    this.#events = [...events].sort((a, b) => a.end - b.end);
    this.#ends = this.#events.map((e) => e.end);
    this.#argMaxStart = [];
    this.#events.forEach((e, i) => {
      const previous = i > 0 ? this.#argMaxStart[i - 1]! : -1;
      this.#argMaxStart.push(previous >= 0 && this.#events[previous]!.start >= e.start ? previous : i);
    });
  }
  latestEndedBefore(before: number): Established | undefined {
    let lo = 0;
    let hi = this.#ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#ends[mid]! < before) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? undefined : this.#events[this.#argMaxStart[lo - 1]!];
  }
}

interface KeyIndex {
  outside: ReplacerIndex;
  through: ReplacerIndex;
  throughByClient: Map<string, ReplacerIndex>;
  /** Value writes with a known end, and stored loads: outside ones, all through coordinators, and per coordinator. */
  establishedOutside: EstablishedIndex;
  establishedThrough: EstablishedIndex;
  establishedByClient: Map<string, EstablishedIndex>;
  /** Absent-makers sorted by start, with prefix maxima of end (unknown end = Infinity). */
  absentStarts: number[];
  absentMaxEnd: number[];
}

export function checkHistory(history: History, options: CheckOptions = DEFAULT_CHECK_OPTIONS): CheckResult {
  const byId = new Map(history.ops.map((op) => [op.id, op]));
  const writesByValue = new Map<string, Op>();
  for (const op of history.ops) if (VALUE_WRITES.has(op.kind) && typeof op.value === 'string') writesByValue.set(op.value, op);
  const flushes = history.ops.filter((op) => op.kind === 'flush');
  const keys = new Map<string, Op[]>();
  for (const op of history.ops) {
    if (op.kind === 'flush') continue;
    const list = keys.get(op.key) ?? [];
    list.push(op);
    keys.set(op.key, list);
  }
  /** A load is known stored when its own get ended saying so; then it was stored by that get's end. */
  const storedBy = (load: Load): number | null => {
    const getter = byId.get(load.opId);
    return getter?.ok && getter.end !== null && (getter.outcome === 'loaded' || getter.outcome === 'took-over') ? getter.end : null;
  };

  /** Who computed a value and how its get ended: what a (c) or (b) example needs to be traced. */
  const describeLoad = (load: Load): string => {
    const getter = byId.get(load.opId);
    const ended = getter === undefined || getter.end === null ? 'never ended' : `ended ${getter.end.toFixed(1)} ${getter.ok ? getter.outcome : getter.error}`;
    return `computed ${load.computedAt.toFixed(1)} by get#${load.opId} ${getter?.client ?? '?'} (${ended})`;
  };

  const indexes = new Map<string, KeyIndex>();
  for (const [key, ops] of keys) {
    const done = (op: Op) => op.ok && op.end !== null;
    const through = ops.filter((op) => THROUGH.has(op.kind) && done(op));
    const byClient = new Map<string, Op[]>();
    for (const op of through) byClient.set(op.client, [...(byClient.get(op.client) ?? []), op]);
    const established: Established[] = [];
    for (const op of ops) {
      if (VALUE_WRITES.has(op.kind) && done(op)) {
        established.push({ start: op.start, end: op.end!, client: op.client, outside: op.kind === 'outside-write', ttlMs: op.ttlMs ?? Infinity, what: `${op.kind}#${op.id}` });
      }
    }
    for (const load of history.loads.values()) {
      if (load.key !== key) continue;
      const end = storedBy(load);
      const getter = byId.get(load.opId);
      if (end !== null && getter) established.push({ start: load.computedAt, end, client: getter.client, outside: false, ttlMs: load.ttlMs, what: `load#${load.opId}` });
    }
    const absent = [...ops.filter((op) => ABSENT_MAKERS.has(op.kind)), ...flushes].sort((a, b) => a.start - b.start);
    const absentMaxEnd: number[] = [];
    let max = -Infinity;
    for (const op of absent) {
      max = Math.max(max, op.end ?? Infinity);
      absentMaxEnd.push(max);
    }
    indexes.set(key, {
      outside: new ReplacerIndex([...ops.filter((op) => OUTSIDE.has(op.kind) && done(op)), ...flushes.filter(done)]),
      through: new ReplacerIndex(through),
      throughByClient: new Map([...byClient].map(([client, list]) => [client, new ReplacerIndex(list)])),
      establishedOutside: new EstablishedIndex(established.filter((e) => e.outside)),
      establishedThrough: new EstablishedIndex(established.filter((e) => !e.outside)),
      establishedByClient: new Map([...new Set(established.filter((e) => !e.outside).map((e) => e.client))].map((client) =>
        [client, new EstablishedIndex(established.filter((e) => !e.outside && e.client === client))])),
      absentStarts: absent.map((op) => op.start),
      absentMaxEnd,
    });
  }

  let staleWindow = 0, staleServed = 0;
  /** Any del or write acknowledged before the stale get started, after the value existed: the window had ended. */
  const windowEnded = (index: KeyIndex, get: Op, after: number): Op | undefined => {
    for (const found of [index.outside.earliestEndAfter(after), index.through.earliestEndAfter(after)]) {
      if (found.end < get.start) return found.op;
    }
    return undefined;
  };
  /** A stale answer of a value stored at `storedFrom` (or later) with PX `pxMs`: it must have been past its ttl. */
  const checkStale = (index: KeyIndex, get: Op, existedFrom: number, storedFrom: number, pxMs: number | undefined): void => {
    staleServed++;
    const ended = windowEnded(index, get, existedFrom);
    if (ended !== undefined) {
      staleWindow++;
      note(describe(get, 'stale after its window ended', ended));
    } else if (pxMs !== undefined && get.end! < storedFrom + pxMs - (get.staleMs ?? 0) - options.staleEarlySlackMs) {
      staleWindow++;
      note(`get#${get.id} ${get.client} ${get.key} -> ${JSON.stringify(get.value)} answered stale while still fresh`);
    }
  };
  let reads = 0, staleA = 0, staleB = 0, staleC = 0, staleNull = 0, expired = 0, unknown = 0, hung = 0;
  let outsideWindow = 0, crossWindow = 0, maxOutsideLag = 0, maxCrossLag = 0;
  const examples: string[] = [];
  const note = (text: string) => { if (examples.length < 12) examples.push(text); };

  /** Is there a replacer that started after `after` and was acknowledged (plus its bound) before `get` started? */
  const replacedBefore = (index: KeyIndex, get: Op, after: number, tally = true): { kind: 'outside' | 'through'; op: Op } | null => {
    const outside = index.outside.earliestEndAfter(after);
    const mine = index.throughByClient.get(get.client)?.earliestEndAfter(after) ?? { end: Infinity, op: undefined };
    const any = index.through.earliestEndAfter(after);
    if (outside.end < get.start) {
      const lag = get.start - outside.end;
      if (lag > options.outsideBoundMs) return { kind: 'outside', op: outside.op! };
      if (tally) {
        outsideWindow++;
        maxOutsideLag = Math.max(maxOutsideLag, lag);
      }
    }
    if (mine.end < get.start) return { kind: 'through', op: mine.op! };
    if (any.end < get.start) {
      const lag = get.start - any.end;
      if (lag > options.crossClientBoundMs) return { kind: 'through', op: any.op! };
      if (tally) {
        crossWindow++;
        maxCrossLag = Math.max(maxCrossLag, lag);
      }
    }
    return null;
  };
  const describe = (get: Op, why: string, by: Op) =>
    `get#${get.id} ${get.client} ${get.key} -> ${JSON.stringify(get.value)} (${get.outcome}) at ${get.start.toFixed(1)}: ${why} by ${by.kind}#${by.id} ${by.client} [${by.start.toFixed(1)}, ${by.end?.toFixed(1)}]`;

  for (const get of history.ops) {
    if (get.kind !== 'get') continue;
    if (get.deadline !== undefined && (get.end === null || get.end > get.deadline + options.hungGraceMs)) {
      hung++;
      note(`get#${get.id} ${get.client} ${get.key} hung (deadline ${get.deadline.toFixed(1)}, end ${get.end?.toFixed(1) ?? 'never'})`);
    }
    if (!get.ok || get.end === null) continue;
    reads++;
    const index = indexes.get(get.key)!;
    const value = get.value ?? null;
    if (value === null) {
      // The latest-started value known in place well before the get; was anything able to remove it since?
      let best: Established | undefined;
      for (const e of [
        index.establishedOutside.latestEndedBefore(get.start - options.outsideBoundMs),
        index.establishedThrough.latestEndedBefore(get.start - options.crossClientBoundMs),
        index.establishedByClient.get(get.client)?.latestEndedBefore(get.start),
      ]) if (e !== undefined && (best === undefined || e.start > best.start)) best = e;
      if (best === undefined || get.end >= best.start + best.ttlMs) continue;
      let lo = 0;
      let hi = index.absentStarts.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (index.absentStarts[mid]! < get.end) lo = mid + 1;
        else hi = mid;
      }
      const removable = lo > 0 && index.absentMaxEnd[lo - 1]! > best.start;
      if (!removable) {
        staleNull++;
        note(`get#${get.id} ${get.client} ${get.key} -> null at ${get.start.toFixed(1)} although ${best.what} was in place`);
      }
      continue;
    }
    const load = history.loads.get(value);
    if (load !== undefined) {
      if (load.key !== get.key) { unknown++; note(`get#${get.id} returned ${value} of another key`); continue; }
      if (load.opId === get.id) continue; // its own loader's result: always allowed
      if (get.outcome === 'stale') checkStale(index, get, load.computedAt, load.computedAt, load.ttlMs);
      const storedAt = storedBy(load);
      const late = storedAt === null ? null : replacedBefore(index, get, storedAt, false);
      if (late) {
        if (late.kind === 'outside') staleB++; else staleA++;
        note(describe(get, late.kind === 'outside' ? '(b) replaced outside' : '(a) replaced', late.op));
        continue;
      }
      const early = replacedBefore(index, get, load.computedAt);
      if (early) {
        if (early.kind === 'outside') staleB++;
        else if (early.op.kind === 'del') staleC++;
        else staleA++;
        note(`${describe(get, early.op.kind === 'del' ? '(c) computed before' : '(b) replaced outside', early.op)}; ${describeLoad(load)}`);
        continue;
      }
      if (storedAt !== null && get.start > storedAt + load.ttlMs + options.expirySlackMs) {
        expired++;
        note(`get#${get.id} ${get.key} -> ${value} served after its ttl`);
      }
      continue;
    }
    const write = writesByValue.get(value);
    if (write === undefined) {
      unknown++;
      note(`get#${get.id} ${get.client} ${get.key} -> ${JSON.stringify(value)}: nobody wrote or loaded it`);
      continue;
    }
    if (write.end === null) continue;
    if (get.outcome === 'stale') checkStale(index, get, write.end, write.start, write.ttlMs);
    const replaced = replacedBefore(index, get, write.end);
    if (replaced) {
      if (replaced.kind === 'outside') staleB++; else staleA++;
      note(describe(get, replaced.kind === 'outside' ? '(b) replaced outside' : '(a) replaced', replaced.op));
      continue;
    }
    if (write.ok && write.ttlMs !== undefined && get.start > write.end + write.ttlMs + options.expirySlackMs) {
      expired++;
      note(`get#${get.id} ${get.key} -> ${value} served after its ttl`);
    }
  }
  return {
    reads,
    staleAfterBridgeWrite: staleA,
    staleAfterOutsideWrite: staleB,
    loadStoredAfterDel: staleC,
    staleNull,
    servedExpired: expired,
    unknownValues: unknown,
    hung,
    staleOutsideWindow: staleWindow,
    staleServed,
    windowReads: { outside: outsideWindow, crossClient: crossWindow, maxOutsideLagMs: Math.round(maxOutsideLag), maxCrossLagMs: Math.round(maxCrossLag) },
    examples,
  };
}
