// Starts a real valkey-server (or redis-server) on a free loopback port with persistence off, for tests and
// `npm start`. Waits for "Ready to accept connections" instead of polling, and always stops what it started.
//   startValkeyServer()                         VALKEY_SERVER=<package> | VALKEY_SERVER_BIN | PATH (find-valkey-server)
//   startValkeyServer({ server: 'redis-6.0' })  a pinned Debian package: 'redis-6.0' | 'redis-7.0' | 'valkey-8.0'
//   serverBinary('redis-6.0')                   → { bin, realBin, env, version }: `bin` runs as is (e.g. from Go)
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { findValkeyServer } from './find-valkey-server.mjs';
import { freePort } from './free-port.ts';
import { ensureServerPackage, type ServerPackage, type ServerPackageName } from './server-packages.mjs';

export type { ServerPackage, ServerPackageName };

export interface ValkeyServer {
  readonly host: string;
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly pid: number | undefined;
  /** The binary it runs (for a package server, the unpacked Debian binary). */
  readonly bin: string;
  /** Kills the server (SIGKILL: no goodbye to clients) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts the server again on the same port (after `kill`). */
  start(): Promise<void>;
  /** Stops the server if running. Safe to call twice. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

async function spawnServer(bin: string, env: Record<string, string>, host: string, port: number, extraArgs: string[]): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', host, '--save', '', '--appendonly', 'no', '--daemonize', 'no',
    '--protected-mode', 'no', '--loglevel', 'notice', ...extraArgs];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${bin} did not become ready on ${host}:${port} within ${READY_TIMEOUT_MS} ms:\n${output}`)), READY_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => { output += c.toString(); });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${bin} exited with code ${code} before it was ready on ${host}:${port}:\n${output}`));
    });
  });
  try {
    await ready;
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return child;
}

async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/**
 * A pinned server package from the cache in test/.tmp/servers/, fetched and verified on first use.
 * `bin` is a wrapper that sets LD_LIBRARY_PATH, so other tools (Go tests) can exec it directly.
 * @example const { bin } = await serverBinary('redis-6.0'); // spawn(bin, ['--port', '0', ...])
 * @throws TypeError for an unknown name; Error when the fetch or the SHA-256 check fails
 */
export function serverBinary(name: ServerPackageName): Promise<ServerPackage> {
  return ensureServerPackage(name);
}

export interface StartValkeyServerOptions {
  /** Loopback address to bind. Default `127.0.0.1`. */
  host?: string;
  /** Default: a free port. */
  port?: number;
  /** Appended to the server's command line, e.g. `['--maxmemory', '1mb']`. Default none. */
  extraArgs?: string[];
  /** A pinned package server instead of the default (VALKEY_SERVER / VALKEY_SERVER_BIN / PATH). */
  server?: ServerPackageName;
}

/**
 * Starts a server on a free loopback port.
 * @example const server = await startValkeyServer({ server: 'redis-6.0' }); … await server.stop();
 * @throws Error when no server binary exists (the message says how to install one), or it does not start.
 */
export async function startValkeyServer(options: StartValkeyServerOptions = {}): Promise<ValkeyServer> {
  let bin: string;
  let env: Record<string, string> = {};
  if (options.server) {
    const pkg = await ensureServerPackage(options.server);
    bin = pkg.realBin;
    env = { ...pkg.env };
  } else {
    bin = findValkeyServer();
  }
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await freePort(host));
  const extraArgs = options.extraArgs ?? [];
  let child: ChildProcess | undefined = await spawnServer(bin, env, host, port, extraArgs);
  return {
    host,
    port,
    url: `redis://${host}:${port}`,
    bin,
    get pid() { return child?.pid; },
    async kill() { await stopChild(child, 'SIGKILL'); child = undefined; },
    async start() {
      if (child) throw new Error('server already running');
      child = await spawnServer(bin, env, host, port, extraArgs);
    },
    async stop() { await stopChild(child, 'SIGTERM'); child = undefined; },
  };
}
