// A real Valkey Cluster on loopback for tests and `npm start`: N primaries (+ replicas) built from the server binary
// (free data and bus ports, slots assigned, nodes met, replicas attached, `cluster_state:ok` awaited), plus the
// faults the cluster tests need: graceful failover, a killed primary, a restarted node and a migrated slot.
//   const cluster = await startValkeyCluster(); … await cluster.stop();
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'iovalkey';
import { keySlot, SLOT_COUNT } from '../../bridge/cluster-slot.ts';
import { freePort } from './free-port.ts';
import { startValkeyServer, type ServerPackageName, type ValkeyServer } from './valkey-server.ts';

export interface ClusterNode {
  readonly port: number;
  readonly url: string;
  readonly id: string;
  readonly server: ValkeyServer;
  /** An admin connection (reconnects by itself after a restart). */
  readonly admin: Redis;
}

export interface StartValkeyClusterOptions {
  /** Default 3. */
  primaries?: number;
  /** Replicas per primary. Default 1. */
  replicas?: number;
  server?: ServerPackageName;
  /** How long cluster-wide waits may take, in ms. Default 20000. */
  timeoutMs?: number;
}

const HOST = '127.0.0.1';
const POLL_MS = 50;

/** Polls `check` (bounded): cluster gossip has no event a client can wait on. */
async function until(check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`cluster: timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

const infoField = (info: string, field: string): string | undefined =>
  info.split('\r\n').find((line) => line.startsWith(`${field}:`))?.slice(field.length + 1);

export class ValkeyCluster {
  readonly nodes: ClusterNode[];
  readonly #dir: string;
  readonly #timeoutMs: number;

  constructor(nodes: ClusterNode[], dir: string, timeoutMs: number) {
    this.nodes = nodes;
    this.#dir = dir;
    this.#timeoutMs = timeoutMs;
  }

  /** Seed URLs, comma-separated, as VALKEY_URL takes them. */
  get seedUrls(): string {
    return this.nodes.map((n) => n.url).join(',');
  }

  get running(): ClusterNode[] {
    return this.nodes.filter((n) => n.server.pid !== undefined);
  }

  /** The primaries as a live node sees them now (by CLUSTER SLOTS). */
  async primaries(): Promise<ClusterNode[]> {
    const owners = await this.#slotOwners();
    return this.nodes.filter((n) => owners.includes(n.id));
  }

  /** The node that owns `key`'s slot now. */
  async owner(key: string): Promise<ClusterNode> {
    const slot = keySlot(key);
    const ranges = await this.#slotRanges();
    const range = ranges.find((r) => slot >= r.start && slot <= r.end);
    const node = this.nodes.find((n) => n.id === range?.id);
    if (!node) throw new Error(`cluster: no owner for slot ${slot}`);
    return node;
  }

  /**
   * A replica of `primary`, as `primary` reports it. A failover right after a slot migration can leave the former
   * primary as an empty primary instead of a replica: such a node is attached to `primary` first.
   */
  async replicaOf(primary: ClusterNode): Promise<ClusterNode> {
    const find = async () => {
      const lines = String(await primary.admin.call('CLUSTER', 'REPLICAS', primary.id)).trim().split('\n');
      // `fail?` (PFAIL) comes and goes on a loaded machine; only a node agreed to have failed (`fail`) is left out.
      return this.nodes.find((n) => lines.some((l) => l.startsWith(n.id) && !(l.split(' ')[2] ?? '').split(',').includes('fail')));
    };
    const replica = await find();
    if (replica) return replica;
    const lines = String(await primary.admin.call('CLUSTER', 'NODES')).trim().split('\n').map((l) => l.split(' '));
    const empty = this.running.find((n) => lines.some((f) => f[0] === n.id && f[2]!.split(',').includes('master') && f.length <= 8 && n !== primary));
    if (!empty) throw new Error(`cluster: ${primary.port} has no replica and no empty primary can become one`);
    await empty.admin.call('CLUSTER', 'REPLICATE', primary.id);
    await until(async () => (await find()) === empty, `${empty.port} to replicate ${primary.port}`, this.#timeoutMs);
    return empty;
  }

  /** SET on the key's owner (an external writer, not through the bridge). */
  async set(key: string, value: string): Promise<void> {
    await (await this.owner(key)).admin.set(key, value);
  }

  /** One key per primary (found by trying names), with `prefix`. */
  async keyOnEach(prefix: string): Promise<string[]> {
    const primaries = await this.primaries();
    const keys: string[] = [];
    const ranges = await this.#slotRanges();
    for (const primary of primaries) {
      for (let i = 0; i < 10_000; i++) {
        const key = `${prefix}${i}`;
        const slot = keySlot(key);
        if (ranges.some((r) => r.id === primary.id && slot >= r.start && slot <= r.end)) {
          keys.push(key);
          break;
        }
      }
    }
    return keys;
  }

  /**
   * `CLUSTER FAILOVER` on a replica of `primary`, once that replica is in sync (a manual failover waits for it and
   * gives up silently otherwise); resolves once every running node agrees. @returns the new primary
   */
  async failover(primary: ClusterNode): Promise<ClusterNode> {
    const replica = await this.replicaOf(primary);
    await this.#awaitInSync(replica);
    // A manual failover that does not finish in time is aborted by the server (CLUSTER_MF_TIMEOUT, 5 s): ask again.
    for (let attempt = 1; ; attempt++) {
      await replica.admin.call('CLUSTER', 'FAILOVER');
      try {
        await this.#awaitPrimary(replica, primary, attempt < 3 ? 6_000 : this.#timeoutMs);
        return replica;
      } catch (err) {
        if (attempt >= 3) {
          const nodes = String(await replica.admin.call('CLUSTER', 'NODES'));
          throw new Error(`${(err as Error).message}; CLUSTER NODES on ${replica.port}:\n${nodes}`);
        }
      }
    }
  }

  /** kill -9 of `primary`; resolves once its replica is promoted and the cluster is ok. @returns the new primary */
  async killPrimary(primary: ClusterNode): Promise<ClusterNode> {
    const replica = await this.replicaOf(primary);
    await this.#awaitInSync(replica);
    await primary.server.kill();
    await this.#awaitPrimary(replica, primary);
    return replica;
  }

  /** Starts a killed node again (it rejoins from its nodes.conf) and waits until every node sees it connected. */
  async restart(node: ClusterNode): Promise<void> {
    await node.server.start();
    await until(async () => {
      for (const n of this.running) {
        const line = String(await n.admin.call('CLUSTER', 'NODES')).split('\n').find((l) => l.startsWith(node.id));
        if (!line || line.includes('fail') || line.includes('disconnected')) return false;
      }
      return infoField(String(await node.admin.call('CLUSTER', 'INFO')), 'cluster_state') === 'ok';
    }, `node ${node.port} to rejoin`, this.#timeoutMs);
  }

  /**
   * Moves `slot` from its owner to `target` with its keys (IMPORTING/MIGRATING, MIGRATE … KEYS, SETSLOT NODE).
   * `beforeFinish` runs after the keys moved and before SETSLOT NODE: the source then answers `-ASK` for them.
   */
  async migrateSlot(slot: number, target: ClusterNode, beforeFinish?: () => Promise<void>): Promise<void> {
    const ranges = await this.#slotRanges();
    const source = this.nodes.find((n) => n.id === ranges.find((r) => slot >= r.start && slot <= r.end)?.id);
    if (!source || source === target) throw new Error(`cluster: slot ${slot} is not on another node than ${target.port}`);
    await target.admin.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id);
    await source.admin.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id);
    for (let round = 0; round < 1000; round++) {
      const keys = (await source.admin.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
      if (keys.length === 0) break;
      await source.admin.call('MIGRATE', HOST, target.port, '', 0, 5000, 'KEYS', ...keys);
    }
    await beforeFinish?.();
    for (const primary of await this.primaries()) await primary.admin.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
    await until(async () => {
      for (const n of this.running) {
        const owners = (await this.#slotRanges(n)).find((r) => slot >= r.start && slot <= r.end);
        if (owners?.id !== target.id) return false;
      }
      return true;
    }, `slot ${slot} to be owned by ${target.port} everywhere`, this.#timeoutMs);
  }

  async stop(): Promise<void> {
    for (const node of this.nodes) node.admin.disconnect();
    await Promise.all(this.nodes.map((n) => n.server.stop()));
    await rm(this.#dir, { recursive: true, force: true });
  }

  async #awaitInSync(replica: ClusterNode): Promise<void> {
    await until(async () => infoField(String(await replica.admin.info('replication')), 'master_link_status') === 'up',
      `replica ${replica.port} to be in sync`, this.#timeoutMs);
  }

  async #awaitPrimary(promoted: ClusterNode, former: ClusterNode, timeoutMs = this.#timeoutMs): Promise<void> {
    await until(async () => {
      for (const n of this.running) {
        const owners = await this.#slotOwners(n);
        if (!owners.includes(promoted.id) || owners.includes(former.id)) return false;
        if (infoField(String(await n.admin.call('CLUSTER', 'INFO')), 'cluster_state') !== 'ok') return false;
      }
      return true;
    }, `${promoted.port} to replace ${former.port} as primary`, timeoutMs);
  }

  async #slotOwners(from?: ClusterNode): Promise<string[]> {
    return [...new Set((await this.#slotRanges(from)).map((r) => r.id))];
  }

  async #slotRanges(from?: ClusterNode): Promise<Array<{ start: number; end: number; id: string }>> {
    const node = from ?? this.running[0]!;
    const slots = (await node.admin.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, string]]>;
    return slots.map(([start, end, primary]) => ({ start, end, id: primary[2] }));
  }
}

/** Ports another process took between our probe and the server's bind: pick new ones and try again. */
const START_ATTEMPTS = 4;

/**
 * One cluster node on a free client port and its own free bus port (port + 10000 overflows for ephemeral ports).
 * Free ports are probed, not reserved, so parallel test files can race for one: a bind failure retries.
 */
async function startNode(dir: string, server: StartValkeyClusterOptions['server'], taken: Set<number>): Promise<{ server: ValkeyServer; port: number; busPort: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await distinctFreePort(taken);
    const busPort = await distinctFreePort(taken);
    try {
      const started = await startValkeyServer({
        port,
        server,
        extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '2000',
          // A replica may always be promoted, however long its link was down (a loaded machine, a recent attach).
          '--cluster-replica-validity-factor', '0',
          '--cluster-port', String(busPort), '--dir', dir, '--dbfilename', `dump-${port}.rdb`],
      });
      return { server: started, port, busPort };
    } catch (err) {
      if (attempt >= START_ATTEMPTS || !String((err as Error).message).includes('Address already in use')) throw err;
    }
  }
}

async function distinctFreePort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = await freePort(HOST);
    if (!taken.has(port)) {
      taken.add(port);
      return port;
    }
  }
}

/**
 * Starts `primaries` × (1 + `replicas`) nodes on free loopback ports and forms a cluster.
 * @throws Error when a node does not start or the cluster does not become ok in time (everything started is stopped).
 */
export async function startValkeyCluster(options: StartValkeyClusterOptions = {}): Promise<ValkeyCluster> {
  const primaryCount = options.primaries ?? 3;
  const replicaCount = options.replicas ?? 1;
  const timeoutMs = options.timeoutMs ?? 20_000;
  const dir = await mkdtemp(join(tmpdir(), 'valkey-cluster-'));
  const nodes: ClusterNode[] = [];
  const cluster = new ValkeyCluster(nodes, dir, timeoutMs);
  try {
    const total = primaryCount * (1 + replicaCount);
    const taken = new Set<number>();
    const started = await Promise.all(Array.from({ length: total }, async () => {
      const { server, port, busPort } = await startNode(dir, options.server, taken);
      const admin = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
      admin.on('error', () => undefined);
      await admin.connect();
      const id = String(await admin.call('CLUSTER', 'MYID'));
      return { node: { port, url: `redis://${HOST}:${port}`, id, server, admin }, busPort };
    }));
    nodes.push(...started.map((s) => s.node));
    const primaries = nodes.slice(0, primaryCount);
    await Promise.all(nodes.map((n, i) => n.admin.call('CLUSTER', 'SET-CONFIG-EPOCH', i + 1)));
    await Promise.all(primaries.map((n, i) => {
      const start = Math.floor((SLOT_COUNT * i) / primaryCount);
      const end = Math.floor((SLOT_COUNT * (i + 1)) / primaryCount) - 1;
      return n.admin.call('CLUSTER', 'ADDSLOTSRANGE', start, end);
    }));
    for (const { node, busPort } of started.slice(1)) await nodes[0]!.admin.call('CLUSTER', 'MEET', HOST, node.port, busPort);
    await until(async () => {
      for (const n of nodes) {
        const lines = String(await n.admin.call('CLUSTER', 'NODES')).trim().split('\n');
        if (lines.length !== total || lines.some((l) => l.includes('handshake') || l.includes('noaddr'))) return false;
      }
      return true;
    }, 'every node to know every other', timeoutMs);
    await Promise.all(nodes.slice(primaryCount).map((n, i) => n.admin.call('CLUSTER', 'REPLICATE', primaries[i % primaryCount]!.id)));
    await until(async () => {
      for (const n of nodes) {
        if (infoField(String(await n.admin.call('CLUSTER', 'INFO')), 'cluster_state') !== 'ok') return false;
        const replicas = (await n.admin.call('CLUSTER', 'SLOTS')) as unknown[][];
        if (replicas.length !== primaryCount || replicas.some((r) => r.length < 3 + replicaCount)) return false;
      }
      for (const n of nodes.slice(primaryCount)) {
        if (infoField(String(await n.admin.info('replication')), 'master_link_status') !== 'up') return false;
      }
      return true;
    }, 'cluster_state:ok with every replica in sync', timeoutMs);
    return cluster;
  } catch (err) {
    await cluster.stop().catch(() => undefined);
    throw err;
  }
}
