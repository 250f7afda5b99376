// The JSON bodies of the bench Worker's routes (bench-worker.mts), shared with the Node side that posts them.

/** Where a loop's gets go: one named coordinator, one per key, or n shards. */
export type PlacementSpec = { kind: 'coord'; name: string } | { kind: 'per-key' } | { kind: 'shards'; n: number };

export interface LoopRequest {
  /**
   * `bare`: the do-nothing RPC; `bare-payload`: an RPC carrying a get's request and reply shapes, doing nothing
   * else; `get`: CacheAside.getWithOutcome (with a trivial loader when `loader` is set); `direct` / `direct-naive`:
   * the DIY Durable Object (direct-valkey.mts) talking to Valkey itself, without / with a naive local copy.
   */
  op: 'bare' | 'bare-payload' | 'get' | 'direct' | 'direct-naive';
  keys: string[];
  concurrency: number;
  ttlMs: number;
  placement: PlacementSpec;
  namePrefix?: string;
  loader?: boolean;
  /** `direct` ops: how long the DIY object's loader takes (ms). */
  loaderMs?: number;
  /** CacheAside's `coalesce` option (default true). */
  coalesce?: boolean;
  /** `get`: a stale-while-revalidate get with this window (ms). */
  staleMs?: number;
  /** The loop also records the wall time of every `batchSize` completed calls. */
  batchSize: number;
  maxMs: number;
}

/** Longest per-call Date.now() difference kept apart in `ticks`; longer ones count in the last slot. */
export const MAX_TICK_MS = 100;

export interface LoopReply {
  calls: number;
  elapsedMs: number;
  /** Date.now() time taken by each successive `batchSize` completions (ms). */
  batchMs: number[];
  /** ticks[d]: calls whose Date.now() after − before was d ms (ms-granular, so d ≥ 2 means > 1 ms). */
  ticks: number[];
  outcomes: Record<string, number>;
  errors: string[];
}

export interface WatchRequest {
  key: string;
  coord: string;
  ttlMs: number;
  markLabel: string;
  maxMs: number;
}

export interface WatchReply {
  armed: boolean;
  dropped: boolean;
  polls: number;
  outcome: string;
}

export interface StampedeRequest {
  key: string;
  coord: string;
  gets: number;
  loaderMs: number;
  ttlMs: number;
  markLabel: string;
  /** CacheAside's `coalesce` option (default true). */
  coalesce?: boolean;
}

export interface StampedeReply {
  loaderCalls: number;
  /** Date.now() when this request's loader returned (null when it ran none). */
  loaderEndAt: number | null;
  /** Date.now() when each get completed. */
  doneAt: number[];
  outcomes: Record<string, number>;
  wrongValues: number;
  errors: string[];
  elapsedMs: number;
}
