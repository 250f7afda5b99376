// The bridge in its own process for the benchmarks (as it runs in production: its own event loop and core), with
// --expose-gc so that memory figures are taken after a full collection. Driven by bridge-process.ts over IPC;
// exits when the parent goes away. Options arrive as JSON in BENCH_BRIDGE_OPTIONS; BENCH_TRACE_SENDS=1 stamps every
// WebSocket frame the bridge sends, so a benchmark can tell the bridge's own time from its receivers'.
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { createBridge, type BridgeOptions } from '../../bridge/index.ts';

export type ChildRequest = { id: number; type: 'memory' | 'stats' | 'close' | 'sends' };

/** Frames sent since the previous `sends` request: how many, and first → last (ms, this process's clock). */
export interface SendTrace {
  readonly count: number;
  readonly firstToLastMs: number;
}
export type ChildMessage =
  | { type: 'ready'; url: string; pid: number }
  | { type: 'failed'; error: string }
  | { type: 'reply'; id: number; value: unknown };

const send = (message: ChildMessage) => process.send?.(message);
const collect = (globalThis as { gc?: () => void }).gc;

function memory() {
  // Two passes: the first may only schedule finalisers that free more on the second.
  collect?.();
  collect?.();
  const m = process.memoryUsage();
  return { gc: collect !== undefined, rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
}

const sends: number[] = [];
if (process.env.BENCH_TRACE_SENDS === '1') {
  // Wraps the prototype the bridge's sockets share; the bridge's code is untouched.
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function traced(this: WebSocket, ...args: Parameters<WebSocket['send']>) {
    sends.push(performance.now());
    return send.apply(this, args);
  } as WebSocket['send'];
}

function takeSends(): SendTrace {
  const trace = { count: sends.length, firstToLastMs: sends.length > 0 ? sends[sends.length - 1]! - sends[0]! : 0 };
  sends.length = 0;
  return trace;
}

try {
  const options = JSON.parse(process.env.BENCH_BRIDGE_OPTIONS ?? '{}') as BridgeOptions;
  const bridge = await createBridge(options);
  await bridge.waitUntilReady(10_000);
  let closing = false;
  const close = async () => {
    if (closing) return;
    closing = true;
    const timer = setTimeout(() => process.exit(1), 15_000);
    await bridge.close().catch(() => undefined);
    clearTimeout(timer);
    process.exit(0);
  };
  process.on('disconnect', () => void close());
  process.on('message', (request: ChildRequest) => {
    if (request.type === 'memory') send({ type: 'reply', id: request.id, value: { ...memory(), stats: bridge.stats() } });
    else if (request.type === 'stats') send({ type: 'reply', id: request.id, value: bridge.stats() });
    else if (request.type === 'sends') send({ type: 'reply', id: request.id, value: takeSends() });
    else if (request.type === 'close') {
      send({ type: 'reply', id: request.id, value: null });
      void close();
    }
  });
  send({ type: 'ready', url: bridge.url, pid: process.pid });
} catch (err) {
  send({ type: 'failed', error: err instanceof Error ? err.stack ?? err.message : String(err) });
  process.exit(1);
}
