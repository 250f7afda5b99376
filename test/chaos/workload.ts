// A randomized, bounded concurrent history: lanes of back-to-back operations over a small key space — gets with
// loaders (fast, slow, failing, hanging) from many coordinators, dels (and writes) through them, and writes and dels
// made directly in Valkey — every one recorded in the History with its start and end. Bounded by count and time.
import type { Redis } from 'iovalkey';
import { errorName, uniqueValue, type History, type Op } from './history.ts';

/** What one get's loader does: wait `delayMs`, then return a unique value, or throw (`fail`). */
export interface LoaderPlan {
  readonly delayMs: number;
  readonly fail: boolean;
}

/** A coordinator the workload drives (a miniature one over the bridge, or the library in workerd). */
export interface ChaosClient {
  readonly name: string;
  /**
   * Runs a get for `op` (its id names the loaded value, and its refresh's). Resolves with the answer; rejects with
   * the error. `staleMs`: a stale-while-revalidate get (clients with `swr` only).
   */
  get(op: Op, ttlMs: number, loader: LoaderPlan | null, timeoutMs: number, staleMs?: number): Promise<{ value: string | null; outcome: string }>;
  /** True when the client runs stale-while-revalidate gets (the library); others get plain gets instead. */
  readonly swr?: boolean;
  del(key: string, timeoutMs: number): Promise<void>;
  /** A write through the bridge, when the client has one. */
  write?(key: string, value: string, ttlMs: number, timeoutMs: number): Promise<void>;
  /** A getMany, one op per key (each op's id names the value loaded for its key), when the client has one. */
  getMany?(ops: readonly Op[], ttlMs: number, loader: LoaderPlan, timeoutMs: number): Promise<Array<{ value: string | null; outcome: string }>>;
}

export interface WorkloadConfig {
  readonly keys: readonly string[];
  readonly clients: readonly ChaosClient[];
  /** Writes made outside the bridge go here. */
  readonly direct: Redis;
  readonly lanes: number;
  readonly durationMs: number;
  readonly maxOps: number;
  readonly ttlMs: number;
  readonly getTimeoutMs: number;
  /** Weights of each operation (need not sum to 1). */
  readonly mix: {
    readonly get: number; readonly peek: number; readonly del: number; readonly bridgeWrite: number; readonly outsideWrite: number; readonly outsideDel: number;
    readonly swr?: number;
    /** getMany of 2–3 distinct keys with one loadMany (clients without getMany run a get instead). Default 0. */
    readonly many?: number;
  };
  /** Stale-while-revalidate gets (`mix.swr`): their ttl (short, so windows open during a run) and window. */
  readonly stale?: { readonly ttlMs: number; readonly staleMs: number };
  /** Chance a loader is slow (100–400 ms), fails, or outlives the get's deadline. */
  readonly loaders: { readonly slow: number; readonly fail: number; readonly hang: number };
  /** Extra time past a get's deadline before the workload stops waiting for it (it then counts as hung). */
  readonly hungGraceMs: number;
  /**
   * Go valkeyaside clients (go-client.ts), one per lane: a lane runs one op at a time, so no Go client ever has two
   * ops in flight (Go reuses its lock id per client, test/interop/go/lock_id_test.go). Needs >= lanes entries.
   */
  readonly goClients?: readonly ChaosClient[];
  /** Share (0–1) of gets with a loader and of dels sent to the lane's Go client instead of an edge client. Default 0. */
  readonly goShare?: number;
  readonly random?: () => number;
}

export function pickLoader(config: Pick<WorkloadConfig, 'loaders' | 'getTimeoutMs'>, random: () => number): LoaderPlan {
  const r = random();
  const { slow, fail, hang } = config.loaders;
  if (r < hang) return { delayMs: config.getTimeoutMs + 200, fail: false };
  if (r < hang + fail) return { delayMs: Math.floor(random() * 20), fail: true };
  if (r < hang + fail + slow) return { delayMs: 100 + Math.floor(random() * 300), fail: false };
  return { delayMs: Math.floor(random() * 5), fail: false };
}

/** Awaits `work`, but never longer than `capMs`: an op still pending then stays unfinished (end null). */
async function bounded(work: Promise<unknown>, capMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work.catch(() => undefined), new Promise<void>((resolve) => { timer = setTimeout(resolve, capMs); })]);
  clearTimeout(timer);
}

