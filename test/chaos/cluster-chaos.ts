// The protocol-level chaos run on a Valkey Cluster: coordinators-in-miniature over a cluster-mode bridge in front of
// a real 3+3 cluster, the randomized workload (outside writes go straight to each key's primary), and the cluster's
// own faults (graceful failover, a killed primary that later rejoins, a slot migrated with its keys) one at a time.
import { Redis } from 'iovalkey';
import { createBridge } from '../../bridge/index.ts';
import { keySlot } from '../../bridge/cluster-slot.ts';
import { RespErrorReply } from '../../shared/resp/index.ts';
import { TEST_TOKEN, waitFor } from '../support/bridge.ts';
import { RespWsClient } from '../support/resp-ws-client.ts';
import { startValkeyCluster, type ClusterNode, type ValkeyCluster } from '../support/valkey-cluster.ts';
import { CHAOS_BRIDGE_OPTIONS } from './bridge-stack.ts';
import { quiesce, type ChaosRunConfig } from './bridge-chaos.ts';
import { checkHistory, DEFAULT_CHECK_OPTIONS } from './checker.ts';
import { runFaultLoop, type Fault } from './faults.ts';
import { errorName, History, uniqueValue } from './history.ts';
import { MiniCoordinator } from './mini-coordinator.ts';
import { seededRandom } from './random.ts';
import { memorySnapshot, type ChaosReport } from './report.ts';
import { runWorkload, type ChaosClient, type OutsideWriter } from './workload.ts';

export const CLUSTER_FAULTS = ['failover', 'primary-kill', 'slot-migrate'] as const;
export type ClusterFault = (typeof CLUSTER_FAULTS)[number];

export interface ClusterChaosConfig extends Omit<ChaosRunConfig, 'faults' | 'dataDelayMs'> {
  readonly faults: readonly ClusterFault[];
  readonly coordinators?: number;
}

const CLIENT_TTL_MS = 400;
const TTL_MS = 5_000;
const GET_TIMEOUT_MS = 1_500;

/** Writes on each key's current primary, on connections that never queue (a late write would fool the checker). */
class ClusterWriter implements OutsideWriter {
  readonly #cluster: ValkeyCluster;
  readonly #conns = new Map<number, Redis>();

  constructor(cluster: ValkeyCluster) {
    this.#cluster = cluster;
  }

