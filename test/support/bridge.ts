// Bridges for tests: one in-process on port 0 against a given Valkey URL, or the real CLI (`bridge/bin.mjs` or
// `npm run bridge`) as a child process, waiting for its "bridge listening" log line instead of polling.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createBridge, type Bridge, type BridgeOptions } from '../../bridge/index.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The token every test bridge accepts without a prefix. */
export const TEST_TOKEN = 'test-token-0123456789abcdef';

/** Starts a bridge in this process on a free port. Logs at `error` only, unless `overrides.logLevel` says otherwise. */
export function startBridge(valkeyUrl: string, overrides: Partial<BridgeOptions> = {}): Promise<Bridge> {
  return createBridge({ tokens: [{ token: TEST_TOKEN }], valkeyUrl, port: 0, logLevel: 'error', ...overrides });
}

/** Starts a bridge and waits (bounded) until its tracking is established. */
export async function startReadyBridge(valkeyUrl: string, overrides: Partial<BridgeOptions> = {}): Promise<Bridge> {
  const bridge = await startBridge(valkeyUrl, overrides);
  await bridge.waitUntilReady(10_000);
  return bridge;
}

/** A key prefix unique to one test. */
export function randomPrefix(name = 't'): string {
  return `${name}:${randomBytes(6).toString('hex')}:`;
}

/** `http://host:port` of a bridge's HTTP routes. */
export function httpBase(bridge: { host: string; port: number }): string {
  return `http://${bridge.host}:${bridge.port}`;
}

/** A bridge's counters from its /metrics text: client messages received, and commands by name. */
export async function bridgeCounters(bridge: Pick<Bridge, 'metricsText'>): Promise<{ messages: number; commands: Record<string, number> }> {
  const text = await bridge.metricsText();
  const messages = Number(/^bridge_messages_in_total (\d+)/m.exec(text)?.[1] ?? NaN);
  const commands: Record<string, number> = {};
  for (const [, name, n] of text.matchAll(/^bridge_commands_total\{command="([^"]+)"\} (\d+)/gm)) commands[name!] = Number(n);
  return { messages, commands };
}

/** The counts that changed from `before` to `after`, as differences (names that did not change are left out). */
export function countDelta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, n] of Object.entries(after)) if (n !== (before[name] ?? 0)) out[name] = n - (before[name] ?? 0);
  return out;
}

/** Polls `check` (bounded) until it returns true; for state that has no event (e.g. an HTTP status). */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

export interface BridgeProcess {
  readonly child: ChildProcess;
  /** Filled once "bridge listening" was logged. */
  readonly port: number;
  readonly url: string;
  /** Every stderr line so far. */
  readonly stderr: string[];
  /** Resolves with the exit code and signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` and waits (bounded) for the exit. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export type Launcher = 'bin' | 'npm';

function spawnBridge(via: Launcher, env: Record<string, string>, args: string[]): ChildProcess {
  // Only the settings the test gives: never inherit a BRIDGE_* or VALKEY_URL from the developer's shell.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BRIDGE_') && k !== 'VALKEY_URL'));
  const childEnv = { ...inherited, ...env };
  if (via === 'bin') return spawn(process.execPath, ['bridge/bin.mjs', ...args], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  return spawn(npm, ['run', '--silent', 'bridge', '--', ...args], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

function collect(child: ChildProcess) {
  const lines: string[] = [];
  let partial = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      child.emit('stderr-line', line);
    }
  });
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      if (partial) lines.push(partial);
      resolve({ code, signal });
    });
  });
  running.add(child);
  return { lines, exited };
}

/**
 * Runs the bridge CLI on port 0 and resolves once it logs "bridge listening" (bounded).
 * `env` is added to this process's environment (e.g. VALKEY_URL, BRIDGE_TOKEN).
 */
export async function startBridgeProcess(env: Record<string, string>, options: { via?: Launcher; args?: string[]; timeoutMs?: number } = {}): Promise<BridgeProcess> {
  const child = spawnBridge(options.via ?? 'bin', { BRIDGE_PORT: '0', BRIDGE_LOG_LEVEL: 'info', ...env }, options.args ?? []);
  const { lines, exited } = collect(child);
  const timeoutMs = options.timeoutMs ?? 20_000;
  const listening = await new Promise<{ port: number; url: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bridge process did not log "bridge listening" within ${timeoutMs} ms:\n${lines.join('\n')}`)), timeoutMs);
    const onLine = (line: string) => {
      let record: { msg?: string; port?: number; url?: string };
      try {
        record = JSON.parse(line);
      } catch {
        return;
      }
      if (record.msg !== 'bridge listening') return;
      clearTimeout(timer);
      child.off('stderr-line', onLine);
      resolve({ port: record.port!, url: record.url! });
    };
    child.on('stderr-line', onLine);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`bridge process exited with ${code} before listening:\n${lines.join('\n')}`));
    });
  }).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  return {
    child,
    port: listening.port,
    url: listening.url,
    stderr: lines,
    exited,
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/**
 * A bridge process that has Valkey tracked (`/healthz` answers 200), and its HTTP base: sessions opened now never get
 * the drop-everything push that re-established tracking sends.
 */
export async function startHealthyBridgeProcess(env: Record<string, string>): Promise<{ bridge: BridgeProcess; http: string }> {
  const bridge = await startBridgeProcess(env);
  const http = `http://127.0.0.1:${bridge.port}`;
  await waitFor(async () => (await fetch(`${http}/healthz`)).status === 200, 'the bridge to be ready');
  return { bridge, http };
}

/** Runs the bridge CLI expecting it to exit by itself (e.g. invalid configuration); bounded. */
export async function runBridgeProcess(env: Record<string, string>, options: { via?: Launcher; args?: string[]; timeoutMs?: number } = {}): Promise<{ code: number | null; stderr: string[] }> {
  const child = spawnBridge(options.via ?? 'bin', env, options.args ?? []);
  const { lines, exited } = collect(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  const { code } = await exited;
  clearTimeout(timer);
  return { code, stderr: lines.filter((l) => l.trim() !== '') };
}
