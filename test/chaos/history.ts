// The record a chaos run keeps: every operation with its start and end on one monotonic clock (performance.now in
// the test process), every value a loader computed and when, and every fault. Values are unique per write or load
// (`v|key|W12`, `v|key|L34`), so the checker (checker.ts) can tell exactly which event a read saw.
import { performance } from 'node:perf_hooks';

/** What an operation was. `write`/`outside-del` bypass the bridge; `bridge-write` and `del` go through a client. */
export type OpKind = 'get' | 'del' | 'bridge-write' | 'outside-write' | 'outside-del' | 'flush';

export interface Op {
  readonly id: number;
  readonly kind: OpKind;
  /** Empty for `flush` (every key). */
  readonly key: string;
  /** The coordinator (client) that ran it; `outside` for direct Valkey writes and server restarts. */
  readonly client: string;
  readonly start: number;
  /** When it settled; null while pending (or if it never settled). */
  end: number | null;
  /** Settled without an error: a del/write that is known to have been applied, a get with an answer. */
  ok: boolean;
  /** get: the answer. Writes: the value written (unique). */
  value?: string | null;
  /** get: how the library says it was answered (`hit`, `loaded`, ...). */
  outcome?: string;
  /** Errors by class/code, for the report. */
  error?: string;
  /** get: the deadline (absolute, same clock) by which it must settle. */
  deadline?: number;
  /** get: whether it had a loader. */
  loader?: boolean;
  /** get: one key of a getMany (its ops share start, end and outcome of the call as a whole). */
  many?: boolean;
  /** Writes: the PX the value was written with (ms), so an expired value is not mistaken for a live one. */
  ttlMs?: number;
  /** get: its stale-while-revalidate window (ms), when it had one. */
  staleMs?: number;
}

/** A value a loader computed: which get's loader, and when it returned (before any store could happen). */
export interface Load {
  readonly key: string;
  readonly value: string;
  readonly opId: number;
  readonly computedAt: number;
  readonly ttlMs: number;
}

export interface FaultRecord {
  readonly name: string;
  readonly start: number;
  end: number | null;
}

export const now = (): number => performance.now();

export class History {
  readonly ops: Op[] = [];
  readonly loads = new Map<string, Load>();
  readonly faults: FaultRecord[] = [];
  #nextId = 1;

  begin(kind: OpKind, key: string, client: string, extra: Partial<Pick<Op, 'value' | 'deadline' | 'loader' | 'ttlMs' | 'staleMs' | 'many'>> = {}): Op {
    const op: Op = { id: this.#nextId++, kind, key, client, start: now(), end: null, ok: false, ...extra };
    this.ops.push(op);
    return op;
  }

  /** Reserves an id for a value before the op that writes it begins (values name their writer). */
  peekId(): number {
    return this.#nextId;
  }

  succeed(op: Op, fields: Partial<Pick<Op, 'value' | 'outcome'>> = {}): void {
    op.end = now();
    op.ok = true;
    Object.assign(op, fields);
  }

  fail(op: Op, error: string): void {
    op.end = now();
    op.ok = false;
    op.error = error;
  }

  recordLoad(key: string, value: string, opId: number, ttlMs: number): void {
    this.loads.set(value, { key, value, opId, computedAt: now(), ttlMs });
  }

  fault(name: string): FaultRecord {
    const record: FaultRecord = { name, start: now(), end: null };
    this.faults.push(record);
    return record;
  }

  /** Counts of ops by kind and of errors by class. */
  summary(): { ops: Record<string, number>; errors: Record<string, number>; faults: Record<string, number> } {
    const ops: Record<string, number> = {};
    const errors: Record<string, number> = {};
    const faults: Record<string, number> = {};
    for (const op of this.ops) {
      ops[op.kind] = (ops[op.kind] ?? 0) + 1;
      if (op.error !== undefined) errors[`${op.kind}:${op.error}`] = (errors[`${op.kind}:${op.error}`] ?? 0) + 1;
    }
    for (const f of this.faults) faults[f.name] = (faults[f.name] ?? 0) + 1;
    return { ops, errors, faults };
  }
}

/** A unique value for a write or a load: the key, the kind and the id of the op that made it. */
export function uniqueValue(key: string, tag: 'W' | 'B' | 'L', id: number): string {
  return `v|${key}|${tag}${id}`;
}

/** A short name for an error: `ClassName:CODE` or the first words of the message. */
export function errorName(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${error.name}:${code}` : `${error.name}:${error.message.split(/[:(]/)[0]!.slice(0, 40).trim()}`;
  }
  return String(error).slice(0, 40);
}
