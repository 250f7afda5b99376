// Starts bench/bridge-child.ts as a child process and talks to it over IPC: its URL, stats, memory after a full
// GC, and a bounded close. BENCH_PROFILE=1 adds --cpu-prof (profiles land in test/.tmp/bench-profiles/<label>-<time>/).
import { fork, type ChildProcess } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BridgeOptions, BridgeStats } from '../../bridge/index.ts';
import { TEST_TOKEN } from '../support/bridge.ts';
import type { ChildMessage, ChildRequest, SendTrace } from './bridge-child.ts';

export type { SendTrace } from './bridge-child.ts';

const CHILD = fileURLToPath(new URL('./bridge-child.ts', import.meta.url));
export const PROFILE_DIR = fileURLToPath(new URL('../.tmp/bench-profiles/', import.meta.url));

/**
 * The CPU profile of the newest bridge child started with `label` under BENCH_PROFILE=1 (once it has closed). Its
 * directory holds the main thread's profile and tsx's loader thread's: the larger is the bridge.
 */
export function latestBridgeProfile(label: string): string {
  const dir = readdirSync(PROFILE_DIR).filter((d) => d.startsWith(`${label}-`)).sort().at(-1);
  if (dir === undefined) throw new Error(`no bridge profile for ${label} in ${PROFILE_DIR} (was BENCH_PROFILE=1 set before the bridge started?)`);
  const file = readdirSync(`${PROFILE_DIR}${dir}`).map((f) => `${PROFILE_DIR}${dir}/${f}`)
    .sort((a, b) => statSync(b).size - statSync(a).size)[0];
  if (file === undefined) throw new Error(`the bridge profile directory ${PROFILE_DIR}${dir} is empty`);
  return file;
}

export interface BridgeMemory {
  readonly gc: boolean;
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly arrayBuffers: number;
  readonly stats: BridgeStats;
}

export interface BridgeChild {
  readonly url: string;
  readonly pid: number;
  stats(): Promise<BridgeStats>;
  /** process.memoryUsage() in the child after two forced GCs. */
  memory(): Promise<BridgeMemory>;
  /** Frames sent since the last call (needs `traceSends`). */
  sends(): Promise<SendTrace>;
  close(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Runs a bridge (token TEST_TOKEN, port 0, log level error) against `valkeyUrl` in a child process; `traceSends`
 * stamps every frame it sends (see `sends`).
 */
export async function startBridgeChild(
  valkeyUrl: string,
  overrides: Partial<BridgeOptions> = {},
  label = 'bridge',
  traceSends = false,
): Promise<BridgeChild> {
  const options: BridgeOptions = { tokens: [{ token: TEST_TOKEN }], valkeyUrl, port: 0, logLevel: 'error', ...overrides };
  const execArgv = ['--expose-gc', '--import', 'tsx'];
  // One directory per bridge: the main thread and tsx's loader thread each write a profile (the larger is the bridge).
  if (process.env.BENCH_PROFILE === '1') execArgv.push('--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}${label}-${Date.now()}`);
  const child = fork(CHILD, [], {
    execArgv,
    env: { ...process.env, BENCH_BRIDGE_OPTIONS: JSON.stringify(options), BENCH_TRACE_SENDS: traceSends ? '1' : '0' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  running.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => { running.delete(child); resolve(); }));
  const ready = await new Promise<{ url: string; pid: number }>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('the bench bridge did not start within 20 s')); }, 20_000);
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') { clearTimeout(timer); resolve(message); }
      if (message.type === 'failed') { clearTimeout(timer); reject(new Error(`the bench bridge failed: ${message.error}`)); }
    });
    void exited.then(() => { clearTimeout(timer); reject(new Error('the bench bridge exited before it was ready')); });
  });
  let nextId = 1;
  const waiting = new Map<number, (value: unknown) => void>();
  child.on('message', (message: ChildMessage) => {
    if (message.type !== 'reply') return;
    waiting.get(message.id)?.(message.value);
    waiting.delete(message.id);
  });
  const ask = <T>(type: ChildRequest['type'], timeoutMs = 10_000): Promise<T> => new Promise<T>((resolve, reject) => {
    const id = nextId++;
    const timer = setTimeout(() => { waiting.delete(id); reject(new Error(`the bench bridge did not answer ${type} within ${timeoutMs} ms`)); }, timeoutMs);
    waiting.set(id, (value) => { clearTimeout(timer); resolve(value as T); });
    child.send({ id, type } satisfies ChildRequest);
  });
  let closing: Promise<void> | undefined;
  return {
    url: ready.url,
    pid: ready.pid,
    stats: () => ask<BridgeStats>('stats'),
    memory: () => ask<BridgeMemory>('memory', 30_000),
    sends: () => ask<SendTrace>('sends'),
    close: () => (closing ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        await ask('close').catch(() => undefined);
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }
    })()),
  };
}
