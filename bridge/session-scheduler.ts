// Round-robin turns across sessions. A session with commands waiting dispatches at most a quantum of them per turn and
// then goes to the back of the ring; a session that had nothing waiting goes ahead of the ring (as fq_codel serves new
// flows first), so a bystander's command waits for one pass, not for whatever others sent. A cap on commands in flight
// over all sessions, and caps per token (commands in flight, reply bytes owed), hold dispatch back without losing a
// session's place. See docs/bridge.md, "Fairness".
import { WorkQueue } from './work-queue.ts';

/** What a turn left: nothing to dispatch, more waiting (the quantum or a shared cap ran out), or its own budget full. */
export type TurnResult = 'done' | 'more' | 'blocked';

/** A session as the scheduler sees it. */
export interface Runnable {
  readonly tokenBudget: TokenBudget;
  /** Dispatches at most `max` commands, asking {@link SessionScheduler.hasRoom} before each. */
  runTurn(max: number): TurnResult;
}

/** One token's share, summed over its sessions: commands in flight and reply bytes owed (queued towards clients). */
export class TokenBudget {
  inflight = 0;
  owedBytes = 0;
  /** Sessions of this token waiting for its budget to free up, in the order they waited. */
  readonly parked = new WorkQueue<Runnable>();

  readonly maxInflight: number;
  readonly maxOwedBytes: number;

  constructor(maxInflight: number, maxOwedBytes: number) {
    this.maxInflight = maxInflight;
    this.maxOwedBytes = maxOwedBytes;
  }

  get allows(): boolean {
    return this.inflight < this.maxInflight && this.owedBytes < this.maxOwedBytes;
  }
}

/** A token's limits (a ResolvedToken): its sessions share one budget. */
export interface TokenLimits {
  readonly maxInflight: number;
  readonly maxOwedBytes: number;
}

/** Commands a session may dispatch in one turn before the next session's turn. */
export const TURN_QUANTUM = 16;
/** Commands dispatched in one pass before the event loop reads sockets again: ~64 × a few µs is a short step. */
const PASS_COMMANDS = 64;

export class SessionScheduler {
  /** Sessions woken with nothing waiting before: served ahead of the ring, for one turn. */
  readonly #fresh = new WorkQueue<Runnable>();
  /** Sessions that used a whole turn and want more; a session that closed stays until reached and is then skipped. */
  readonly #ring = new WorkQueue<Runnable>();
  /** Sessions in the ring or parked on their token: each is queued at most once. */
  readonly #queued = new Set<Runnable>();
  #inflight = 0;
  #dispatchedTotal = 0;
  #passScheduled = false;
  #inPass = false;
  /** The last pass stopped at the global cap: a reply that frees room starts the next. */
  #waitingForRoom = false;

  readonly #budgets = new Map<TokenLimits, TokenBudget>();
  readonly #maxInflight: number;

  constructor(maxInflightTotal: number) {
    this.#maxInflight = maxInflightTotal;
  }

  /** The shared budget of every session of one token. */
  budgetFor(token: TokenLimits): TokenBudget {
    let budget = this.#budgets.get(token);
    if (!budget) this.#budgets.set(token, (budget = new TokenBudget(token.maxInflight, token.maxOwedBytes)));
    return budget;
  }

  /** Commands dispatched and not yet answered, over all sessions. */
  get inflight(): number {
    return this.#inflight;
  }

  /** May a session of `budget`'s token dispatch one more command now? */
  hasRoom(budget: TokenBudget): boolean {
    return this.#inflight < this.#maxInflight && budget.allows;
  }

  /**
   * `session` has commands to dispatch. With nobody waiting it runs at once (an idle bridge adds no delay);
   * otherwise it queues behind the sessions already waiting.
   */
  wake(session: Runnable): void {
    if (this.#queued.has(session)) return;
    if (!this.#inPass && this.#ring.length === 0 && this.#fresh.length === 0 && this.hasRoom(session.tokenBudget)) {
      this.#inPass = true;
      let result: TurnResult;
      try {
        result = session.runTurn(TURN_QUANTUM);
      } finally {
        this.#inPass = false;
      }
      if (result === 'more') this.#enqueue(session, this.#ring);
      return;
    }
    this.#enqueue(session, this.#fresh);
  }

  /** One command of `budget`'s token was dispatched. */
  dispatched(budget: TokenBudget): void {
    this.#inflight++;
    this.#dispatchedTotal++;
    budget.inflight++;
  }

  /** `n` commands of `budget`'s token were answered (their replies written) or dropped with their session. */
  answered(budget: TokenBudget, n: number): void {
    if (n === 0) return;
    this.#inflight -= n;
    budget.inflight -= n;
    this.#freed(budget);
  }

  /** Reply bytes owed to a session of `budget`'s token changed by `delta`. */
  owed(budget: TokenBudget, delta: number): void {
    if (delta === 0) return;
    budget.owedBytes += delta;
    if (delta < 0) this.#freed(budget);
  }

  /** The session closed: it takes no more turns (its commands were handed back through `answered`). */
  remove(session: Runnable): void {
    this.#queued.delete(session);
  }

  #freed(budget: TokenBudget): void {
    if (budget.parked.length > 0 && budget.allows) {
      // Back into the ring, in the order they parked; the ring's order decides from here.
      for (let s = budget.parked.shift(); s; s = budget.parked.shift()) if (this.#queued.has(s)) this.#fresh.push(s);
      this.#schedulePass();
    }
    if (this.#waitingForRoom && this.#inflight < this.#maxInflight) {
      this.#waitingForRoom = false;
      this.#schedulePass();
    }
  }

  #enqueue(session: Runnable, queue: WorkQueue<Runnable>): void {
    this.#queued.add(session);
    queue.push(session);
    this.#schedulePass();
  }

  #schedulePass(): void {
    if (this.#passScheduled) return;
    this.#passScheduled = true;
    // setImmediate: the poll phase (socket reads, so a bystander's message) runs between passes.
    setImmediate(() => this.#pass());
  }

  #pass(): void {
    this.#passScheduled = false;
    this.#inPass = true;
    const stopAt = this.#dispatchedTotal + PASS_COMMANDS;
    try {
      while (this.#dispatchedTotal < stopAt) {
        const queue = this.#fresh.length > 0 ? this.#fresh : this.#ring;
        const session = queue.peek();
        if (!session) break;
        if (!this.#queued.has(session)) {
          queue.shift();
          continue;
        }
        if (this.#inflight >= this.#maxInflight) {
          this.#waitingForRoom = true;
          return;
        }
        queue.shift();
        if (!session.tokenBudget.allows) {
          session.tokenBudget.parked.push(session);
          continue;
        }
        this.#queued.delete(session);
        const before = this.#dispatchedTotal;
        const result = session.runTurn(TURN_QUANTUM);
        if (result === 'more') {
          this.#queued.add(session);
          this.#ring.push(session);
        }
        // A turn that dispatched nothing (e.g. it only decoded) still counts, so a pass always ends.
        if (this.#dispatchedTotal === before) this.#dispatchedTotal++;
      }
    } finally {
      this.#inPass = false;
    }
    if (this.#ring.length > 0 || this.#fresh.length > 0) this.#schedulePass();
  }
}
