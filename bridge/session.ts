// One client WebSocket session: takes pipelined RESP commands from its input (session-input.ts), runs them through
// the allowlist on the tracked connection, and has its output (session-output.ts) write replies in command order
// with invalidation pushes interleaved; it owns the turn, backpressure and the close. Cacheability of a
// TRACKED.GET is decided when its reply is written, not when Valkey answered (docs/bridge.md, "Race safety").
// Replies that become ready in one turn leave together in one frame: a frame per reply cost a syscall each.
import type { RawData, WebSocket } from 'ws';
import { ProtocolError } from '../shared/errors.ts';
import { CLOSE_CODES } from '../shared/protocol.ts';
import { RespErrorReply, type RespValue } from '../shared/resp/types.ts';
import type { Allowlist } from './allowlist.ts';
import { CommandRunner, readySlot } from './command-runner.ts';
import type { Logger } from './log.ts';
import type { BridgeMetrics, ErrorKind } from './metrics.ts';
import type { ResolvedBridgeOptions } from './options.ts';
import type { KeyPushRouter, PushTarget } from './push-router.ts';
import { SessionBudget } from './session-budget.ts';
import { SessionInput } from './session-input.ts';
import { onNextTurn } from './push-frames.ts';
import { SessionOutput } from './session-output.ts';
import type { ResolvedToken } from './token-options.ts';
import type { Tracker } from './tracker.ts';
import { WorkQueue } from './work-queue.ts';

export interface SessionContext {
  readonly options: ResolvedBridgeOptions;
  readonly allowlist: Allowlist;
  readonly tracker: Tracker;
  readonly router: KeyPushRouter<Session>;
  readonly metrics: BridgeMetrics;
  readonly log: Logger;
  /** Called once, when the WebSocket has closed. */
  readonly onClosed: (session: Session) => void;
}

/** A command accepted from the client: a decoded value, or a reply the bridge already knows (a text frame). */
type Work = { command: RespValue } | { reply: RespErrorReply; kind: ErrorKind };

/** Commands one session may dispatch (or answer itself) per event-loop turn before it yields to the others. */
const TURN_COMMANDS = 256;
const TEXT_FRAME = 'ERR protocol: text frames are not supported; send RESP in binary frames';
let nextId = 1;

export class Session implements PushTarget {
  readonly id = nextId++;
  /** Set false by the heartbeat when it pings; a pong sets it back. */
  alive = true;
  readonly #runner: CommandRunner;
  readonly #backlog = new WorkQueue<Work>();
  readonly #output: SessionOutput;
  #pushScheduled = false;
  #flushScheduled = false;
  #paused = false;
  /** No more input is taken (protocol error or shutdown); set with the close to send once the slots drain. */
  #stopping: { code: number; reason: string } | null = null;
  #closed = false;
  #processing = false;
  #drainWaiters: Array<() => void> = [];
  readonly #budget: SessionBudget;
  readonly #inputs: SessionInput;
  #yieldScheduled = false;

  readonly #ws: WebSocket;
  readonly #token: ResolvedToken;
  readonly #ctx: SessionContext;

