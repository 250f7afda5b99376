// The coordinator's WebSocket to the bridge: opened on demand (bridge-connector.ts: backoff, the next bridge listed,
// reopening), it pipelines RESP commands with replies resolved in order, dispatches invalidation pushes, and turns
// every close or error into one ConnectionError for all commands in flight.
import { ConnectionError, ProtocolError, ValkeyasideError } from '../shared/errors.ts';
import { RespDecoder, RespErrorReply, RespPush, encodeCommand } from '../shared/resp/index.ts';
import type { RespValue } from '../shared/resp/index.ts';
import { droppedError, markDropped, replyFailure } from './bridge-errors.ts';
import { BridgeConnector, type BridgeConnectorOptions } from './bridge-connector.ts';
import { errorMessage } from './errors.ts';
import { invalidatedKeys } from './invalidation-push.ts';
import { batchMessages } from './message-batches.ts';
import { SocketLiveness } from './socket-liveness.ts';

export interface BridgeSocketOptions extends BridgeConnectorOptions {
  /** Commands awaiting replies before new ones are refused with `ERR_OVERLOADED`. */
  readonly maxQueuedCommands: number;
  /** An open socket with commands waiting and nothing received for this long is taken for dead and closed. */
  readonly replyTimeoutMs: number;
  /** An open socket that received nothing for this long sends a PING, which the reply timeout then watches. */
  readonly heartbeatMs: number;
}

export interface BridgeSocketHandlers {
  /** Keys to drop (binary strings: exactly the bytes pushed), or null for "drop everything". */
  onPush(keys: string[] | null): void;
  /** A socket opened; runs before the commands that waited for it are sent. */
  onOpen(): void;
  /** An open socket closed or failed (not called for `close()`). Every command in flight is rejected with `error`. */
  onClose(error: ConnectionError): void;
}

type Argument = string | number | Uint8Array;

interface Pending {
  resolve(value: RespValue): void;
  reject(error: unknown): void;
}

/** Largest message we send; commands are never split, so one huge command may exceed it alone. */
const MAX_MESSAGE_BYTES = 1024 * 1024;
/** workerd delivers at most 32 MiB per message; a bulk reply can be no larger. */
const MAX_REPLY_BYTES = 32 * 1024 * 1024;

export class BridgeSocket {
  readonly #options: BridgeSocketOptions;
  readonly #handlers: BridgeSocketHandlers;
  readonly #connector: BridgeConnector;
  #ws: WebSocket | null = null;
  #decoder: RespDecoder | null = null;
  #pending: Pending[] = [];
  #outbox: Uint8Array[] = [];
  #flushQueued = false;
  #liveness: SocketLiveness | null = null;
  /** The protocol version the bridge selected for the open socket (1 when it selected none). */
  #version = 1;

