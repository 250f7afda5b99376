// The protocol-level chaos run: coordinators-in-miniature over the real bridge and server, the randomized workload,
// faults injected one at a time, then quiescence (faults cleared, tracking back), a sweep that must succeed on
// every key from every coordinator (no lock left behind), and the agreement check (d). Returns a ChaosReport.
import { isPlaceholder } from '../../shared/valkeyaside.ts';
import { startBridgeStack, type BridgeStack } from './bridge-stack.ts';
import { checkHistory, DEFAULT_CHECK_OPTIONS, type CheckOptions } from './checker.ts';
import { makeFault, runFaultLoop, type BridgeFault } from './faults.ts';
import { errorName, History, uniqueValue } from './history.ts';
import { MiniCoordinator } from './mini-coordinator.ts';
import { memorySnapshot, type ChaosReport, type Quiescence } from './report.ts';
import { seededRandom } from './random.ts';
import { runWorkload, type ChaosClient, type LoaderPlan, type WorkloadConfig } from './workload.ts';

/** What every chaos run takes, at either level. */
export interface ChaosRunConfig {
  readonly name: string;
  readonly durationMs: number;
  readonly maxOps: number;
  readonly faults: readonly BridgeFault[];
  readonly keys?: number;
  readonly lanes?: number;
  /** A constant delay (ms) on Valkey's replies to the bridge's data connection, for the whole run. */
  readonly dataDelayMs?: number;
  readonly mix?: WorkloadConfig['mix'];
  readonly seed?: number;
  readonly check?: Partial<CheckOptions>;
}

export interface BridgeChaosConfig extends ChaosRunConfig {
  readonly coordinators?: number;
  /** Turn off the coordinators' race protection (to show the checker finds stale reads). */
  readonly naive?: boolean;
}

const CLIENT_TTL_MS = 400;
const TTL_MS = 5_000;
const GET_TIMEOUT_MS = 1_500;
const SWEEP_TIMEOUT_MS = 5_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function miniClient(mini: MiniCoordinator, history: History, storm: { on: boolean }): ChaosClient {
  return {
    name: mini.name,
    get(op, ttlMs, plan, timeoutMs) {
      const effective: LoaderPlan | null = plan && storm.on ? { delayMs: plan.delayMs + 150, fail: plan.fail || Math.random() < 0.3 } : plan;
      const loader = effective && (async (key: string) => {
        // The value is read ("computed") first; the delay is the rest of the loader's work.
        const value = uniqueValue(key, 'L', op.id);
        if (!effective.fail) history.recordLoad(key, value, op.id, ttlMs);
        if (effective.delayMs > 0) await sleep(effective.delayMs);
        if (effective.fail) throw new Error('loader failed');
        return value;
      });
      return mini.get(op.key, ttlMs, loader, performance.now() + timeoutMs);
    },
    del: (key, timeoutMs) => mini.del(key, performance.now() + timeoutMs),
    write: (key, value, ttlMs, timeoutMs) => mini.write(key, value, ttlMs, performance.now() + timeoutMs),
  };
}

/** Faults cleared: every key read (with a loader) from every coordinator must succeed; then (d) and leftover locks. */
export async function quiesce(history: History, keys: readonly string[], clients: readonly ChaosClient[],
  truth: (key: string) => Promise<string | null>, localView?: (client: number) => Map<string, string | null>): Promise<Quiescence> {
  let sweepFailures = 0;
  let disagreements = 0;
  const examples: string[] = [];
  for (const client of clients) {
    await Promise.all(keys.map(async (key) => {
      const op = history.begin('get', key, client.name, { deadline: performance.now() + SWEEP_TIMEOUT_MS, loader: true });
      try {
        history.succeed(op, await client.get(op, TTL_MS, { delayMs: 0, fail: false }, SWEEP_TIMEOUT_MS));
      } catch (error) {
        history.fail(op, errorName(error));
        sweepFailures++;
        if (examples.length < 5) examples.push(`sweep ${client.name} ${key}: ${errorName(error)}`);
      }
    }));
  }
  let placeholdersLeft = 0;
  for (const key of keys) if (isPlaceholder(await truth(key))) placeholdersLeft++;
  for (const [i, client] of clients.entries()) {
    for (const key of keys) {
      const op = history.begin('get', key, client.name, { deadline: performance.now() + SWEEP_TIMEOUT_MS, loader: false });
      try {
        const answer = await client.get(op, TTL_MS, null, SWEEP_TIMEOUT_MS);
        history.succeed(op, answer);
        const server = await truth(key);
        if (answer.value !== server) {
          disagreements++;
          if (examples.length < 5) examples.push(`(d) ${client.name} ${key}: ${answer.value} vs server ${server}`);
        }
      } catch (error) {
        history.fail(op, errorName(error));
        sweepFailures++;
      }
    }
    for (const [key, value] of localView?.(i) ?? []) {
      const server = await truth(key);
      if (value !== server) {
        disagreements++;
        if (examples.length < 5) examples.push(`(d) ${client.name} local ${key}: ${value} vs server ${server}`);
      }
    }
  }
  return { sweepFailures, disagreements, placeholdersLeft, examples };
}

