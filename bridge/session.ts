// One client WebSocket session: takes pipelined RESP commands from its input (session-input.ts), dispatches them in
// the turns the scheduler gives it (session-scheduler.ts) within its own budget, and has its output
// (session-output.ts) write replies in command order with invalidation pushes interleaved; it owns backpressure and
// the close. Replies that become ready in one turn leave together in one frame: a frame per reply cost a syscall each.
import type { RawData, WebSocket } from 'ws';
import { ProtocolError } from '../shared/errors.ts';
import { CLOSE_CODES } from '../shared/protocol.ts';
import { RespErrorReply } from '../shared/resp/types.ts';
import type { Allowlist } from './allowlist.ts';
import { CommandRunner, readySlot } from './command-runner.ts';
import type { Logger } from './log.ts';
import type { BridgeMetrics } from './metrics.ts';
import type { ResolvedBridgeOptions } from './options.ts';
import type { KeyPushRouter, PushTarget } from './push-router.ts';
import { SessionBudget } from './session-budget.ts';
import { onNextTurn } from './push-frames.ts';
import { SessionInput, type Work } from './session-input.ts';
import { SessionOutput } from './session-output.ts';
import { SessionSocket } from './session-socket.ts';
import type { Runnable, SessionScheduler, TokenBudget, TurnResult } from './session-scheduler.ts';
import type { ResolvedToken } from './token-options.ts';
import type { KeyTracker } from './tracker.ts';

export interface SessionContext {
  readonly options: ResolvedBridgeOptions;
  readonly allowlist: Allowlist;
  readonly tracker: KeyTracker;
  readonly router: KeyPushRouter<Session>;
  readonly scheduler: SessionScheduler;
  readonly metrics: BridgeMetrics;
  readonly log: Logger;
  /** Called once, when the WebSocket has closed. */
  readonly onClosed: (session: Session) => void;
}

let nextId = 1;

export class Session implements PushTarget, Runnable {
  readonly id = nextId++;
  readonly #runner: CommandRunner;
  readonly #input: SessionInput;
  readonly #output: SessionOutput;
  readonly #budget: SessionBudget;
  #pushScheduled = false;
  #flushScheduled = false;
  /** No more input is taken (protocol error or shutdown); set with the close to send once the slots drain. */
  #stopping: { code: number; reason: string } | null = null;
  #closed = false;
  #drainWaiters: Array<() => void> = [];

  readonly #socket: SessionSocket;
  readonly #ctx: SessionContext;