  constructor(options: BridgeSocketOptions, handlers: BridgeSocketHandlers) {
    this.#options = options;
    this.#handlers = handlers;
    this.#connector = new BridgeConnector(options, {
      connected: (ws, version) => {
        this.#version = version;
        this.#install(ws);
        this.#handlers.onOpen();
      },
      isOpen: () => this.#ws !== null,
    });
  }

  /** The bridge the socket is open to, or the one the next attempt goes to. */
  get bridgeUrl(): string {
    return this.#connector.current;
  }

  get isOpen(): boolean {
    return this.#ws !== null;
  }

  /** True while the open socket speaks protocol v2 (TRACKED.SETKEY); false when closed or on an older bridge. */
  get hasTrackedSetkey(): boolean {
    return this.#ws !== null && this.#version >= 2;
  }

  /** Commands sent and not yet answered. */
  get inFlight(): number {
    return this.#pending.length;
  }

  /** While true, a socket that drops or fails to open is reopened in the background (with backoff). */
  set autoReconnect(on: boolean) {
    this.#connector.autoReconnect = on;
  }

  /**
   * Sends one command (opening the socket if needed) and resolves with its reply.
   * @param deadlineAt epoch ms: when the socket is down and the next attempt would start after it, fail at once.
   * @throws ReplyError for an error reply; ConnectionError when the socket cannot open or drops (see `isDropped`);
   *   ValkeyasideError `ERR_OVERLOADED` past `maxQueuedCommands`.
   */
  command(args: readonly Argument[], deadlineAt = Infinity): Promise<RespValue> {
    const ws = this.#ws;
    if (ws !== null) return this.#enqueue(ws, args);
    return this.#connector.open(deadlineAt).then((opened) => this.#enqueue(opened, args));
  }

  /**
   * Closes the socket on purpose (no `onClose`, no reconnect); commands in flight fail. The next opening starts at
   * the coordinator's first pick of bridge again.
   */
  close(reason: string): void {
    this.autoReconnect = false;
    this.#connector.reset();
    const ws = this.#ws;
    if (ws !== null) this.#drop(ws, new ConnectionError(`bridge connection closed: ${reason}`), false, 1000, reason);
  }

  #enqueue(ws: WebSocket, args: readonly Argument[]): Promise<RespValue> {
    if (ws !== this.#ws) return Promise.reject(droppedError('bridge connection closed before the command was sent'));
    if (this.#pending.length >= this.#options.maxQueuedCommands) {
      return Promise.reject(new ValkeyasideError('ERR_OVERLOADED',
        `${this.#pending.length} commands await the bridge's replies; retry later or raise the coordinator's limits`));
    }
    let bytes: Uint8Array;
    try {
      bytes = encodeCommand(args);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<RespValue>((resolve, reject) => {
      this.#liveness?.commandQueued(this.#pending.length === 0);
      this.#pending.push({ resolve, reject });
      this.#outbox.push(bytes);
      if (!this.#flushQueued) {
        this.#flushQueued = true;
        queueMicrotask(() => this.#flush());
      }
    });
  }

  /** Sends every command queued in this turn, batched into as few messages as the size limit allows. */
  #flush(): void {
    this.#flushQueued = false;
    const ws = this.#ws;
    const chunks = this.#outbox;
    this.#outbox = [];
    if (ws === null || chunks.length === 0) return;
    try {
      for (const message of batchMessages(chunks, MAX_MESSAGE_BYTES)) ws.send(message);
    } catch (error) {
      this.#drop(ws, new ConnectionError(`sending to the bridge failed: ${errorMessage(error)}`, { cause: error }), true, 1011, 'send failed');
    }
  }

  #install(ws: WebSocket): void {
    this.#ws = ws;
    this.#liveness = new SocketLiveness(this.#options.replyTimeoutMs, this.#options.heartbeatMs, {
      waiting: () => this.#pending.length,
      ping: () => { this.#enqueue(ws, ['PING']).catch(() => {}); },
      dead: (silentMs) => this.#drop(ws, new ConnectionError(`the bridge sent nothing for ${silentMs} ms while ${this.#pending.length} commands waited`), true, 1001, 'no replies'),
    });
    this.#decoder = new RespDecoder({ maxBulkBytes: MAX_REPLY_BYTES });
    ws.addEventListener('message', (event) => this.#onMessage(ws, event.data));
    ws.addEventListener('close', (event) => {
      this.#drop(ws, new ConnectionError(`the bridge closed the connection (${event.code}${event.reason ? ` ${event.reason}` : ''})`), true);
    });
    ws.addEventListener('error', (event) => {
      const cause = (event as { error?: unknown }).error;
      const message = (event as { message?: string }).message || errorMessage(cause ?? 'WebSocket error');
      this.#drop(ws, new ConnectionError(`the bridge connection failed: ${message}`, { cause }), true);
    });
  }

  #onMessage(ws: WebSocket, data: unknown): void {
    if (ws !== this.#ws || this.#decoder === null) return;
    if (!(data instanceof ArrayBuffer)) {
      this.#drop(ws, new ConnectionError('the bridge sent a text frame; it must send RESP in binary frames'), true, 1002, 'text frame');
      return;
    }
    let values: RespValue[];
    try {
      values = this.#decoder.feed(new Uint8Array(data));
    } catch (error) {
      const code = error instanceof ProtocolError ? error.closeCode : 1002;
      this.#drop(ws, new ConnectionError(`the bridge sent malformed RESP: ${errorMessage(error)}`, { cause: error }), true, code, 'malformed RESP');
      return;
    }
    this.#liveness?.progress();
    // A reply proves the socket works: the next failure starts the backoff afresh.
    if (values.length > 0) this.#connector.succeeded();
    for (const value of values) {
      if (ws !== this.#ws) return;
      if (value instanceof RespPush) {
        const keys = invalidatedKeys(value);
        if (keys !== undefined) this.#handlers.onPush(keys);
        continue;
      }
      const pending = this.#pending.shift();
      if (pending === undefined) {
        this.#drop(ws, new ConnectionError('the bridge sent a reply to no command'), true, 1002, 'unexpected reply');
        return;
      }
      if (value instanceof RespErrorReply) pending.reject(replyFailure(value));
      else pending.resolve(value);
    }
  }

  /** Forgets `ws`, fails its commands with `error` and, for an unplanned close, tells the handler and reconnects. */
  #drop(ws: WebSocket, error: ConnectionError, unplanned: boolean, code = 1000, reason = ''): void {
    if (ws !== this.#ws) return;
    this.#ws = null;
    this.#liveness?.stop();
    this.#liveness = null;
    this.#decoder = null;
    const pending = this.#pending;
    this.#pending = [];
    this.#outbox = [];
    try {
      ws.close(code, reason.slice(0, 120));
    } catch {
      try {
        ws.close(1000, reason.slice(0, 120));
      } catch {
        // already closed or failed: nothing to send
      }
    }
    markDropped(error);
    for (const command of pending) command.reject(error);
    if (!unplanned) return;
    // Backed off and moved on before the handler runs, so a command it sends opens the next bridge, not this one.
    this.#connector.dropped();
    this.#handlers.onClose(error);
  }
}