export async function runBridgeChaos(config: BridgeChaosConfig): Promise<ChaosReport> {
  const seed = config.seed ?? Math.floor(Math.random() * 2 ** 31);
  const random = seededRandom(seed);
  const memoryBefore = memorySnapshot();
  const stack: BridgeStack = await startBridgeStack();
  const history = new History();
  const minis: MiniCoordinator[] = [];
  try {
    if (config.dataDelayMs) stack.dataProxy.setDelay('fromServer', config.dataDelayMs);
    const prefix = `chaos:${seed.toString(36)}:`;
    const keys = Array.from({ length: config.keys ?? 4 }, (_, i) => `${prefix}k${i}`);
    const storm = { on: false };
    for (let i = 0; i < (config.coordinators ?? 4); i++) {
      minis.push(new MiniCoordinator(`c${i}`, { url: stack.clientUrl, token: stack.token, clientTtlMs: CLIENT_TTL_MS, naive: config.naive }));
    }
    const clients = minis.map((mini) => miniClient(mini, history, storm));
    const faults = config.faults.map((name) => makeFault(name, stack, history, {
      crashCoordinator: () => minis[Math.floor(random() * minis.length)]!.crash(),
      setLoaderStorm: (on) => { storm.on = on; },
    }, random));
    const startedAt = performance.now();
    const workload = runWorkload(history, {
      keys, clients, direct: stack.direct, lanes: config.lanes ?? 8, durationMs: config.durationMs, maxOps: config.maxOps,
      ttlMs: TTL_MS, getTimeoutMs: GET_TIMEOUT_MS, hungGraceMs: DEFAULT_CHECK_OPTIONS.hungGraceMs, random,
      mix: config.mix ?? { get: 55, peek: 10, del: 12, bridgeWrite: 5, outsideWrite: 12, outsideDel: 6 },
      loaders: { slow: 0.1, fail: 0.08, hang: 0.02 },
    });
    const injected = await runFaultLoop(history, {
      faults, untilAt: startedAt + config.durationMs * 0.8, holdMs: [100, 500], gapMs: [100, 400], random,
      waitRecovered: () => stack.waitReady(15_000),
    });
    await workload;
    stack.dataProxy.setDelay('fromServer', 0);
    await stack.waitReady(15_000);
    const quiescence = await quiesce(history, keys, clients, async (key) => stack.direct.get(key), (i) => minis[i]!.localEntries());
    const check = checkHistory(history, { ...DEFAULT_CHECK_OPTIONS, ...config.check });
    const bridgeStats = stack.bridge.stats();
    return {
      name: config.name, seed, durationMs: Math.round(performance.now() - startedAt), summary: history.summary(),
      faultsInjected: injected.length, check, quiescence, memoryBefore, memoryAfter: memorySnapshot(),
      extra: { epoch: bridgeStats.epoch, pendingReads: bridgeStats.pendingReads, reconnects: minis.reduce((n, m) => n + Math.max(0, m.session.opens - 1), 0) },
    };
  } finally {
    await Promise.all(minis.map((m) => m.stop()));
    await stack.close();
  }
}
