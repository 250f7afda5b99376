// A loopback TCP proxy for fault injection between the bridge and Valkey: delay either direction, hold bytes until
// released (to order events exactly, without timing), black-hole (stop forwarding without closing) and cut.
import { EventEmitter, once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export type Direction = 'toServer' | 'fromServer';

interface Pipe {
  readonly client: Socket;
  readonly server: Socket;
  readonly held: Record<Direction, Buffer[]>;
  /** Delayed chunks, written strictly in arrival order by one timer per direction. */
  readonly delayed: Record<Direction, Array<{ due: number; chunk: Buffer }>>;
  readonly timers: Record<Direction, NodeJS.Timeout | null>;
}

export interface TcpProxy {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Open proxied connections. */
  readonly connections: number;
  /** Delays every chunk in `direction` by `ms` (order kept). 0 turns it off. */
  setDelay(direction: Direction, ms: number): void;
  /** Keeps chunks in `direction` instead of forwarding them, until `release`. */
  hold(direction: Direction): void;
  /** Forwards what was held in `direction`; with `keepHolding`, later chunks are held again. */
  release(direction: Direction, keepHolding?: boolean): void;
  /** Bytes held in `direction` so far (all connections), as latin1 text for searching. */
  heldText(direction: Direction): string;
  /** Waits (bounded) until the held bytes in `direction` satisfy `predicate`. */
  waitForHeld(direction: Direction, predicate: (text: string) => boolean, timeoutMs?: number): Promise<void>;
  /** While on, every byte in both directions is dropped and nothing is closed (a half-open peer). */
  blackhole(on: boolean): void;
  /**
   * A truly half-open peer: like `blackhole`, and a close on one side is not passed to the other while on (the
   * other end never learns). `cutAll` resets what is left.
   */
  halfOpen(on: boolean): void;
  /** Destroys every proxied connection (both sides). New connections are still accepted. */
  cutAll(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const pipes = new Set<Pipe>();
  const delay: Record<Direction, number> = { toServer: 0, fromServer: 0 };
  const holding: Record<Direction, boolean> = { toServer: false, fromServer: false };
  const events = new EventEmitter();
  let blackholed = false;
  let propagateCloses = true;

  const forward = (pipe: Pipe, direction: Direction, chunk: Buffer) => {
    if (blackholed) return;
    if (holding[direction]) {
      pipe.held[direction].push(chunk);
      events.emit('held');
      return;
    }
    const target = direction === 'toServer' ? pipe.server : pipe.client;
    const ms = delay[direction];
    const queue = pipe.delayed[direction];
    if (ms === 0 && queue.length === 0) {
      target.write(chunk);
      return;
    }
    // One queue and one timer per direction: separate timers of equal due time may fire out of order, which
    // would reorder bytes inside the TCP stream.
    queue.push({ due: Date.now() + ms, chunk });
    drainLater(pipe, direction, target);
  };
  const drainLater = (pipe: Pipe, direction: Direction, target: Socket) => {
    const queue = pipe.delayed[direction];
    if (pipe.timers[direction] !== null || queue.length === 0) return;
    pipe.timers[direction] = setTimeout(() => {
      pipe.timers[direction] = null;
      const now = Date.now();
      while (queue.length > 0 && queue[0]!.due <= now) {
        const { chunk } = queue.shift()!;
        if (!target.destroyed) target.write(chunk);
      }
      drainLater(pipe, direction, target);
    }, Math.max(1, queue[0]!.due - Date.now()));
  };

  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: targetHost, port: targetPort });
    const pipe: Pipe = {
      client, server: upstream, held: { toServer: [], fromServer: [] },
      delayed: { toServer: [], fromServer: [] }, timers: { toServer: null, fromServer: null },
    };
    pipes.add(pipe);
    const teardown = () => {
      if (!propagateCloses) return; // half-open: the other end is left as it is, until cutAll
      pipes.delete(pipe);
      for (const direction of ['toServer', 'fromServer'] as const) {
        if (pipe.timers[direction] !== null) clearTimeout(pipe.timers[direction]!);
        pipe.delayed[direction].length = 0;
      }
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => forward(pipe, 'toServer', chunk));
    upstream.on('data', (chunk: Buffer) => forward(pipe, 'fromServer', chunk));
    client.on('close', teardown);
    upstream.on('close', teardown);
    client.on('error', teardown);
    upstream.on('error', teardown);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const cutAll = () => {
    for (const pipe of [...pipes]) {
      pipe.client.destroy();
      pipe.server.destroy();
    }
    pipes.clear();
  };
  const heldText = (direction: Direction) =>
    [...pipes].map((p) => Buffer.concat(p.held[direction]).toString('latin1')).join('');

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get connections() {
      return pipes.size;
    },
    setDelay(direction, ms) {
      delay[direction] = ms;
    },
    hold(direction) {
      holding[direction] = true;
    },
    release(direction, keepHolding = false) {
      holding[direction] = false;
      for (const pipe of pipes) {
        const chunks = pipe.held[direction].splice(0);
        for (const chunk of chunks) forward(pipe, direction, chunk);
      }
      holding[direction] = keepHolding;
    },
    heldText,
    async waitForHeld(direction, predicate, timeoutMs = 5_000) {
      if (predicate(heldText(direction))) return;
      await new Promise<void>((resolve, reject) => {
        const onHeld = () => {
          if (!predicate(heldText(direction))) return;
          clearTimeout(timer);
          events.off('held', onHeld);
          resolve();
        };
        const timer = setTimeout(() => {
          events.off('held', onHeld);
          reject(new Error(`held ${direction} bytes did not match within ${timeoutMs} ms: ${JSON.stringify(heldText(direction).slice(0, 200))}`));
        }, timeoutMs);
        events.on('held', onHeld);
      });
    },
    halfOpen(on) {
      blackholed = on;
      propagateCloses = !on;
    },
    blackhole(on) {
      blackholed = on;
    },
    cutAll,
    async close() {
      cutAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