  async set(key: string, value: string, _px: 'PX', ttlMs: number): Promise<unknown> {
    return (await this.#at(key)).set(key, value, 'PX', ttlMs);
  }

  async del(key: string): Promise<unknown> {
    return (await this.#at(key)).del(key);
  }

  async get(key: string): Promise<string | null> {
    return (await this.#at(key)).get(key);
  }

  close(): void {
    for (const conn of this.#conns.values()) conn.disconnect();
  }

  async #at(key: string): Promise<Redis> {
    const node = await this.#cluster.owner(key);
    let conn = this.#conns.get(node.port);
    if (!conn) {
      conn = new Redis({ host: '127.0.0.1', port: node.port, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => 50, lazyConnect: true });
      conn.on('error', () => undefined);
      this.#conns.set(node.port, conn);
    }
    if (conn.status === 'wait') await conn.connect();
    return conn;
  }
}

/** How long a cluster may take, after the last fault, until every key's slot is served again (failovers settle). */
const SERVABLE_TIMEOUT_MS = 20_000;

/**
 * Kills take seconds to repair (promotion, then the rejoin), failovers and migrations well under one: weighted so
 * that a short run sees every kind.
 */
export const WEIGHTED_CLUSTER_FAULTS: readonly ClusterFault[] = ['failover', 'slot-migrate', 'failover', 'slot-migrate', 'primary-kill'];

/**
 * Quiescence on a cluster: the bridge tracking again is not enough, the cluster must also serve every key's slot
 * (a promotion or a rejoin settles by gossip, with no event to wait on). Polls a plain GET of each key through the
 * bridge until none answers an error (-TRYAGAIN, -CLUSTERDOWN); the sweep then runs on a settled cluster.
 */
async function untilServable(url: string, keys: readonly string[]): Promise<void> {
  const probe = await RespWsClient.connect(url, { token: TEST_TOKEN });
  try {
    await waitFor(async () => {
      const replies = await Promise.all(keys.map((key) => probe.call('GET', key)));
      return replies.every((reply) => !(reply instanceof RespErrorReply));
    }, 'the cluster to serve every key after the last fault', SERVABLE_TIMEOUT_MS, 50);
  } finally {
    await probe.close();
  }
}

function clusterFault(name: ClusterFault, cluster: ValkeyCluster, keys: readonly string[], random: () => number): Fault {
  const pickKey = () => keys[Math.floor(random() * keys.length)]!;
  switch (name) {
    case 'failover':
      return { name, inject: async () => { await cluster.failover(await cluster.owner(pickKey())); }, clear: async () => undefined };
    case 'primary-kill': {
      let killed: ClusterNode | undefined;
      return {
        name,
        inject: async () => { killed = await cluster.owner(pickKey()); await cluster.killPrimary(killed); },
        // It rejoins as a replica of the node that replaced it, so that the next kill has a replica to promote.
        clear: async () => { if (killed) await cluster.restart(killed); killed = undefined; },
      };
    }
    case 'slot-migrate':
      return {
        name,
        async inject() {
          const key = pickKey();
          const owner = await cluster.owner(key);
          const others = (await cluster.primaries()).filter((p) => p !== owner);
          await cluster.migrateSlot(keySlot(key), others[Math.floor(random() * others.length)]!);
        },
        clear: async () => undefined,
      };
  }
}

export async function runClusterChaos(config: ClusterChaosConfig): Promise<ChaosReport> {
  const seed = config.seed ?? Math.floor(Math.random() * 2 ** 31);
  const random = seededRandom(seed);
  const memoryBefore = memorySnapshot();
  const cluster = await startValkeyCluster();
  const bridge = await createBridge({
    tokens: [{ token: TEST_TOKEN }], valkeyUrl: cluster.seedUrls, cluster: true, clusterRefreshMs: 200, port: 0, ...CHAOS_BRIDGE_OPTIONS,
  });
  const writer = new ClusterWriter(cluster);
  const history = new History();
  const minis: MiniCoordinator[] = [];
  try {
    await bridge.waitUntilReady(15_000);
    const prefix = `chaos:${seed.toString(36)}:`;
    const keys = Array.from({ length: config.keys ?? 6 }, (_, i) => `${prefix}k${i}`);
    for (let i = 0; i < (config.coordinators ?? 4); i++) {
      minis.push(new MiniCoordinator(`c${i}`, { url: bridge.url, token: TEST_TOKEN, clientTtlMs: CLIENT_TTL_MS }));
    }
    const clients: ChaosClient[] = minis.map((mini) => ({
      name: mini.name,
      get(op, ttlMs, plan, timeoutMs) {
        const loader = plan && (async (key: string) => {
          const value = uniqueValue(key, 'L', op.id);
          if (!plan.fail) history.recordLoad(key, value, op.id, ttlMs);
          if (plan.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, plan.delayMs));
          if (plan.fail) throw new Error('loader failed');
          return value;
        });
        return mini.get(op.key, ttlMs, loader, performance.now() + timeoutMs);
      },
      del: (key, timeoutMs) => mini.del(key, performance.now() + timeoutMs),
      write: (key, value, ttlMs, timeoutMs) => mini.write(key, value, ttlMs, performance.now() + timeoutMs),
    }));
    const faults = config.faults.map((name) => clusterFault(name, cluster, keys, random));
    const startedAt = performance.now();
    const workload = runWorkload(history, {
      keys, clients, direct: writer, lanes: config.lanes ?? 8, durationMs: config.durationMs, maxOps: config.maxOps,
      ttlMs: TTL_MS, getTimeoutMs: GET_TIMEOUT_MS, hungGraceMs: DEFAULT_CHECK_OPTIONS.hungGraceMs, random,
      mix: config.mix ?? { get: 55, peek: 10, del: 12, bridgeWrite: 5, outsideWrite: 12, outsideDel: 6 },
      loaders: { slow: 0.1, fail: 0.08, hang: 0.02 },
    });
    const injected = await runFaultLoop(history, {
      faults, untilAt: startedAt + config.durationMs * 0.8, holdMs: [100, 300], gapMs: [100, 300], random,
      waitRecovered: () => bridge.waitUntilReady(20_000),
    });
    await workload;
    await bridge.waitUntilReady(20_000);
    const settleStart = performance.now();
    await untilServable(bridge.url, keys);
    const settleMs = Math.round(performance.now() - settleStart);
    const quiescence = await quiesce(history, keys, clients, (key) => writer.get(key), (i) => minis[i]!.localEntries());
    const check = checkHistory(history, { ...DEFAULT_CHECK_OPTIONS, ...config.check });
    const stats = bridge.stats();
    return {
      name: config.name, seed, durationMs: Math.round(performance.now() - startedAt), summary: history.summary(),
      faultsInjected: injected.length, check, quiescence, memoryBefore, memoryAfter: memorySnapshot(),
      extra: { epoch: stats.epoch, pendingReads: stats.pendingReads, settleMs, faults: injected.map((f) => f.name).join(',') },
    };
  } catch (err) {
    throw new Error(`cluster chaos failed: ${errorName(err)}: ${(err as Error).message}`);
  } finally {
    await Promise.all(minis.map((m) => m.stop()));
    writer.close();
    await bridge.close();
    await cluster.stop();
  }
}