/** Runs the lanes until `durationMs` passed or `maxOps` started. */
export async function runWorkload(history: History, config: WorkloadConfig): Promise<void> {
  const random = config.random ?? Math.random;
  const endAt = performance.now() + config.durationMs;
  let started = 0;
  const entries = Object.entries(config.mix).filter(([, weight]) => weight !== undefined) as Array<[keyof WorkloadConfig['mix'], number]>;
  const total = entries.reduce((sum, [, w]) => sum + w, 0);
  const pickKind = () => {
    let r = random() * total;
    for (const [kind, weight] of entries) if ((r -= weight) < 0) return kind;
    return 'get';
  };
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
  const goShare = config.goShare ?? 0;
  if (goShare > 0 && (config.goClients?.length ?? 0) < config.lanes) {
    throw new RangeError(`goShare needs one Go client per lane: ${config.lanes} lanes, ${config.goClients?.length ?? 0} Go clients`);
  }

  const lane = async (_: unknown, laneIndex: number) => {
    while (performance.now() < endAt && started < config.maxOps) {
      started++;
      const key = pick(config.keys);
      const kind = pickKind();
      // Go has no peek (its Get always loads) and no bridge writes: only loader gets and dels go to Go.
      const goes = goShare > 0 && (kind === 'get' || kind === 'del') && random() < goShare;
      const client = goes ? config.goClients![laneIndex]! : pick(config.clients);
      const unsupported = (kind === 'bridgeWrite' && !client.write) || (kind === 'swr' && (!client.swr || config.stale === undefined)) ||
        (kind === 'many' && !client.getMany);
      const failed = await runOne(history, config, unsupported ? 'get' : kind, key, client, random);
      // An application backs off after an error instead of spinning on an unavailable cache (think time, not sync).
      if (failed) await new Promise((resolve) => setTimeout(resolve, 5 + random() * 20));
    }
  };
  await Promise.all(Array.from({ length: config.lanes }, lane));
}

/** Runs one operation; true when it failed. */
async function runOne(history: History, config: WorkloadConfig, kind: keyof WorkloadConfig['mix'], key: string, client: ChaosClient, random: () => number): Promise<boolean> {
  const cap = config.getTimeoutMs + config.hungGraceMs + 1_000;
  const op = await startOne(history, config, kind, key, client, random, cap);
  return !op.ok;
}

async function startOne(history: History, config: WorkloadConfig, kind: keyof WorkloadConfig['mix'], key: string, client: ChaosClient, random: () => number, cap: number): Promise<Op> {
  switch (kind) {
    case 'get':
    case 'peek': {
      const loader = kind === 'get' ? pickLoader(config, random) : null;
      const op = history.begin('get', key, client.name, { deadline: performance.now() + config.getTimeoutMs, loader: loader !== null });
      await bounded(client.get(op, config.ttlMs, loader, config.getTimeoutMs).then(
        (answer) => history.succeed(op, answer),
        (error: unknown) => history.fail(op, errorName(error))), cap);
      return op;
    }
    case 'many': {
      const others = config.keys.filter((k) => k !== key);
      const keys = [key];
      const count = 1 + Math.floor(random() * 2);
      while (keys.length <= count && others.length > 0) keys.push(others.splice(Math.floor(random() * others.length), 1)[0]!);
      const loader = pickLoader(config, random);
      const deadline = performance.now() + config.getTimeoutMs;
      const ops = keys.map((k) => history.begin('get', k, client.name, { deadline, loader: true, many: true }));
      await bounded(client.getMany!(ops, config.ttlMs, loader, config.getTimeoutMs).then(
        (answers) => ops.forEach((op, i) => history.succeed(op, answers[i]!)),
        (error: unknown) => ops.forEach((op) => history.fail(op, errorName(error)))), cap);
      return ops[0]!;
    }
    case 'swr': {
      const { ttlMs, staleMs } = config.stale!;
      const op = history.begin('get', key, client.name, { deadline: performance.now() + config.getTimeoutMs, loader: true, ttlMs, staleMs });
      await bounded(client.get(op, ttlMs, pickLoader(config, random), config.getTimeoutMs, staleMs).then(
        (answer) => history.succeed(op, answer),
        (error: unknown) => history.fail(op, errorName(error))), cap);
      return op;
    }
    case 'del': {
      const op = history.begin('del', key, client.name);
      await bounded(client.del(key, config.getTimeoutMs).then(() => history.succeed(op), (e: unknown) => history.fail(op, errorName(e))), cap);
      return op;
    }
    case 'bridgeWrite': {
      const value = uniqueValue(key, 'B', history.peekId());
      const op = history.begin('bridge-write', key, client.name, { value, ttlMs: config.ttlMs });
      await bounded(client.write!(key, value, config.ttlMs, config.getTimeoutMs).then(() => history.succeed(op), (e: unknown) => history.fail(op, errorName(e))), cap);
      return op;
    }
    case 'outsideWrite': {
      const value = uniqueValue(key, 'W', history.peekId());
      const op = history.begin('outside-write', key, 'outside', { value, ttlMs: config.ttlMs });
      await bounded(config.direct.set(key, value, 'PX', config.ttlMs).then(() => history.succeed(op), (e: unknown) => history.fail(op, errorName(e))), cap);
      return op;
    }
    case 'outsideDel': {
      const op = history.begin('outside-del', key, 'outside');
      await bounded(config.direct.del(key).then(() => history.succeed(op), (e: unknown) => history.fail(op, errorName(e))), cap);
      return op;
    }
  }
}
