// Child processes for the local stack: each in its own process group, so that stopping one stops everything it
// started (wrangler starts workerd), with SIGTERM first and SIGKILL after a grace period.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';

export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Everything the process printed so far (bounded), for error messages. */
  output(): string;
  stop(graceMs?: number): Promise<void>;
}

const MAX_OUTPUT = 64 * 1024;

export function startProcess(name: string, command: string, args: string[], options: SpawnOptions & { echo?: (line: string) => void } = {}): ManagedProcess {
  const child = spawn(command, args, { ...options, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const collect = (chunk: Buffer) => {
    const text = chunk.toString();
    out = (out + text).slice(-MAX_OUTPUT);
    if (options.echo) for (const line of text.split('\n')) if (line.trim()) options.echo(line);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = once(child, 'exit');
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
  };
  return {
    name,
    child,
    output: () => out,
    async stop(graceMs = 5_000) {
      if (child.pid === undefined) return;
      if (child.exitCode === null && child.signalCode === null) signalGroup('SIGTERM');
      const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
      if (child.exitCode === null && child.signalCode === null) await exited;
      clearTimeout(timer);
      signalGroup('SIGKILL'); // grandchildren that outlived their parent
    },
  };
}

/** Polls `url` until it answers `expectStatus`, the process exits, or `timeoutMs` passes. Bounded. */
export async function waitForHttp(url: string, proc: ManagedProcess | null, timeoutMs: number, expectStatus = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (proc && (proc.child.exitCode !== null || proc.child.signalCode !== null)) {
      throw new Error(`${proc.name} exited (${proc.child.exitCode ?? proc.child.signalCode}) before ${url} answered:\n${proc.output()}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === expectStatus) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer ${expectStatus} within ${timeoutMs} ms (last: ${last})${proc ? `\n${proc.name} output:\n${proc.output()}` : ''}`);
}