  constructor(
    ws: WebSocket,
    token: ResolvedToken,
    ctx: SessionContext,
  ) {
    this.#ws = ws;
    this.#token = token;
    this.#ctx = ctx;
    this.#inputs = new SessionInput(ctx.options.maxFrameBytes, ctx.options.maxCommandsPerFrame);
    this.#budget = new SessionBudget(ctx.options.maxInflight, ctx.options.maxOwedBytes);
    // Dispatch stops while replies are owed; the socket's drain is when they have left.
    (ws as unknown as { _socket?: NodeJS.EventEmitter })._socket?.on('drain', () => this.#guard(() => this.#process()));
    this.#runner = new CommandRunner(
      { ...ctx, commandTimeoutMs: ctx.options.commandTimeoutMs },
      token.prefix,
      this.id,
      () => this.#scheduleFlush(),
    );
    this.#output = new SessionOutput(ws, {
      metrics: ctx.metrics,
      log: ctx.log,
      maxBufferedBytes: ctx.options.maxBufferedBytes,
      sessionId: this.id,
      runner: this.#runner,
      budget: this.#budget,
      target: this,
      isClosed: () => this.#closed,
      onSlowReader: () => this.#closeWith(CLOSE_CODES.POLICY_VIOLATION, 'outbound buffer over maxBufferedBytes'),
    });
    ws.on('message', (data: RawData, isBinary: boolean) => this.#guard(() => this.#onMessage(data, isBinary)));
    ws.on('pong', () => { this.alive = true; });
    ws.on('error', (err: Error) => {
      // ws closes the session itself: 1009 over maxPayload, 1002/1007 for WebSocket-level violations.
      const code = (err as { code?: string }).code;
      if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') ctx.metrics.error('too_big');
      else if (code?.startsWith('WS_ERR_')) ctx.metrics.error('protocol');
      ctx.log.debug('session socket error', { session: this.id, error: err });
    });
    ws.on('close', (code: number) => this.#guard(() => this.#onClose(code)));
  }

  get isPaused(): boolean {
    return this.#paused;
  }

  queuePush(keys: readonly string[] | null, immediate: boolean): void {
    if (this.#closed) return;
    this.#output.addPush(keys);
    // A write's push goes out with this turn's replies, ahead of them (writeReady takes pushes first), so it still
    // precedes the writer's reply without a frame of its own.
    if (immediate) {
      this.#scheduleFlush();
    } else if (!this.#pushScheduled) {
      this.#pushScheduled = true;
      onNextTurn(() => {
        this.#pushScheduled = false;
        this.#guard(() => this.#output.flushPushes());
      });
    }
  }

  /** Heartbeat tick: terminate when the previous ping got no pong, else ping again. */
  heartbeat(): void {
    if (this.#closed) return;
    if (!this.alive) {
      this.#ctx.metrics.error('heartbeat');
      this.#ctx.log.info('session missed a heartbeat; terminating', { session: this.id });
      this.#ws.terminate();
      return;
    }
    this.alive = false;
    try {
      this.#ws.ping();
    } catch {
      // Closing already.
    }
  }

  /**
   * Shutdown: take no more input, let dispatched commands finish (until `deadline`, epoch ms), then close with
   * 1001. Resolves when the close has been started.
   */
  async shutdown(deadline: number): Promise<void> {
    if (this.#closed) return;
    this.#stopping ??= { code: CLOSE_CODES.GOING_AWAY, reason: 'bridge shutting down' };
    this.#backlog.clear();
    this.#inputs.clear();
    this.#setPaused(true);
    if (this.#output.slots.length > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        this.#drainWaiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
    this.#closeWith(CLOSE_CODES.GOING_AWAY, 'bridge shutting down');
  }

  /** Kills the socket without a close handshake. */
  terminate(): void {
    this.#ws.terminate();
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.#stopping || this.#closed) return;
    const chunk = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    this.#ctx.metrics.frameBytesIn.inc(chunk.length);
    this.#ctx.metrics.messagesIn.inc();
    if (!isBinary) {
      this.#backlog.push({ reply: new RespErrorReply(TEXT_FRAME), kind: 'protocol' });
      this.#process();
      return;
    }
    // Decoded lazily, a slice at a time as the session's budget frees up (decodeMore): a message of 65536 commands
    // is never all turned into objects at once, and the socket stays paused until the message is consumed.
    // ws may still deliver a message it had already read when the socket was paused: queue it behind this one.
    this.#inputs.push(chunk);
    this.#process();
  }

  /** Decodes the next slice of the current message into the backlog. False on a protocol failure. */
  #decodeMore(): boolean {
    try {
      this.#inputs.decodeSlice((command) => this.#backlog.push({ command }));
      return true;
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.#protocolFailure(err);
      return false;
    }
  }

  /** Malformed RESP: commands already dispatched are answered, then the error reply, then close (1002 or 1009). */
  #protocolFailure(err: ProtocolError): void {
    this.#ctx.metrics.error(err.closeCode === CLOSE_CODES.MESSAGE_TOO_BIG ? 'too_big' : 'protocol');
    this.#ctx.log.info('session sent malformed RESP; closing', { session: this.id, code: err.code });
    this.#backlog.clear();
    this.#inputs.clear();
    this.#stopping = { code: err.closeCode, reason: 'malformed RESP' };
    this.#setPaused(true);
    this.#output.slots.push(readySlot(new RespErrorReply(`ERR protocol: ${err.message.replace(/[\r\n]+/g, ' ')}`)));
    this.#process();
  }

  /**
   * Dispatches from the backlog (decoding more of the message as needed) while the session's budget allows, and
   * writes every reply that is ready, in order. At most TURN_COMMANDS per turn: then it yields (setImmediate), so
   * that sessions take turns on the event loop whatever one of them sends.
   */
  #process(): void {
    if (this.#processing || this.#closed) return;
    this.#processing = true;
    let dispatched = 0;
    try {
      for (;;) {
        let progress = false;
        while (!this.#stopping && dispatched < TURN_COMMANDS && this.#budget.allows(this.#output.slots.length, this.#ws.bufferedAmount)) {
          if (this.#backlog.length === 0 && (this.#inputs.length === 0 || !this.#decodeMore())) break;
          if (this.#backlog.length === 0) continue;
          this.#dispatch(this.#backlog.shift()!);
          dispatched++;
          progress = true;
        }
        if (this.#output.writeReady() > 0) progress = true;
        if (!progress || this.#closed) break;
      }
    } finally {
      this.#processing = false;
    }
    if (this.#closed) return;
    const waiting = this.#backlog.length > 0 || this.#inputs.length > 0;
    if (waiting && dispatched >= TURN_COMMANDS && !this.#yieldScheduled) {
      this.#yieldScheduled = true;
      setImmediate(() => {
        this.#yieldScheduled = false;
        this.#guard(() => this.#process());
      });
    }
    // TCP backpressure: stop reading while commands (or the rest of a message) wait for the budget.
    this.#setPaused(waiting || (this.#stopping !== null && this.#ws.readyState === this.#ws.OPEN));
    if (this.#output.slots.length === 0) {
      if (this.#stopping) this.#closeWith(this.#stopping.code, this.#stopping.reason);
      for (const wake of this.#drainWaiters.splice(0)) wake();
    }
  }

  /** Runs `process()` once at the end of this turn, so that every reply that settles in the turn shares one frame. */
  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#closed) return;
    this.#flushScheduled = true;
    // Slots settle in promise callbacks; a nextTick queued there runs once the microtask queue has drained, when every
    // reply parsed from one read of Valkey is ready.
    process.nextTick(() => {
      this.#flushScheduled = false;
      this.#guard(() => this.#process());
    });
  }

  #dispatch(work: Work): void {
    if ('reply' in work) {
      this.#ctx.metrics.error(work.kind);
      this.#output.slots.push(readySlot(work.reply));
    } else {
      this.#output.slots.push(this.#runner.start(work.command));
    }
  }

  #setPaused(paused: boolean): void {
    if (paused === this.#paused || this.#closed) return;
    this.#paused = paused;
    if (paused) this.#ws.pause();
    else this.#ws.resume();
  }

  #closeWith(code: number, reason: string): void {
    if (this.#closed) return;
    this.#stopping ??= { code, reason };
    // Nothing more runs: without a backlog, process() never pauses the socket again before the close completes.
    this.#backlog.clear();
    this.#inputs.clear();
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    // Read again so that the peer's close frame is seen; input is ignored once stopping.
    this.#paused = false;
    this.#ws.resume();
    this.#ws.close(code, reason);
  }

  #onClose(code: number): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const slot of this.#output.slots) this.#runner.release(slot);
    this.#output.slots.length = 0;
    this.#backlog.clear();
    this.#inputs.clear();
    this.#output.clearPushes();
    this.#ctx.router.removeSession(this);
    for (const wake of this.#drainWaiters.splice(0)) wake();
    this.#ctx.log.debug('session closed', { session: this.id, code });
    this.#ctx.onClosed(this);
  }

  /** Nothing a client sends may crash the process: an unexpected error closes this session with 1011. */
  #guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#ctx.metrics.error('internal');
      this.#ctx.log.error('session failed; closing with 1011', { session: this.id, error: err as Error });
      this.#stopping = { code: CLOSE_CODES.INTERNAL_ERROR, reason: 'internal error' };
      try {
        if (this.#ws.readyState === this.#ws.OPEN) this.#closeWith(CLOSE_CODES.INTERNAL_ERROR, 'internal error');
        else this.#ws.terminate();
      } catch {
        this.#ws.terminate();
      }
    }
  }
}
