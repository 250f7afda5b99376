// KeyTracker for a Valkey Cluster: one tracked pair (tracked-pair.ts) per primary, a slot map (cluster-topology.ts)
// refreshed periodically, on MOVED and on a lost connection, and MOVED/ASK followed. Any topology change or lost
// pair starts a new cluster-wide epoch (drop-everything); why: docs/bridge.md, "Valkey Cluster".
import type { ScriptName } from './allowlist.ts';
import { keySlot } from './cluster-slot.ts';
import { discoverSlotMap, nodeEndpoint, parseRedirect, type SlotMap } from './cluster-topology.ts';
import type { Logger } from './log.ts';
import type { ValkeyEndpoint } from './options.ts';
import { PendingReads, type PendingRead } from './pending-reads.ts';
import { TrackedPair, ValkeyUnavailableError, type TrackedReadResult, type TransactionCommand } from './tracked-pair.ts';
import type { KeyTracker, NodeHealth, TrackerHealth, TrackerHooks } from './tracker.ts';
import { latin1 } from './valkey-connection.ts';

export interface ClusterTrackerConfig {
  readonly seeds: readonly ValkeyEndpoint[];
  /** The map read at start-up (createBridge checks the cluster before it listens). */
  readonly initialMap: SlotMap;
  readonly refreshMs: number;
  readonly pingMs: number;
  readonly commandTimeoutMs: number;
  readonly log: Logger;
  readonly hooks: TrackerHooks;
}

/** Redirects one command may follow before it is answered TRYAGAIN (a slot bouncing between nodes). */
const MAX_REDIRECTS = 5;

type Send<T> = (pair: TrackedPair, asking: boolean) => Promise<T>;

export class ClusterTracker implements KeyTracker {
  readonly #config: ClusterTrackerConfig;
  readonly #pending = new PendingReads();
  /** Tracked pair per primary, by node id. */
  readonly #pairs = new Map<string, TrackedPair>();
  #map: SlotMap;
  #epochValue = 1;
  #refreshing: Promise<void> | null = null;
  #timer: NodeJS.Timeout | undefined;
  #closing = false;
  #refreshFailures = 0;

  constructor(config: ClusterTrackerConfig) {
    this.#config = config;
    this.#map = config.initialMap;
  }

  get epoch(): number {
    return this.#epochValue;
  }

  get pendingReads(): number {
    return this.#pending.size;
  }

  health(): TrackerHealth {
    const pairs = this.#map.primaries.map((p) => this.#pairs.get(p.id)?.health());
    const all = (pick: (h: NonNullable<(typeof pairs)[number]>) => boolean) => pairs.every((h) => h !== undefined && pick(h));
    return {
      dataReady: all((h) => h.dataReady),
      subReady: all((h) => h.subReady),
      tracking: this.#map.covered && all((h) => h.tracking),
      epoch: this.#epochValue,
    };
  }

