// Where each hash slot lives: a slot map read from CLUSTER SLOTS (plus CLUSTER INFO's state) over a short-lived
// connection to any reachable node, seeds included. Owners are compared by node id AND address, so a node that
// comes back elsewhere, a failover and a moved slot all count as a change.
import { Redis, ReplyError } from 'iovalkey';
import { SLOT_COUNT } from './cluster-slot.ts';
import type { ValkeyEndpoint } from './options.ts';
import { connectionOptions } from './valkey-connection.ts';

/** The cluster cannot be used as configured; `code` is stable. */
export class ClusterConfigError extends Error {
  override name = 'ClusterConfigError';
  constructor(readonly code: 'ERR_NOT_CLUSTER' | 'ERR_CLUSTER_STATE' | 'ERR_CLUSTER_UNREACHABLE', message: string) {
    super(message);
  }
}

export interface ClusterPrimary {
  readonly id: string;
  readonly endpoint: ValkeyEndpoint;
}

export class SlotMap {
  /** Index into `primaries` per slot, -1 where no node serves it. */
  readonly #owner = new Int16Array(SLOT_COUNT).fill(-1);
  readonly primaries: readonly ClusterPrimary[];

  constructor(primaries: readonly ClusterPrimary[], ranges: ReadonlyArray<{ start: number; end: number; primary: number }>) {
    this.primaries = primaries;
    for (const { start, end, primary } of ranges) this.#owner.fill(primary, start, end + 1);
  }

  /** The primary serving `slot`, or null. */
  owner(slot: number): ClusterPrimary | null {
    const i = this.#owner[slot]!;
    return i < 0 ? null : this.primaries[i]!;
  }

  /** Slots served by the primary with `id`. */
  slotsOf(id: string): number {
    const i = this.primaries.findIndex((p) => p.id === id);
    let n = 0;
    for (const owner of this.#owner) if (owner === i) n++;
    return i < 0 ? 0 : n;
  }

  get covered(): boolean {
    return !this.#owner.includes(-1);
  }

  /** Same owner (id and address) for every slot. */
  sameAs(other: SlotMap): boolean {
    for (let slot = 0; slot < SLOT_COUNT; slot++) {
      const a = this.owner(slot);
      const b = other.owner(slot);
      if (a?.id !== b?.id || a?.endpoint.display !== b?.endpoint.display) return false;
    }
    return true;
  }
}

/** `seed`'s credentials and TLS settings, at another node's address. */
export function nodeEndpoint(seed: ValkeyEndpoint, host: string, port: number): ValkeyEndpoint {
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return Object.freeze({ ...seed, host, port, display: `${seed.tls ? 'rediss' : 'redis'}://${hostPart}:${port}` });
}

type SlotsReply = Array<[number, number, [Buffer | string, number, Buffer | string, ...unknown[]], ...unknown[]]>;

/** Reads the slot map and the cluster state from one node. @throws ClusterConfigError ERR_NOT_CLUSTER; connection errors as is */
export async function readSlotMap(at: ValkeyEndpoint, timeoutMs: number): Promise<{ map: SlotMap; stateOk: boolean }> {
  const conn = new Redis(connectionOptions(at, 'valkeyaside-bridge:topology', {
    retryStrategy: () => null,
    commandTimeout: timeoutMs,
    connectTimeout: timeoutMs,
    enableReadyCheck: false,
  }));
  conn.on('error', () => undefined);
  try {
    await conn.connect();
    let info: string;
    try {
      info = String(await conn.call('CLUSTER', 'INFO'));
    } catch (err) {
      if (/cluster support disabled|unknown (sub)?command/i.test((err as Error).message)) {
        throw new ClusterConfigError('ERR_NOT_CLUSTER', `${at.display} is not a cluster node (${(err as Error).message}); point VALKEY_URL at cluster nodes or unset VALKEY_CLUSTER`);
      }
      throw err;
    }
    const reply = (await conn.call('CLUSTER', 'SLOTS')) as SlotsReply;
    const primaries: ClusterPrimary[] = [];
    const ranges: Array<{ start: number; end: number; primary: number }> = [];
    for (const [start, end, [rawHost, port, rawId]] of reply) {
      const id = String(rawId);
      // An empty or "?" host means "the address you reached me on" (cluster-preferred-endpoint-type unknown).
      const host = String(rawHost) === '' || String(rawHost) === '?' ? at.host : String(rawHost);
      let index = primaries.findIndex((p) => p.id === id);
      if (index < 0) index = primaries.push({ id, endpoint: nodeEndpoint(at, host, Number(port)) }) - 1;
      ranges.push({ start: Number(start), end: Number(end), primary: index });
    }
    return { map: new SlotMap(primaries, ranges), stateOk: /^cluster_state:ok\r?$/m.test(info) };
  } finally {
    conn.disconnect();
  }
}

/**
 * The first answer from `candidates`, in order.
 * @throws ClusterConfigError ERR_NOT_CLUSTER at once; ERR_CLUSTER_UNREACHABLE when no candidate answered.
 */
export async function discoverSlotMap(candidates: readonly ValkeyEndpoint[], timeoutMs: number): Promise<{ map: SlotMap; stateOk: boolean; from: ValkeyEndpoint }> {
  const errors: string[] = [];
  for (const candidate of candidates) {
    try {
      return { ...(await readSlotMap(candidate, timeoutMs)), from: candidate };
    } catch (err) {
      if (err instanceof ClusterConfigError) throw err;
      errors.push(`${candidate.display}: ${(err as Error).message}`);
    }
  }
  throw new ClusterConfigError('ERR_CLUSTER_UNREACHABLE', `no cluster node answered CLUSTER SLOTS (${errors.join('; ')})`);
}

/** `-MOVED 3999 127.0.0.1:6381`, `-ASK …`, `-CLUSTERDOWN …` (not run: safe to answer TRYAGAIN), else null. */
export function parseRedirect(err: unknown): { kind: 'moved' | 'ask'; host: string; port: number } | { kind: 'down' } | null {
  if (!(err instanceof ReplyError)) return null;
  const message = String((err as Error).message);
  if (message.startsWith('CLUSTERDOWN')) return { kind: 'down' };
  const match = /^(MOVED|ASK) \d+ (.*):(\d+)$/.exec(message);
  if (!match) return null;
  return { kind: match[1] === 'MOVED' ? 'moved' : 'ask', host: match[2]!.replace(/^\[(.*)\]$/, '$1'), port: Number(match[3]) };
}
