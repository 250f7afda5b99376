// The fault-injectable stack the chaos runs use, all on loopback: a real server; TCP proxies on the bridge's data
// connection (delay, cut), its subscriber (black-hole: half-open) and in front of the bridge (cut every WebSocket);
// a bridge that can be restarted on the same port; and a direct Valkey client for writes made outside the bridge.
import { Redis } from 'iovalkey';
import { createBridge, type Bridge, type BridgeOptions } from '../../bridge/index.ts';
import { TEST_TOKEN } from '../support/bridge.ts';
import { freePort } from '../support/free-port.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

export interface BridgeStack {
  readonly server: ValkeyServer;
  /** bridge data connection → server */
  readonly dataProxy: TcpProxy;
  /** bridge subscriber → server */
  readonly subProxy: TcpProxy;
  /** clients → bridge */
  readonly wsProxy: TcpProxy;
  /** `ws://127.0.0.1:<wsProxy>/resp`: what clients connect to. */
  readonly clientUrl: string;
  /** The bridge's own URL (no proxy). */
  readonly bridgeUrl: string;
  readonly token: string;
  /** The current bridge (replaced by restartBridge). */
  readonly bridge: Bridge;
  /** Direct client: writes made outside the bridge, and the ground truth at quiescence. */
  readonly direct: Redis;
  stopBridge(): Promise<void>;
  startBridge(): Promise<void>;
  /** Resolves once the bridge runs and has tracking again (bounded). */
  waitReady(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Bridge settings for chaos: fast failure detection so that faults clear within the test's bounds. */
export const CHAOS_BRIDGE_OPTIONS: Partial<BridgeOptions> = Object.freeze({
  valkeyPingMs: 100,
  commandTimeoutMs: 1_000,
  heartbeatMs: 1_000,
  shutdownGraceMs: 200,
  logLevel: 'silent' as const,
});

export async function startBridgeStack(overrides: Partial<BridgeOptions> = {}): Promise<BridgeStack> {
  const server = await startValkeyServer();
  const dataProxy = await startTcpProxy(server.host, server.port);
  const subProxy = await startTcpProxy(server.host, server.port);
  const port = await freePort();
  const options: BridgeOptions = {
    tokens: [{ token: TEST_TOKEN }],
    valkeyUrl: dataProxy.url,
    subscriberUrl: subProxy.url,
    port,
    ...CHAOS_BRIDGE_OPTIONS,
    ...overrides,
  };
  let bridge: Bridge | null = await createBridge(options);
  await bridge.waitUntilReady(10_000);
  const wsProxy = await startTcpProxy('127.0.0.1', port);
  const direct = new Redis({ host: server.host, port: server.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 50, enableOfflineQueue: false });
  direct.on('error', () => undefined);
  await direct.connect();

  const stack: BridgeStack = {
    server,
    dataProxy,
    subProxy,
    wsProxy,
    clientUrl: `ws://127.0.0.1:${wsProxy.port}/resp`,
    bridgeUrl: `ws://127.0.0.1:${port}/resp`,
    token: TEST_TOKEN,
    get bridge() {
      if (bridge === null) throw new Error('the bridge is stopped');
      return bridge;
    },
    direct,
    async stopBridge() {
      const current = bridge;
      bridge = null;
      await current?.close();
    },
    async startBridge() {
      if (bridge !== null) throw new Error('the bridge is already running');
      bridge = await createBridge(options);
    },
    async waitReady(timeoutMs = 15_000) {
      if (bridge === null) await stack.startBridge();
      await bridge!.waitUntilReady(timeoutMs);
      const deadline = performance.now() + timeoutMs;
      while (direct.status !== 'ready') {
        if (performance.now() > deadline) throw new Error('the direct Valkey client did not reconnect');
        await new Promise((resolve) => direct.once('ready', resolve).once('error', resolve));
      }
    },
    async close() {
      direct.disconnect();
      await bridge?.close();
      bridge = null;
      await wsProxy.close();
      await dataProxy.close();
      await subProxy.close();
      await server.stop();
    },
  };
  return stack;
}
