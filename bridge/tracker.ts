// What sessions read and write through, one Valkey server or a cluster alike (KeyTracker), and its single-server
// form: one tracked pair (tracked-pair.ts) plus the pending-read tokens. Epoch and race rules: docs/bridge.md,
// "Epochs" and "Race safety"; the cluster form is cluster-tracker.ts.
import type { ScriptName } from './allowlist.ts';
import type { Logger } from './log.ts';
import type { ValkeyEndpoint } from './options.ts';
import { PendingReads, type PendingRead } from './pending-reads.ts';
import { TrackedPair, type PairHealth, type TrackedReadResult, type TransactionCommand } from './tracked-pair.ts';

export type { PendingRead } from './pending-reads.ts';
export { INVALIDATE_CHANNEL, ValkeyUnavailableError } from './tracked-pair.ts';

export type TrackerHealth = PairHealth;

/** One cluster primary, as /healthz and /metrics report it. */
export interface NodeHealth extends PairHealth {
  /** host:port */
  readonly node: string;
  /** Hash slots this bridge routes to it. */
  readonly slots: number;
}

export interface TrackerHooks {
  /** Valkey invalidated `keys` (latin1 strings), or everything (null: FLUSHALL/FLUSHDB). Pending reads are already poisoned. */
  onInvalidate(keys: string[] | null): void;
  /** A tracked connection closed (or the cluster's topology changed): a new epoch began; every pending read is already poisoned. */
  onEpoch(epoch: number, reason: string): void;
  /**
   * CLIENT TRACKING was (re-)established for `epoch`. Reads answered while it was down registered no reader, so no
   * push would ever name their keys: the bridge sends everyone the drop-everything push, which wakes their waiters.
   */
  onTracking(epoch: number): void;
  /** Health may have changed. */
  onHealth(): void;
}

export interface TrackerConfig {
  readonly valkey: ValkeyEndpoint;
  readonly subscriber: ValkeyEndpoint;
  readonly pingMs: number;
  readonly commandTimeoutMs: number;
  readonly log: Logger;
  readonly hooks: TrackerHooks;
}

/** The session-facing surface: a command names one key (its first argument), which picks the server in a cluster. */
export interface KeyTracker {
  readonly epoch: number;
  /** Number of tracked reads in flight (registered, not yet written to their session). */
  readonly pendingReads: number;
  health(): TrackerHealth;
  /** Per cluster primary; null for a single server. */
  nodes(): readonly NodeHealth[] | null;
  start(): void;
  /** Registers a tracked read of `key` BEFORE it is sent (docs/bridge.md, "Race safety"). Release with {@link endRead}. */
  beginRead(key: string): PendingRead;
  endRead(token: PendingRead): void;
  /** True when the read may be cached: tracked, same epoch, and nothing invalidated its key since it was sent. */
  isCacheable(token: PendingRead): boolean;
  /** A write through the bridge changed `keys`: pending reads of them are never cacheable (the writer's own, `except`, is spared). */
  overwrite(keys: Iterable<string>, except?: PendingRead): void;
  /** `MULTI PTTL GET EXEC` on the tracked connection that serves `key`. */
  readTracked(key: Uint8Array): Promise<TrackedReadResult>;
  /** `MULTI <commands> EXEC` on the connection that serves `key` (every command names it); the EXEC reply, errors in place. */
  transaction(key: Uint8Array, commands: readonly TransactionCommand[]): Promise<unknown[]>;
  /** One command whose key is `args[0]`, binary-safe replies. */
  call(command: string, args: readonly Uint8Array[]): Promise<unknown>;
  /** EVALSHA of a registered script (loaded on NOSCRIPT); its key is `keyAndArgs[0]`. */
  evalScript(script: ScriptName, keyAndArgs: readonly Uint8Array[]): Promise<unknown>;
  /** SCRIPT LOAD on the server that serves `key` (SHA checked against the constant). */
  loadScript(key: Uint8Array, script: ScriptName): Promise<void>;
  /** Closes every connection; no further hooks run. */
  close(): Promise<void>;
}

/** One Valkey server. */
export class Tracker implements KeyTracker {
  readonly #pair: TrackedPair;
  readonly #pending = new PendingReads();

  constructor(config: TrackerConfig) {
    const { hooks } = config;
    this.#pair = new TrackedPair({
      ...config,
      hooks: {
        onInvalidate: (keys) => {
          if (keys === null) this.#pending.poisonAll();
          else this.#pending.poison(keys);
          hooks.onInvalidate(keys);
        },
        onLost: (epoch, reason) => {
          this.#pending.poisonAll();
          hooks.onEpoch(epoch, reason);
        },
        onTracking: (epoch) => hooks.onTracking(epoch),
        onHealth: () => hooks.onHealth(),
      },
    });
  }

  get epoch(): number {
    return this.#pair.epoch;
  }

  get pendingReads(): number {
    return this.#pending.size;
  }

  health(): TrackerHealth {
    return this.#pair.health();
  }

  nodes(): null {
    return null;
  }

  start(): void {
    this.#pair.start();
  }

  beginRead(key: string): PendingRead {
    return this.#pending.begin(key, this.#pair.epoch, this.#pair.health().tracking);
  }

  endRead(token: PendingRead): void {
    this.#pending.end(token);
  }

  isCacheable(token: PendingRead): boolean {
    return token.tracked && token.hits === 0 && token.epoch === this.#pair.epoch;
  }

  overwrite(keys: Iterable<string>, except?: PendingRead): void {
    this.#pending.overwrite(keys, except);
  }

  readTracked(key: Uint8Array): Promise<TrackedReadResult> {
    return this.#pair.readTracked(key);
  }

  transaction(_key: Uint8Array, commands: readonly TransactionCommand[]): Promise<unknown[]> {
    return this.#pair.transaction(commands);
  }

  loadScript(_key: Uint8Array, script: ScriptName): Promise<void> {
    return this.#pair.loadScript(script);
  }

  call(command: string, args: readonly Uint8Array[]): Promise<unknown> {
    return this.#pair.call(command, args);
  }

  evalScript(script: ScriptName, keyAndArgs: readonly Uint8Array[]): Promise<unknown> {
    return this.#pair.evalScript(script, keyAndArgs);
  }

  close(): Promise<void> {
    return this.#pair.close();
  }
}
