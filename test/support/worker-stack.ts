// The stack most workerd tests run against: a real Valkey server, a bridge in this process, the test origin, the
// test Workers (vars naming that bridge and origin) and a plain client on the server; one close for all of it.
//   const stack = await startWorkerStack((vars) => [{ name: 'main', vars }]);
import { Redis } from 'iovalkey';
import type { Bridge } from '../../bridge/index.ts';
import { startReadyBridge, TEST_TOKEN } from './bridge.ts';
import { startTestWorkers, type TestWorker, type WorkerHarness } from './miniflare.ts';
import { startOrigin, type Origin } from './origin.ts';
import { startValkeyServer, type ValkeyServer } from './valkey-server.ts';

export interface WorkerStack {
  readonly server: ValkeyServer;
  readonly bridge: Bridge;
  readonly origin: Origin;
  readonly workers: WorkerHarness;
  /** A plain client on the server (an "outside" writer, as valkey-cli or a Go service). */
  readonly redis: Redis;
  close(): Promise<void>;
}

/** Starts the stack; `workers` gets the vars that reach it (BRIDGE_URL, BRIDGE_TOKEN, ORIGIN) merged over `vars`. */
export async function startWorkerStack(workers: (vars: Record<string, string>) => readonly TestWorker[], vars: Record<string, string> = {}): Promise<WorkerStack> {
  const server = await startValkeyServer();
  const bridge = await startReadyBridge(server.url);
  const origin = await startOrigin();
  const harness = await startTestWorkers(workers({ ...vars, BRIDGE_URL: bridge.url, BRIDGE_TOKEN: TEST_TOKEN, ORIGIN: origin.url }));
  const redis = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 0 });
  return {
    server, bridge, origin, workers: harness, redis,
    async close() {
      redis.disconnect();
      await harness.dispose();
      await origin.close();
      await bridge.close();
      await server.stop();
    },
  };
}

/** A query string of the defined params (`true` as 1; `false` and undefined left out), for the test Worker's routes. */
export function query(params: Record<string, string | number | boolean | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === false) continue;
    search.set(name, value === true ? '1' : String(value));
  }
  return search.toString();
}
