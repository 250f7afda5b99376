// createBridge: wires the options, the tracked Valkey connection pair, the key index and push router, the Hono
// app and the WebSocket upgrade (upgrade.ts: auth before upgrade, session limits), the heartbeat and an orderly close.
import { timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import { TimeoutError } from '../shared/errors.ts';
import { RESP_PATH } from '../shared/protocol.ts';
import { Allowlist } from './allowlist.ts';
import { createApp, type BridgeHealth } from './app.ts';
import { checkExtensionSpecs } from './extension-specs.ts';
import { createLogger } from './log.ts';
import { BridgeMetrics } from './metrics.ts';
import { resolveBridgeOptions, type BridgeOptions } from './options.ts';
import { KeyPushRouter } from './push-router.ts';
import type { Session, SessionContext } from './session.ts';
import { SessionScheduler } from './session-scheduler.ts';
import { Tracker } from './tracker.ts';
import { bearerDigest, createUpgradeHandler } from './upgrade.ts';

export type { BridgeHealth } from './app.ts';

/** Counters and gauges for tests and operators (the same numbers /metrics exports). */
export interface BridgeStats {
  readonly sessions: number;
  /** Registered (key, session) pairs. */
  readonly trackedPairs: number;
  /** TRACKED.GET reads sent and not yet written to their session. */
  readonly pendingReads: number;
  /** Sessions whose socket is paused (a command backlog waits for a free slot). */
  readonly pausedSessions: number;
  readonly epoch: number;
  /** Invalidation messages received from Valkey since start (null flushes included). */
  readonly invalidationsReceived: number;
  /** Commands dispatched and not yet answered, over all sessions (at most maxInflightTotal). */
  readonly inflight: number;
  /** Per token (by label, `token#1`, ...): commands in flight and reply bytes owed over its sessions. */
  readonly tokens: ReadonlyArray<{ readonly label: string; readonly inflight: number; readonly owedBytes: number }>;
}

/** A running bridge. */
export interface Bridge {
  /** `ws://host:port/resp` */
  readonly url: string;
  readonly host: string;
  /** The port listened on (the real one when the option was 0). */
  readonly port: number;
  health(): BridgeHealth;
  stats(): BridgeStats;
  /** Prometheus text, as GET /metrics serves it. */
  metricsText(): Promise<string>;
  /**
   * Resolves once tracking is established (health().ok).
   * @throws TimeoutError when that takes longer than `timeoutMs` (default 10000).
   */
  waitUntilReady(timeoutMs?: number): Promise<void>;
  /** Stops accepting, lets in-flight commands finish (bounded by shutdownGraceMs), closes sessions with 1001 and Valkey. */
  close(): Promise<void>;
}

/**
 * Starts a bridge: listens on `host:port` and connects to Valkey in the background (sessions are accepted while
 * Valkey is down; their commands then get `-TRYAGAIN`).
 * @throws TypeError / RangeError for invalid options; the listen error when the port is taken.
 * @example
 * const bridge = await createBridge({ tokens: [{ token: process.env.BRIDGE_TOKEN! }], port: 0 });
 * console.log(bridge.url); // ws://127.0.0.1:54321/resp
 */
export async function createBridge(options: BridgeOptions): Promise<Bridge> {
  const opts = resolveBridgeOptions(options);
  const log = createLogger(opts.logLevel, opts.logSink);
  await checkExtensionSpecs(opts.valkey, opts.extraCommands, opts.commandTimeoutMs);
  const sessions = new Set<Session>();
  const router = new KeyPushRouter<Session>(opts.maxTrackedKeys, () => sessions);
  let invalidationsReceived = 0;
  let shuttingDown = false;
  let readyWaiters: Array<() => void> = [];
  const idleWaiters: Array<() => void> = [];
  const metrics = new BridgeMetrics({
    sessions: () => sessions.size,
    trackedPairs: () => router.index.size,
    epoch: () => tracker.epoch,
    pendingReads: () => tracker.pendingReads,
  });
  const tracker: Tracker = new Tracker({
    valkey: opts.valkey,
    subscriber: opts.subscriber,
    pingMs: opts.valkeyPingMs,
    commandTimeoutMs: opts.commandTimeoutMs,
    log,
    hooks: {
      onInvalidate(keys) {
        invalidationsReceived++;
        metrics.invalidationsReceived.inc();
        if (keys === null) {
          log.info('valkey flushed; invalidating every session', { sessions: sessions.size });
          router.flushAll();
        } else {
          if (log.enabled('debug')) log.debug('invalidation', { keys: keys.length });
          router.invalidate(keys, false);
        }
      },
      onEpoch() {
        metrics.epochs.inc();
        router.flushAll();
      },
      onTracking() {
        router.flushAll();
      },
      onHealth() {
        if (!health().ok) return;
        for (const wake of readyWaiters.splice(0)) wake();
      },
    },
  });
  const allowlist = new Allowlist(opts.extraCommands, opts);
  const health = (): BridgeHealth => {
    const t = tracker.health();
    return {
      ok: t.tracking && !shuttingDown,
      valkey: { data: t.dataReady, subscriber: t.subReady },
      tracking: t.tracking,
      epoch: t.epoch,
      sessions: sessions.size,
      shuttingDown,
    };
  };
  const scheduler = new SessionScheduler(opts.maxInflightTotal);
  const context: SessionContext = {
    options: opts,
    allowlist,
    tracker,
    router,
    scheduler,
    metrics,
    log,
    onClosed: (session) => {
      sessions.delete(session);
      if (sessions.size === 0) for (const wake of idleWaiters.splice(0)) wake();
    },
  };

  const operator = (header: string | undefined): boolean => {
    if (!opts.metricsDigest) return true;
    const digest = bearerDigest(header);
    return digest !== null && timingSafeEqual(digest, opts.metricsDigest);
  };
  const app = createApp({ health, operator, metricsText: () => metrics.text(), metricsContentType: metrics.contentType });
  const server = (opts.tls
    ? createAdaptorServer({ fetch: app.fetch, hostname: opts.host, createServer: createHttpsServer, serverOptions: { cert: opts.tls.cert, key: opts.tls.key } })
    : createAdaptorServer({ fetch: app.fetch, hostname: opts.host })) as Server;
  server.on('upgrade', createUpgradeHandler({
    options: opts,
    sessions,
    sessionContext: context,
    metrics,
    log,
    isShuttingDown: () => shuttingDown,
  }));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error('http server error', { error: err }));
  const port = (server.address() as AddressInfo).port;
  const urlHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const url = `${opts.tls ? 'wss' : 'ws'}://${urlHost}:${port}${RESP_PATH}`;
  tracker.start();
  const heartbeat = setInterval(() => {
    for (const session of sessions) session.heartbeat();
  }, opts.heartbeatMs);
  heartbeat.unref();
  log.info('bridge listening', { url, host: opts.host, port, valkey: opts.valkey.display, tokens: opts.tokens.length });

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    shuttingDown = true;
    clearInterval(heartbeat);
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const deadline = Date.now() + opts.shutdownGraceMs;
    await Promise.all([...sessions].map((session) => session.shutdown(deadline)));
    if (sessions.size > 0) {
      // Give clients a moment to answer the close frame, then cut whoever did not.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1000, deadline - Date.now()));
        idleWaiters.push(() => { clearTimeout(timer); resolve(); });
      });
      for (const session of sessions) session.terminate();
    }
    await tracker.close();
    server.closeAllConnections();
    await serverClosed;
    log.info('bridge closed', {});
  };

  return {
    url,
    host: opts.host,
    port,
    health,
    stats: () => ({
      sessions: sessions.size,
      trackedPairs: router.index.size,
      pendingReads: tracker.pendingReads,
      pausedSessions: [...sessions].filter((s) => s.isPaused).length,
      epoch: tracker.epoch,
      invalidationsReceived,
      inflight: scheduler.inflight,
      tokens: opts.tokens.map((token) => {
        const budget = scheduler.budgetFor(token);
        return { label: token.label, inflight: budget.inflight, owedBytes: budget.owedBytes };
      }),
    }),
    metricsText: () => metrics.text(),
    waitUntilReady(timeoutMs = 10_000) {
      if (health().ok) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const wake = () => { clearTimeout(timer); resolve(); };
        const timer = setTimeout(() => {
          readyWaiters = readyWaiters.filter((w) => w !== wake);
          reject(new TimeoutError(`bridge tracking was not established within ${timeoutMs} ms`));
        }, timeoutMs);
        readyWaiters.push(wake);
      });
    },
    close: () => (closing ??= close()),
  };
}
