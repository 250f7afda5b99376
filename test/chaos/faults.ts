// The faults a chaos run injects into a BridgeStack, each as inject/clear, and the loop that injects them one at a
// time while the workload runs. A fault lasts a random, bounded time (its duration is the fault, not a wait for an
// event); after each clear the loop waits for the recovery event (tracking re-established) before the next.
import type { TcpProxy } from '../support/tcp-proxy.ts';
import type { BridgeStack } from './bridge-stack.ts';
import type { FaultRecord, History } from './history.ts';

export const BRIDGE_FAULTS = [
  'server-restart', 'bridge-restart', 'ws-cut', 'sub-blackhole', 'data-cut', 'data-delay', 'coordinator-crash', 'loader-storm',
] as const;
/** The library level adds the death of the isolate running a loader (its request cut mid-load). */
export const LIBRARY_FAULTS = [...BRIDGE_FAULTS, 'loader-death'] as const;
/**
 * Not in the lists above: the coordinators' own WebSockets black-holed (half-open from both ends). Nothing is pushed
 * and nothing is noticed until a command waits past the client's reply timeout; see docs/guarantees.md.
 */
export type BridgeFault = (typeof LIBRARY_FAULTS)[number] | 'ws-blackhole';

export interface Fault {
  readonly name: string;
  inject(): Promise<void>;
  clear(): Promise<void>;
}

/** Things a fault needs beyond the stack: crashing a coordinator, switching loaders to slow-and-failing or dying. */
export interface FaultHooks {
  /** Miniature: drop the socket and all state. Library: `ctx.abort()` the Durable Object. */
  crashCoordinator(): Promise<void> | void;
  setLoaderStorm(on: boolean): void;
  setLoaderDeath?(on: boolean): void;
}

export function makeFault(name: BridgeFault, stack: BridgeStack, history: History, hooks: FaultHooks, random: () => number): Fault {
  switch (name) {
    case 'server-restart': {
      // Nothing is persisted, so a restart empties the keyspace: recorded as a flush of every key.
      let flush: ReturnType<History['begin']> | undefined;
      return {
        name,
        async inject() {
          flush = history.begin('flush', '', 'outside');
          await stack.server.kill();
        },
        async clear() {
          await stack.server.start();
          if (flush) history.succeed(flush);
        },
      };
    }
    case 'bridge-restart':
      return { name, inject: () => stack.stopBridge(), clear: () => stack.startBridge() };
    case 'ws-cut':
      return { name, inject: async () => stack.wsProxy.cutAll(), clear: async () => undefined };
    case 'ws-blackhole':
      return { name, inject: async () => stack.wsProxy.halfOpen(true), clear: async () => halfOpenEnds(stack.wsProxy) };
    case 'sub-blackhole':
      return { name, inject: async () => stack.subProxy.halfOpen(true), clear: async () => halfOpenEnds(stack.subProxy) };
    case 'data-cut':
      return { name, inject: async () => stack.dataProxy.cutAll(), clear: async () => undefined };
    case 'data-delay':
      // Valkey's replies to reads arrive late while its invalidations (subscriber, not delayed) arrive at once:
      // the read/invalidation race of notes §2.1 on every read.
      return {
        name,
        inject: async () => stack.dataProxy.setDelay('fromServer', 5 + Math.floor(random() * 40)),
        clear: async () => stack.dataProxy.setDelay('fromServer', 0),
      };
    case 'coordinator-crash':
      return { name, inject: async () => hooks.crashCoordinator(), clear: async () => undefined };
    case 'loader-death':
      return { name, inject: async () => hooks.setLoaderDeath?.(true), clear: async () => hooks.setLoaderDeath?.(false) };
    case 'loader-storm':
      return { name, inject: async () => hooks.setLoaderStorm(true), clear: async () => hooks.setLoaderStorm(false) };
  }
}

/**
 * A half-open connection never comes back: TCP does not lose bytes silently and resume. While the fault lasts no
 * byte and no close crosses the proxy (the far end never learns); when it clears, the dead connections are reset
 * (as the kernel eventually does). Resuming them would drop bytes from the middle of a stream, which no real
 * network does.
 */
function halfOpenEnds(proxy: TcpProxy): void {
  proxy.cutAll();
  proxy.halfOpen(false);
}

export interface FaultLoopConfig {
  readonly faults: readonly Fault[];
  /** Stop injecting new faults after this (perf clock ms). */
  readonly untilAt: number;
  /** Bounds of one fault's duration and of the gap between faults (ms). */
  readonly holdMs: readonly [number, number];
  readonly gapMs: readonly [number, number];
  readonly waitRecovered: () => Promise<void>;
  readonly random: () => number;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const between = (random: () => number, [lo, hi]: readonly [number, number]) => lo + Math.floor(random() * (hi - lo));

/** Injects one fault at a time until `untilAt`; every fault is cleared and recovered from before it returns. */
export async function runFaultLoop(history: History, config: FaultLoopConfig): Promise<FaultRecord[]> {
  const injected: FaultRecord[] = [];
  if (config.faults.length === 0) return injected;
  while (performance.now() < config.untilAt) {
    await pause(between(config.random, config.gapMs));
    if (performance.now() >= config.untilAt) break;
    const fault = config.faults[Math.floor(config.random() * config.faults.length)]!;
    const record = history.fault(fault.name);
    injected.push(record);
    try {
      await fault.inject();
      await pause(between(config.random, config.holdMs));
    } finally {
      await fault.clear();
      record.end = performance.now();
    }
    await config.waitRecovered();
  }
  return injected;
}
