// One coordinator-in-miniature's WebSocket to the bridge: pipelined commands with replies in order, invalidation
// pushes handed over synchronously in arrival order (so a push that precedes a reply is seen before it), and one
// error for every command in flight when the socket goes. Opened on demand; every wait is bounded.
import WebSocket from 'ws';
import { INVALIDATE, RESP_SUBPROTOCOL } from '../../shared/protocol.ts';
import { RespDecoder, RespErrorReply, RespPush, encodeCommand, type RespValue } from '../../shared/resp/index.ts';

export type Arg = string | number | Uint8Array;

/** A command lost with its socket, or refused because no socket could be opened in time. */
export class SessionDownError extends Error {
  override name = 'SessionDownError';
}

/** An error reply from the bridge (`-TRYAGAIN ...`, `-NOPERM ...`). */
export class BridgeReplyError extends Error {
  override name = 'BridgeReplyError';
  get code(): string {
    return this.message.split(' ')[0]!;
  }
}

export interface SessionHandlers {
  /** Keys to drop, or null for everything. Called synchronously, before later replies resolve. */
  onPush(keys: string[] | null): void;
  /** The socket closed (any reason): everything cached may be stale. */
  onClose(): void;
}

const text = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');

export class MiniSession {
  #ws: WebSocket | null = null;
  #opening: Promise<WebSocket> | null = null;
  #pending: Array<{ resolve(v: RespValue): void; reject(e: Error): void }> = [];
  #stopped = false;
  /** Sockets opened so far (reconnects are this minus one). */
  opens = 0;

  constructor(private readonly url: string, private readonly token: string, private readonly handlers: SessionHandlers) {}

  get isOpen(): boolean {
    return this.#ws !== null;
  }

  /** Sends one command, opening the socket if needed (retrying until `deadlineAt`, epoch-free perf clock ms). */
  async command(args: readonly Arg[], deadlineAt: number): Promise<RespValue> {
    const ws = this.#ws ?? (await this.#open(deadlineAt));
    if (ws !== this.#ws) throw new SessionDownError('socket replaced before the command was sent');
    return new Promise<RespValue>((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      ws.send(encodeCommand(args));
    });
  }

  /** Cuts the socket without a close handshake (a crash). */
  terminate(): void {
    this.#ws?.terminate();
  }

  /** Stops for good: closes the socket and refuses further commands. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const ws = this.#ws;
    if (ws === null) return;
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.close(1000);
    const timer = setTimeout(() => ws.terminate(), 1_000);
    await closed;
    clearTimeout(timer);
  }

  #open(deadlineAt: number): Promise<WebSocket> {
    this.#opening ??= this.#connectLoop(deadlineAt).finally(() => { this.#opening = null; });
    return this.#opening;
  }

  async #connectLoop(deadlineAt: number): Promise<WebSocket> {
    for (let attempt = 0; ; attempt++) {
      if (this.#stopped) throw new SessionDownError('session stopped');
      try {
        return await this.#connectOnce(Math.max(50, deadlineAt - performance.now()));
      } catch (error) {
        const waitMs = Math.min(20 * 2 ** attempt, 200) * Math.random();
        if (performance.now() + waitMs >= deadlineAt) throw new SessionDownError(`cannot reach the bridge: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, waitMs));
      }
    }
  }

  #connectOnce(timeoutMs: number): Promise<WebSocket> {
    const ws = new WebSocket(this.url, [RESP_SUBPROTOCOL], { headers: { authorization: `Bearer ${this.token}` }, perMessageDeflate: false });
    return new Promise<WebSocket>((resolve, reject) => {
      const timer = setTimeout(() => { ws.terminate(); reject(new Error('connect timed out')); }, timeoutMs);
      ws.once('unexpected-response', (_req, res) => { res.resume(); ws.terminate(); });
      ws.once('error', (err) => { clearTimeout(timer); reject(err); });
      ws.once('open', () => {
        clearTimeout(timer);
        if (this.#stopped) { ws.terminate(); reject(new SessionDownError('session stopped')); return; }
        this.#install(ws);
        resolve(ws);
      });
    });
  }

  #install(ws: WebSocket): void {
    this.opens++;
    this.#ws = ws;
    const decoder = new RespDecoder();
    ws.on('error', () => undefined);
    ws.on('message', (data: Buffer) => {
      if (ws !== this.#ws) return;
      for (const value of decoder.feed(data)) {
        if (value instanceof RespPush) {
          const [kind, keys] = value.items;
          if (!(kind instanceof Uint8Array) || text(kind) !== INVALIDATE) continue;
          this.handlers.onPush(keys === null ? null : (keys as Uint8Array[]).map(text));
          continue;
        }
        const pending = this.#pending.shift();
        if (pending === undefined) throw new Error('the bridge sent a reply to no command');
        if (value instanceof RespErrorReply) pending.reject(new BridgeReplyError(value.message));
        else pending.resolve(value);
      }
    });
    ws.on('close', () => {
      if (ws !== this.#ws) return;
      this.#ws = null;
      const pending = this.#pending.splice(0);
      // Drop state before failing commands, so no caller acts on a cache that missed pushes.
      this.handlers.onClose();
      for (const p of pending) p.reject(new SessionDownError('socket closed with the command in flight'));
    });
  }
}
