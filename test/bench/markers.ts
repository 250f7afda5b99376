// Timing from Node for code that runs inside workerd, whose clocks are ms-granular: the bench Worker opens a
// WebSocket here and sends short text markers ("armed", "dropped", "L-" when a loader ends, "d12" when get 12
// completes); this server stamps each on arrival with performance.now() (sub-µs, monotonic). Loopback only.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { WebSocketServer, type RawData } from 'ws';

/** One marker as it arrived. */
export interface Mark {
  readonly label: string;
  readonly text: string;
  readonly at: number;
}

export interface MarkerServer {
  /** `http://127.0.0.1:<port>/mark`; the Worker adds `?label=...`. */
  readonly url: string;
  /** Removes and returns every marker received under `label`. */
  take(label: string): Mark[];
  /** Resolves once `predicate` holds for the markers of `label` so far (checked on each arrival); bounded. */
  waitFor(label: string, predicate: (marks: readonly Mark[]) => boolean, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

export async function startMarkerServer(): Promise<MarkerServer> {
  const byLabel = new Map<string, Mark[]>();
  const watchers = new Set<() => void>();
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/mark', perMessageDeflate: false });
  await once(wss, 'listening');
  wss.on('connection', (ws, req) => {
    const label = new URL(req.url ?? '/', 'http://x').searchParams.get('label') ?? '';
    let list = byLabel.get(label);
    if (!list) byLabel.set(label, (list = []));
    const marks = list;
    ws.on('message', (data: RawData) => {
      // Stamp first: everything after this line is bookkeeping.
      const at = performance.now();
      marks.push({ label, text: data.toString(), at });
      if (watchers.size > 0) for (const wake of [...watchers]) wake();
    });
  });
  const port = (wss.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/mark`,
    take(label) {
      const marks = byLabel.get(label) ?? [];
      byLabel.delete(label);
      return marks;
    },
    waitFor(label, predicate, timeoutMs) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!predicate(byLabel.get(label) ?? [])) return;
          watchers.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for markers of ${label}`));
        }, timeoutMs);
        watchers.add(check);
        check();
      });
    },
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
