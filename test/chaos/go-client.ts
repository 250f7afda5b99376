// Real Go valkeyaside clients as ChaosClients: builds test/interop/go/cmd/chaos-client once, runs it against the
// chaos run's Valkey server (Go talks to Valkey directly, not to the bridge) and records its loads in the History
// like the edge's origin does, so histories mix edge and Go gets/dels on the same keys under the same checker.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { uniqueValue, type History } from './history.ts';
import type { ChaosClient } from './workload.ts';

const GO_DIR = fileURLToPath(new URL('../interop/go', import.meta.url));
/** Beside the chaos Worker's bundles (git-ignored). */
const BIN_DIR = fileURLToPath(new URL('../.tmp/', import.meta.url));
const BUILD_TIMEOUT_MS = 180_000;
const READY_TIMEOUT_MS = 10_000;

export interface GoClients {
  /** One ChaosClient per Go valkeyaside client (`go/0`, `go/1`, ...). */
  readonly clients: readonly ChaosClient[];
  /** Kills the Go process. */
  close(): Promise<void>;
}

function run(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('go', args, { cwd: GO_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk; });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`go ${args.join(' ')} took over ${timeoutMs} ms:\n${output}`)); }, timeoutMs);
    child.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      // Go is part of the project's CI: a chaos run without it must fail, not quietly drop its Go share.
      reject(error.code === 'ENOENT' ? new Error('the chaos run needs Go (`go` is not on PATH): install Go 1.25+ to run its Go clients') : error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`go ${args.join(' ')} exited with ${code}:\n${output}`));
    });
  });
}

let builds = 0;
/**
 * A fresh chaos-client binary per start (under a second with Go's build cache): a path of its own, so no build
 * overwrites a binary another test process is running, unlinked once its process runs.
 */
async function build(): Promise<string> {
  const bin = `${BIN_DIR}chaos-client-${process.pid}-${builds++}`;
  await run(['build', '-o', bin, './cmd/chaos-client'], BUILD_TIMEOUT_MS);
  return bin;
}

interface Reply { id: number; ok: boolean; load?: boolean; loaded?: boolean; value?: string; error?: string }

/**
 * Starts `count` Go clients on `addr` (host:port). Loads are recorded in `recorder()` when the Go loader runs.
 * Go reuses one lock id per client (test/interop/go/lock_id_test.go), so callers give each client one op at a time.
 * @throws Error when Go is missing, the build fails or the process does not become ready.
 */
export async function startGoClients(addr: string, count: number, clientTtlMs: number, recorder: () => History): Promise<GoClients> {
  const bin = await build();
  const child: ChildProcessWithoutNullStreams = spawn(bin, [addr, String(count), String(clientTtlMs)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk).slice(-4_000); });
  const pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void; onLoad?: () => void }>();
  let exited: Error | null = null;
  const ready = new Promise<void>((resolve, reject) => {
    pending.set(0, { resolve: () => resolve(), reject });
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    const reply = JSON.parse(line) as Reply;
    const waiter = pending.get(reply.id);
    if (waiter === undefined) return;
    if (reply.load) { waiter.onLoad?.(); return; }
    pending.delete(reply.id);
    waiter.resolve(reply);
  });
  child.once('exit', (code, signal) => {
    exited = new Error(`the Go chaos client exited (${code ?? signal}): ${stderr}`);
    for (const waiter of pending.values()) waiter.reject(exited);
    pending.clear();
  });
  child.once('error', (error) => {
    exited = error;
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  });
  child.stdin.on('error', () => undefined);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([ready, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`the Go chaos client was not ready within ${READY_TIMEOUT_MS} ms: ${stderr}`)), READY_TIMEOUT_MS); })]);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  } finally {
    clearTimeout(timer);
    rmSync(bin, { force: true });
  }

  let nextId = 1;
  const send = (command: Record<string, unknown>, onLoad?: () => void): Promise<Reply> => new Promise((resolve, reject) => {
    if (exited) return reject(exited);
    const id = nextId++;
    pending.set(id, { resolve, reject, onLoad });
    child.stdin.write(`${JSON.stringify({ ...command, id })}\n`);
  });
  const failure = (reply: Reply) => Object.assign(new Error(reply.error ?? 'unknown'), { name: 'GoError' });

  const clients: ChaosClient[] = Array.from({ length: count }, (_, index) => ({
    name: `go/${index}`,
    async get(op, ttlMs, plan, timeoutMs) {
      // Go's Get always has a loader; the workload sends peeks to the edge only.
      if (plan === null) throw new TypeError('a Go get needs a loader plan');
      const value = uniqueValue(op.key, 'L', op.id);
      const reply = await send({ op: 'get', client: index, key: op.key, ttlMs, timeoutMs, value, delayMs: plan.delayMs, fail: plan.fail },
        () => recorder().recordLoad(op.key, value, op.id, ttlMs));
      if (!reply.ok) throw failure(reply);
      // Go does not say whether its compare-and-set stored the load, so a Go load never counts as known stored
      // (the checker then holds it to the stricter computed-at bound only).
      return { value: reply.value ?? null, outcome: reply.loaded ? 'go-loaded' : 'go-hit' };
    },
    async del(key, timeoutMs) {
      const reply = await send({ op: 'del', client: index, key, timeoutMs });
      if (!reply.ok) throw failure(reply);
    },
  }));
  return {
    clients,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await gone;
    },
  };
}
