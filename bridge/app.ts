// The bridge's plain HTTP routes (Hono): /healthz, /metrics, and a 426 for /resp without an upgrade. WebSocket
// upgrades never reach Hono: bridge.ts takes them from the Node server's 'upgrade' event.
import { Hono } from 'hono';
import { RESP_PATH } from '../shared/protocol.ts';
import type { NodeHealth } from './tracker.ts';

/** What GET /healthz reports. `ok` (HTTP 200) means the bridge can serve cacheable reads right now. */
export interface BridgeHealth {
  readonly ok: boolean;
  readonly valkey: { readonly data: boolean; readonly subscriber: boolean };
  /** CLIENT TRACKING is established for the current epoch. */
  readonly tracking: boolean;
  readonly epoch: number;
  readonly sessions: number;
  readonly shuttingDown: boolean;
  /** Valkey Cluster only: each primary's connections, tracking, epoch and slot count. */
  readonly nodes?: readonly NodeHealth[];
}

export interface AppDeps {
  health(): BridgeHealth;
  /** True when the request may see /metrics and /healthz details (the metrics token, or none configured). */
  operator(authorization: string | undefined): boolean;
  metricsText(): Promise<string>;
  metricsContentType: string;
}

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => {
    const health = deps.health();
    c.header('Cache-Control', 'no-store');
    // The public listener says only ok / not ok; details (sessions, epoch) are for operators.
    const body = deps.operator(c.req.header('authorization')) ? health : { ok: health.ok };
    return c.json(body, health.ok ? 200 : 503);
  });
  app.get('/metrics', async (c) => {
    if (!deps.operator(c.req.header('authorization'))) {
      return c.json({ error: 'missing or invalid metrics token' }, 401, { 'WWW-Authenticate': 'Bearer' });
    }
    const text = await deps.metricsText();
    return c.body(text, 200, { 'Content-Type': deps.metricsContentType, 'Cache-Control': 'no-store' });
  });
  app.all(RESP_PATH, (c) => c.json({ error: 'use a WebSocket upgrade (Upgrade: websocket) on this path' }, 426));
  app.notFound((c) => c.json({ error: 'not found' }, 404));
  app.onError((_err, c) => c.json({ error: 'internal error' }, 500));
  return app;
}
