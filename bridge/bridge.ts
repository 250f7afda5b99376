// createBridge: wires the options, the tracked Valkey connection pair, the key index and push router, the Hono
// app and the WebSocket upgrade (auth before upgrade, session limit), the heartbeat and an orderly close.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import { WebSocketServer, type WebSocket } from 'ws';
import { TimeoutError } from '../shared/errors.ts';
import { RESP_PATH, RESP_SUBPROTOCOL } from '../shared/protocol.ts';
import { Allowlist } from './allowlist.ts';
import { createApp, type BridgeHealth } from './app.ts';
import { checkExtensionSpecs } from './extension-specs.ts';
import { createLogger } from './log.ts';
import { BridgeMetrics } from './metrics.ts';
import { resolveBridgeOptions, type BridgeOptions } from './options.ts';
import { KeyPushRouter } from './push-router.ts';
import { Session, type SessionContext } from './session.ts';
import type { ResolvedToken } from './token-options.ts';
import { Tracker } from './tracker.ts';

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

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 503: 'Service Unavailable' };

function rejectUpgrade(socket: Socket, status: number, error: string, extraHeaders = ''): void {
  const body = JSON.stringify({ error });
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\nCache-Control: no-store\r\n${extraHeaders}\r\n${body}`,
  );
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
  const context: SessionContext = {
    options: opts,
    allowlist,
    tracker,
    router,
    metrics,
    log,
    onClosed: (session) => {
      sessions.delete(session);
      if (sessions.size === 0) for (const wake of idleWaiters.splice(0)) wake();
    },
  };

  const bearerDigest = (header: string | undefined): Buffer | null => {
    const match = /^Bearer[ ]+([\x21-\x7e]{1,4096})[ ]*$/i.exec(header ?? '');
    return match ? createHash('sha256').update(match[1]!).digest() : null;
  };
  const operator = (header: string | undefined): boolean => {
    if (!opts.metricsDigest) return true;
    const digest = bearerDigest(header);
    return digest !== null && timingSafeEqual(digest, opts.metricsDigest);
  };
  // Failed upgrades: counted per reason, logged at most once a second with the number since (never the token).
  let authLoggedAt = 0;
  let authSuppressed = 0;
  const authFailed = (reason: 'missing' | 'invalid' | 'duplicate', remote: string | undefined): void => {
    metrics.error('auth');
    metrics.authFailures.inc({ reason });
    const now = Date.now();
    if (now - authLoggedAt < 1000) {
      authSuppressed++;
      return;
    }
    log.warn('rejected an upgrade: authentication failed', { reason, remote, suppressedSinceLast: authSuppressed });
    authLoggedAt = now;
    authSuppressed = 0;
  };
  const app = createApp({ health, operator, metricsText: () => metrics.text(), metricsContentType: metrics.contentType });
  const server = (opts.tls
    ? createAdaptorServer({ fetch: app.fetch, hostname: opts.host, createServer: createHttpsServer, serverOptions: { cert: opts.tls.cert, key: opts.tls.key } })
    : createAdaptorServer({ fetch: app.fetch, hostname: opts.host })) as Server;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.maxFrameBytes,
    // ws's default (16384) lets one message stay open as thousands of one-byte fragments, ~1.8 MiB per session.
    maxFragments: opts.maxFragmentsPerMessage,
    perMessageDeflate: false,
    clientTracking: false,
    handleProtocols: (offered: Set<string>) => (offered.has(RESP_SUBPROTOCOL) ? RESP_SUBPROTOCOL : false),
  });
  const authenticate = (header: string | undefined): ResolvedToken | null => {
    // Hashing both sides gives equal lengths for timingSafeEqual; every token is compared, no early exit.
    const digest = bearerDigest(header);
    if (!digest) return null;
    let found: ResolvedToken | null = null;
    for (const token of opts.tokens) if (timingSafeEqual(digest, token.digest) && found === null) found = token;
    return found;
  };
  let upgrading = 0;
  const perToken = new Map<ResolvedToken, number>();
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== RESP_PATH) return rejectUpgrade(socket, 404, 'not found');
      if (shuttingDown) return rejectUpgrade(socket, 503, 'bridge is shutting down');
      // Node keeps the first of repeated Authorization headers; an ambiguous request is refused instead.
      if ((req.headersDistinct.authorization?.length ?? 0) > 1) {
        authFailed('duplicate', socket.remoteAddress);
        return rejectUpgrade(socket, 400, 'more than one Authorization header');
      }
      const token = authenticate(req.headers.authorization);
      if (!token) {
        authFailed(req.headers.authorization === undefined ? 'missing' : 'invalid', socket.remoteAddress);
        return rejectUpgrade(socket, 401, 'missing or invalid bearer token', 'WWW-Authenticate: Bearer\r\n');
      }
      if (sessions.size + upgrading >= opts.maxSessions) {
        metrics.error('session_limit');
        return rejectUpgrade(socket, 503, 'bridge is at its session limit', 'Retry-After: 1\r\n');
      }
      // Per token too: one tenant holding every session must not lock the others out.
      const held = perToken.get(token) ?? 0;
      if (held >= token.maxSessions) {
        metrics.error('session_limit');
        return rejectUpgrade(socket, 503, 'this token is at its session limit', 'Retry-After: 1\r\n');
      }
      perToken.set(token, held + 1);
      let tokenHeld = true;
      const releaseToken = () => {
        if (!tokenHeld) return;
        tokenHeld = false;
        const n = (perToken.get(token) ?? 1) - 1;
        if (n <= 0) perToken.delete(token);
        else perToken.set(token, n);
      };
      upgrading++;
      let counted = true;
      const release = () => {
        if (counted) { counted = false; upgrading--; }
      };
      // Held until the session closes (or the upgrade fails): the TCP socket closes in both cases.
      socket.once('close', releaseToken);
      socket.once('close', release);
      wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
        release();
        if (shuttingDown) {
          ws.close(1001, 'bridge shutting down');
          return;
        }
        try {
          const session = new Session(ws, token, context);
          sessions.add(session);
          log.debug('session opened', { session: session.id, token: token.label, protocol: ws.protocol || null });
        } catch (err) {
          metrics.error('internal');
          log.error('session setup failed', { error: err as Error });
          ws.terminate();
        }
      });
    } catch (err) {
      log.error('upgrade failed', { error: err as Error });
      socket.destroy();
    }
  });

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