  nodes(): readonly NodeHealth[] {
    return this.#map.primaries.map((p) => {
      const h = this.#pairs.get(p.id)?.health() ?? { dataReady: false, subReady: false, tracking: false, epoch: 0 };
      return { node: `${p.endpoint.host}:${p.endpoint.port}`, slots: this.#map.slotsOf(p.id), ...h };
    });
  }

  start(): void {
    this.#apply(this.#map, true);
    this.#timer = setInterval(() => void this.refresh(), this.#config.refreshMs);
    this.#timer.unref();
  }

  beginRead(key: string): PendingRead {
    const owner = this.#map.owner(keySlot(key));
    const tracked = owner !== null && this.#pairs.get(owner.id)?.health().tracking === true;
    return this.#pending.begin(key, this.#epochValue, tracked);
  }

  endRead(token: PendingRead): void {
    this.#pending.end(token);
  }

  isCacheable(token: PendingRead): boolean {
    return token.tracked && token.hits === 0 && token.epoch === this.#epochValue;
  }

  overwrite(keys: Iterable<string>, except?: PendingRead): void {
    this.#pending.overwrite(keys, except);
  }

  readTracked(key: Uint8Array): Promise<TrackedReadResult> {
    // A redirected read ran elsewhere than where its token said it would: never cacheable.
    return this.#send(key, (pair, asking) => pair.readTracked(key, asking), () => this.#pending.spoil([latin1(key)]));
  }

  transaction(key: Uint8Array, commands: readonly TransactionCommand[]): Promise<unknown[]> {
    // As a redirected read: a TRACKED.SETKEY that ran elsewhere than its token says is never cacheable.
    return this.#send(key, (pair, asking) => pair.transaction(commands, asking), () => this.#pending.spoil([latin1(key)]));
  }

  call(command: string, args: readonly Uint8Array[]): Promise<unknown> {
    return this.#send(args[0], (pair, asking) => pair.call(command, args, asking));
  }

  loadScript(key: Uint8Array, script: ScriptName): Promise<void> {
    // Scripts are per node: load it where the key's commands run.
    return this.#send(key, (pair) => pair.loadScript(script));
  }

  evalScript(script: ScriptName, keyAndArgs: readonly Uint8Array[]): Promise<unknown> {
    return this.#send(keyAndArgs[0], (pair, asking) => pair.evalScript(script, keyAndArgs, asking));
  }

  /** Reads the slot map again (single-flight); a change starts a new epoch. Failures are logged, the map kept. */
  refresh(): Promise<void> {
    if (this.#closing) return Promise.resolve();
    this.#refreshing ??= this.#refreshOnce().finally(() => { this.#refreshing = null; });
    return this.#refreshing;
  }

  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#timer);
    await this.#refreshing?.catch(() => undefined);
    await Promise.all([...this.#pairs.values()].map((pair) => pair.close()));
    this.#pairs.clear();
  }

  async #refreshOnce(): Promise<void> {
    const known = this.#map.primaries.map((p) => p.endpoint);
    try {
      const { map } = await discoverSlotMap([...known, ...this.#config.seeds], this.#config.commandTimeoutMs);
      this.#refreshFailures = 0;
      if (!this.#closing && !map.sameAs(this.#map)) this.#apply(map, false);
    } catch (err) {
      if (this.#refreshFailures++ === 0) this.#config.log.warn('cluster topology refresh failed; keeping the slot map', { error: err as Error });
    }
  }

  /** Makes `map` current: a pair for every new primary, departed ones closed, and (after start-up) a new epoch. */
  #apply(map: SlotMap, initial: boolean): void {
    this.#map = map;
    const wanted = new Map(map.primaries.map((p) => [p.id, p.endpoint]));
    for (const [id, pair] of this.#pairs) {
      if (wanted.get(id)?.display === pair.endpoint.display) continue;
      this.#pairs.delete(id);
      void pair.close();
    }
    for (const [id, endpoint] of wanted) {
      if (this.#pairs.has(id)) continue;
      const pair = this.#newPair(endpoint);
      this.#pairs.set(id, pair);
      pair.start();
    }
    const layout = map.primaries.map((p) => `${p.endpoint.host}:${p.endpoint.port}=${map.slotsOf(p.id)}`).join(' ');
    if (initial) {
      this.#config.log.info('cluster slot map', { primaries: layout });
      return;
    }
    // A slot that changed owner (failover, MIGRATE, a node gone or added) may hold keys read on the old owner, whose
    // writes the new owner will never tell us about. Drop everything rather than work out which.
    this.#newEpoch('cluster topology changed', { primaries: layout });
  }

  #newPair(endpoint: ValkeyEndpoint): TrackedPair {
    const { hooks } = this.#config;
    return new TrackedPair({
      valkey: endpoint,
      subscriber: endpoint,
      pingMs: this.#config.pingMs,
      commandTimeoutMs: this.#config.commandTimeoutMs,
      log: this.#config.log,
      hooks: {
        onInvalidate: (keys) => {
          if (keys === null) this.#pending.poisonAll();
          else this.#pending.poison(keys);
          hooks.onInvalidate(keys);
        },
        onLost: (_epoch, reason) => {
          this.#newEpoch(`${endpoint.host}:${endpoint.port}: ${reason}`, {});
          // A lost primary may be failing over: look again now rather than at the next tick.
          void this.refresh();
        },
        onTracking: () => hooks.onTracking(this.#epochValue),
        onHealth: () => hooks.onHealth(),
      },
    });
  }

  #newEpoch(reason: string, fields: Record<string, unknown>): void {
    this.#epochValue++;
    this.#pending.poisonAll();
    this.#config.log.warn('new cluster epoch', { reason, epoch: this.#epochValue, ...fields });
    this.#config.hooks.onEpoch(this.#epochValue, reason);
    this.#config.hooks.onHealth();
  }

  /** Sends to the key's primary, following MOVED (after a map refresh) and ASK (to the importing node, with ASKING). */
  async #send<T>(key: Uint8Array | undefined, send: Send<T>, onRedirect?: () => void): Promise<T> {
    if (key === undefined) throw new ValkeyUnavailableError('valkey cluster: a command without a key has no node');
    const slot = keySlot(key);
    let target = this.#pairFor(slot);
    let asking = false;
    for (let hop = 0; ; hop++) {
      if (!target) throw new ValkeyUnavailableError(`valkey cluster: no connected primary serves slot ${slot}`);
      try {
        return await send(target, asking);
      } catch (err) {
        const redirect = parseRedirect(err);
        if (!redirect) throw err;
        if (redirect.kind === 'down' || hop >= MAX_REDIRECTS) throw new ValkeyUnavailableError(`valkey cluster: ${(err as Error).message}`);
        onRedirect?.();
        if (redirect.kind === 'moved') {
          await this.refresh();
          asking = false;
          target = this.#pairFor(slot);
          // The node asked may have heard of the move before the one we read the map from.
          if (target?.endpoint.display !== this.#displayOf(redirect)) target = this.#pairAt(redirect) ?? target;
        } else {
          asking = true;
          target = this.#pairAt(redirect);
        }
      }
    }
  }

  #pairFor(slot: number): TrackedPair | undefined {
    const owner = this.#map.owner(slot);
    return owner ? this.#pairs.get(owner.id) : undefined;
  }

  #displayOf(at: { host: string; port: number }): string {
    return nodeEndpoint(this.#config.seeds[0]!, at.host, at.port).display;
  }

  #pairAt(at: { host: string; port: number }): TrackedPair | undefined {
    const display = this.#displayOf(at);
    for (const pair of this.#pairs.values()) if (pair.endpoint.display === display) return pair;
    return undefined;
  }
}
