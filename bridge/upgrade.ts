// The WebSocket upgrade of /resp: bearer authentication before the upgrade (constant-time, never logged, optionally
// throttled per source address), the session limits (overall and per token), and a Session for each accepted socket.
// Failures answer plain HTTP.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { RESP_PATH, RESP_SUBPROTOCOL, RESP_SUBPROTOCOL_V2 } from '../shared/protocol.ts';
import { AuthThrottle } from './auth-throttle.ts';
import type { Logger } from './log.ts';
import type { BridgeMetrics } from './metrics.ts';
import type { ResolvedBridgeOptions } from './options.ts';
import { Session, type SessionContext } from './session.ts';
import type { ResolvedToken } from './token-options.ts';

export interface UpgradeContext {
  readonly options: ResolvedBridgeOptions;
  /** The open sessions; an accepted socket's Session is added (the session context's onClosed removes it). */
  readonly sessions: Set<Session>;
  readonly sessionContext: SessionContext;
  readonly metrics: BridgeMetrics;
  readonly log: Logger;
  readonly isShuttingDown: () => boolean;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 429: 'Too Many Requests', 503: 'Service Unavailable',
};

function rejectUpgrade(socket: Socket, status: number, error: string, extraHeaders = ''): void {
  const body = JSON.stringify({ error });
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\nCache-Control: no-store\r\n${extraHeaders}\r\n${body}`,
  );
}

/** SHA-256 of the token in an `Authorization: Bearer <token>` header, or null when there is none. */
export function bearerDigest(header: string | undefined): Buffer | null {
  const match = /^Bearer[ ]+([\x21-\x7e]{1,4096})[ ]*$/i.exec(header ?? '');
  return match ? createHash('sha256').update(match[1]!).digest() : null;
}

/** The HTTP server's `upgrade` listener. */
export function createUpgradeHandler(ctx: UpgradeContext): (req: IncomingMessage, socket: Socket, head: Buffer) => void {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: ctx.options.maxFrameBytes,
    // ws's default (16384) lets one message stay open as thousands of one-byte fragments, ~1.8 MiB per session.
    maxFragments: ctx.options.maxFragmentsPerMessage,
    perMessageDeflate: false,
    clientTracking: false,
    // The newest version the client offers: v2 adds TRACKED.SETKEY; without one the session speaks version 1.
    handleProtocols: (offered: Set<string>) => (offered.has(RESP_SUBPROTOCOL_V2) ? RESP_SUBPROTOCOL_V2 : offered.has(RESP_SUBPROTOCOL) ? RESP_SUBPROTOCOL : false),
  });
  // Failed upgrades: counted per reason, logged at most once a second with the number since (never the token).
  let authLoggedAt = 0;
  let authSuppressed = 0;
  const throttle = new AuthThrottle(ctx.options.maxAuthFailuresPerAddress, ctx.options.authFailureWindowMs);
  const authFailed = (reason: 'missing' | 'invalid' | 'duplicate' | 'throttled', remote: string | undefined): void => {
    ctx.metrics.error('auth');
    ctx.metrics.authFailures.inc({ reason });
    const now = Date.now();
    if (reason !== 'throttled') throttle.failed(remote, now);
    if (now - authLoggedAt < 1000) {
      authSuppressed++;
      return;
    }
    ctx.log.warn('rejected an upgrade: authentication failed', { reason, remote, suppressedSinceLast: authSuppressed });
    authLoggedAt = now;
    authSuppressed = 0;
  };
  const authenticate = (header: string | undefined): ResolvedToken | null => {
    // Hashing both sides gives equal lengths for timingSafeEqual; every token is compared, no early exit.
    const digest = bearerDigest(header);
    if (!digest) return null;
    let found: ResolvedToken | null = null;
    for (const token of ctx.options.tokens) if (timingSafeEqual(digest, token.digest) && found === null) found = token;
    return found;
  };
  let upgrading = 0;
  const perToken = new Map<ResolvedToken, number>();
  return function handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== RESP_PATH) return rejectUpgrade(socket, 404, 'not found');
      if (ctx.isShuttingDown()) return rejectUpgrade(socket, 503, 'bridge is shutting down');
      const retryAfterMs = throttle.retryAfterMs(socket.remoteAddress, Date.now());
      if (retryAfterMs > 0) {
        authFailed('throttled', socket.remoteAddress);
        return rejectUpgrade(socket, 429, 'too many failed authentications from this address; retry later',
          `Retry-After: ${Math.ceil(retryAfterMs / 1000)}\r\n`);
      }
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
      if (ctx.sessions.size + upgrading >= ctx.options.maxSessions) {
        ctx.metrics.error('session_limit');
        return rejectUpgrade(socket, 503, 'bridge is at its session limit', 'Retry-After: 1\r\n');
      }
      // Per token too: one tenant holding every session must not lock the others out.
      const held = perToken.get(token) ?? 0;
      if (held >= token.maxSessions) {
        ctx.metrics.error('session_limit');
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
        if (ctx.isShuttingDown()) {
          ws.close(1001, 'bridge shutting down');
          return;
        }
        try {
          const session = new Session(ws, token, ctx.sessionContext);
          ctx.sessions.add(session);
          ctx.log.debug('session opened', { session: session.id, token: token.label, protocol: ws.protocol || null });
        } catch (err) {
          ctx.metrics.error('internal');
          ctx.log.error('session setup failed', { error: err as Error });
          ws.terminate();
        }
      });
    } catch (err) {
      ctx.log.error('upgrade failed', { error: err as Error });
      socket.destroy();
    }
  };
}