  constructor(ws: WebSocket, token: ResolvedToken, ctx: SessionContext) {
    this.#socket = new SessionSocket(ws, this.id, ctx.metrics, ctx.log);
    this.#ctx = ctx;
    this.#input = new SessionInput(ctx.options.maxFrameBytes, ctx.options.maxCommandsPerFrame);
    this.#budget = new SessionBudget(ctx.options.maxInflight, ctx.options.maxOwedBytes, ctx.scheduler, ctx.scheduler.budgetFor(token));
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
    ws.on('close', (code: number) => this.#guard(() => this.#onClose(code)));
  }

  /** Shared with every session of this token (commands in flight, bytes owed). */
  get tokenBudget(): TokenBudget {
    return this.#budget.token;
  }

  get isPaused(): boolean {
    return this.#socket.isPaused;
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
        this.#guard(() => {
          this.#output.flushPushes();
          if (!this.#closed) this.#budget.owed(this.#socket.bufferedAmount);
        });
      });
    }
  }

  /** Heartbeat tick: terminate when the previous ping got no pong, else ping again. */
  heartbeat(): void {
    if (this.#closed || this.#socket.heartbeat()) return;
    // Bytes can leave without a drain event (below the high-water mark): recount so the token's figure stays fresh.
    this.#budget.owed(this.#socket.bufferedAmount);
  }

  /**
   * Shutdown: take no more input, let dispatched commands finish (until `deadline`, epoch ms), then close with
   * 1001. Resolves when the close has been started.
   */
  async shutdown(deadline: number): Promise<void> {
    if (this.#closed) return;
    this.#stopping ??= { code: CLOSE_CODES.GOING_AWAY, reason: 'bridge shutting down' };
    this.#input.clear();
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
    this.#socket.terminate();
  }

  /**
   * The scheduler's turn: dispatches at most `max` commands while this session's budget, its token's and the
   * bridge's allow, writing the replies that are ready (a PING's at once, which frees its window again).
   */
  runTurn(max: number): TurnResult {
    let result: TurnResult = 'done';
    this.#guard(() => { result = this.#turn(max); });
    return result;
  }

  #turn(max: number): TurnResult {
    if (this.#closed || this.#stopping) return 'done';
    let dispatched = 0;
    let room = true;
    for (;;) {
      while (dispatched < max && this.#budget.allows(this.#output.slots.length, this.#socket.bufferedAmount)) {
        room = this.#budget.shared;
        if (!room) break;
        const work = this.#take();
        if (!work) break;
        this.#dispatch(work);
        dispatched++;
      }
      const written = this.#write();
      if (written === 0 || dispatched >= max || !room || this.#closed || this.#stopping) break;
    }
    this.#settle();
    if (!this.#input.pending || this.#stopping || this.#closed) return 'done';
    return dispatched >= max || !room ? 'more' : 'blocked';
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.#stopping || this.#closed) return;
    // Decoded lazily, a slice at a time in the session's turns; the socket stays paused until the message is consumed.
    const counts = this.#ctx.metrics.perFrame;
    counts.bytesIn += this.#input.push(data, isBinary);
    counts.messagesIn++;
    this.#process();
  }

  /** The next command, or undefined; malformed RESP answers what was dispatched, then the error, then closes. */
  #take(): Work | undefined {
    try {
      return this.#input.next();
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.#ctx.metrics.error(err.closeCode === CLOSE_CODES.MESSAGE_TOO_BIG ? 'too_big' : 'protocol');
      this.#ctx.log.info('session sent malformed RESP; closing', { session: this.id, code: err.code });
      this.#input.clear();
      this.#stopping = { code: err.closeCode, reason: 'malformed RESP' };
      this.#setPaused(true);
      this.#output.slots.push(readySlot(new RespErrorReply(`ERR protocol: ${err.message.replace(/[\r\n]+/g, ' ')}`)));
      this.#budget.dispatched(); // in flight until written, like any reply
      return undefined;
    }
  }

  #dispatch(work: Work): void {
    this.#budget.dispatched();
    if ('reply' in work) {
      this.#ctx.metrics.error(work.kind);
      this.#output.slots.push(readySlot(work.reply));
    } else {
      this.#output.slots.push(this.#runner.start(work.command));
    }
  }

  /** Writes the replies that are ready, handing their places back to the budgets. */
  #write(): number {
    const written = this.#output.writeReady();
    this.#budget.answered(written);
    this.#budget.owed(this.#socket.bufferedAmount);
    return written;
  }

  /** Writes every reply that is ready and asks for a turn when commands wait (the scheduler may run it at once). */
  #process(): void {
    if (this.#closed) return;
    this.#write();
    if (this.#closed) return;
    if (this.#input.pending && !this.#stopping) this.#ctx.scheduler.wake(this);
    this.#settle();
  }

  /** TCP backpressure while commands (or the rest of a message) wait; the close once a stopping session is answered. */
  #settle(): void {
    if (this.#closed) return;
    this.#setPaused(this.#input.pending || (this.#stopping !== null && this.#socket.isOpen));
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

  #setPaused(paused: boolean): void {
    if (!this.#closed) this.#socket.setPaused(paused);
  }

  #closeWith(code: number, reason: string): void {
    if (this.#closed) return;
    this.#stopping ??= { code, reason };
    // Nothing more runs: with no input pending, settle() never pauses the socket again before the close completes.
    this.#input.clear();
    // Input is ignored once stopping.
    this.#socket.close(code, reason);
  }

  #onClose(code: number): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const slot of this.#output.slots) this.#runner.release(slot);
    this.#budget.answered(this.#output.slots.length);
    this.#output.slots.length = 0;
    this.#budget.owed(0);
    this.#ctx.scheduler.remove(this);
    this.#input.clear();
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
        if (this.#socket.isOpen) this.#closeWith(CLOSE_CODES.INTERNAL_ERROR, 'internal error');
        else this.#socket.terminate();
      } catch {
        this.#socket.terminate();
      }
    }
  }
}
