// The controllable HTTP origin the test Worker's loaders fetch (`GET /load/<key>`): counts loads per key and, per
// key, answers each request by a script (delay, status, network error, hang until released) or with `v:<n>`.
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** How the origin answers one request for a key. */
export type Behaviour =
  | { readonly status: number; readonly body?: string }
  | { readonly body: string | Uint8Array; readonly contentType?: string }
  | { readonly delayMs: number }
  /** Destroys the socket: the loader's fetch throws a network error. */
  | { readonly reset: true }
  /** Holds the request until `release(key)` (then answers the default body) or `close()`. */
  | { readonly hang: true };

export interface Origin {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Requests seen for `key` (the n in `v:<n>`). */
  loads(key: string): number;
  /** Queues behaviours for the next requests of `key`, one each; later requests get the default `v:<n>`. */
  script(key: string, ...behaviours: Behaviour[]): void;
  /** Resolves once `key` has seen `count` requests (bounded). */
  waitForLoads(key: string, count?: number, timeoutMs?: number): Promise<void>;
  /** Answers every hanging request of `key`. */
  release(key: string): void;
  close(): Promise<void>;
}

/** The default body for the n-th load of a key. */
export function versionBody(n: number): string {
  return `v:${n}`;
}

export async function startOrigin(): Promise<Origin> {
  const loads = new Map<string, number>();
  const scripts = new Map<string, Behaviour[]>();
  const hanging = new Map<string, Array<() => void>>();
  const sockets = new Set<Socket>();
  const events = new EventEmitter();
  events.setMaxListeners(0);

  const answer = (res: ServerResponse, status: number, body: string | Uint8Array, contentType = 'text/plain') => {
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://origin').pathname;
    if (!path.startsWith('/load/')) return answer(res, 404, 'no such route');
    const key = decodeURIComponent(path.slice('/load/'.length));
    const n = (loads.get(key) ?? 0) + 1;
    loads.set(key, n);
    events.emit('load', key);
    const behaviour = scripts.get(key)?.shift();
    if (behaviour === undefined) return answer(res, 200, versionBody(n));
    if ('reset' in behaviour) return void req.socket.destroy();
    if ('hang' in behaviour) {
      const list = hanging.get(key) ?? [];
      list.push(() => answer(res, 200, versionBody(n)));
      hanging.set(key, list);
      return;
    }
    if ('delayMs' in behaviour) return void setTimeout(() => answer(res, 200, versionBody(n)), behaviour.delayMs);
    if ('status' in behaviour) return answer(res, behaviour.status, behaviour.body ?? `status ${behaviour.status}`);
    return answer(res, 200, behaviour.body, behaviour.contentType);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    loads: (key) => loads.get(key) ?? 0,
    script(key, ...behaviours) {
      scripts.set(key, [...(scripts.get(key) ?? []), ...behaviours]);
    },
    waitForLoads(key, count = 1, timeoutMs = 10_000) {
      if ((loads.get(key) ?? 0) >= count) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off('load', onLoad);
          reject(new Error(`origin saw ${loads.get(key) ?? 0} loads of ${key}, not ${count}, within ${timeoutMs} ms`));
        }, timeoutMs);
        const onLoad = (loaded: string) => {
          if (loaded !== key || (loads.get(key) ?? 0) < count) return;
          clearTimeout(timer);
          events.off('load', onLoad);
          resolve();
        };
        events.on('load', onLoad);
      });
    },
    release(key) {
      for (const respond of hanging.get(key) ?? []) respond();
      hanging.delete(key);
    },
    async close() {
      for (const list of hanging.values()) for (const respond of list) respond();
      hanging.clear();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
