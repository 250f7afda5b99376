// Runs one client command: shape checks, the allowlist, the call on the tracked connection, the write-through
// invalidation, and — when the session writes the reply — the TRACKED.GET cacheability decision. The session
// owns ordering and the socket; this file owns what a command does.
import { RespErrorReply, type RespValue } from '../shared/resp/types.ts';
import type { Allowlist, CommandPlan } from './allowlist.ts';
import type { Logger } from './log.ts';
import type { BridgeMetrics } from './metrics.ts';
import type { KeyPushRouter, PushTarget } from './push-router.ts';
import type { KeyTracker, PendingRead } from './tracker.ts';
import { ownInvalidationSeen, setkeyCacheable, setkeyTracked } from './tracked-setkey.ts';
import { latin1 } from './valkey-connection.ts';
import { failureReply, mayHaveRun, toRespValue } from './valkey-reply.ts';

/** A command's place in its session's reply order. `ready` once `reply` (or `read`) is known. */
export interface Slot {
  ready: boolean;
  reply: RespValue;
  /** TRACKED.GET: the pending-read token, held until the reply is written. */
  token?: PendingRead;
  /** TRACKED.GET: Valkey's answer, turned into the reply by {@link CommandRunner.finish}. */
  read?: { value: Buffer | null; pttl: number; capMs: number };
  /** TRACKED.SETKEY: whether the compare-and-set stored the value (the reply then leads with `stored`). */
  stored?: boolean;
}

export interface RunnerContext {
  readonly allowlist: Allowlist;
  readonly tracker: KeyTracker;
  readonly router: KeyPushRouter<PushTarget>;
  readonly metrics: BridgeMetrics;
  readonly log: Logger;
  readonly commandTimeoutMs: number;
}

type WritePlan = Extract<CommandPlan, { kind: 'write' }>;

/** A slot already answered by the bridge itself. */
export const readySlot = (reply: RespValue): Slot => ({ ready: true, reply });

export class CommandRunner {
  readonly #ctx: RunnerContext;
  readonly #prefix: Uint8Array | null;
  readonly #sessionId: number;
  readonly #onReady: () => void;

  /**
   * @param prefix the session token's key prefix (bytes) or null
   * @param onReady called (possibly synchronously) whenever a slot becomes ready
   */
  constructor(
    ctx: RunnerContext,
    prefix: Uint8Array | null,
    sessionId: number,
    onReady: () => void,
  ) {
    this.#ctx = ctx;
    this.#prefix = prefix;
    this.#sessionId = sessionId;
    this.#onReady = onReady;
  }

  /**
   * Starts one decoded command. Anything sent to Valkey is sent before this returns, so the session's commands
   * reach the data connection in command order.
   */
  start(command: RespValue): Slot {
    const m = this.#ctx.metrics;
    if (!Array.isArray(command)) return this.#refuse('ERR protocol: commands must be RESP arrays of bulk strings');
    if (command.length === 0) return this.#refuse('ERR protocol: empty command');
    if (!command.every((a) => a instanceof Uint8Array)) return this.#refuse('ERR protocol: command arguments must be bulk strings');
    const plan = this.#ctx.allowlist.plan(command as Uint8Array[], this.#prefix);
    m.command(this.#ctx.allowlist.label(plan.command));
    if (this.#ctx.log.enabled('debug')) this.#ctx.log.debug('command', { session: this.#sessionId, command: plan.command });
    const tracker = this.#ctx.tracker;
    switch (plan.kind) {
      case 'reply':
        if (plan.refusal) m.error(plan.refusal);
        // PING is a client's health check: it says whether the bridge can serve, not only that it is up.
        if (plan.command === 'PING' && !plan.refusal && !tracker.health().tracking) {
          return readySlot(new RespErrorReply('TRYAGAIN valkey is unavailable (the bridge has no tracked connection)'));
        }
        return readySlot(plan.reply);
      case 'tracked-get':
        return this.#trackedGet(plan.key, plan.capMs);
      case 'tracked-setkey':
        return this.#trackedSetkey(plan);
      case 'read':
        return this.#run(() => tracker.call(plan.command.toLowerCase(), plan.args.slice(1)), false, null);
      case 'write':
        return this.#run(
          // iovalkey's argument and reply transformers are keyed by lower-case name (HSET key ab became HSET key 0 97
          // 1 98, HGETALL an object): an extension goes out under its upper-case name, untouched.
          () => (plan.script
            ? tracker.evalScript(plan.script, plan.args)
            : tracker.call(plan.extension ? plan.command : plan.command.toLowerCase(), plan.args.slice(1))),
          plan.statusReply,
          plan,
        );
    }
  }

  /**
   * The reply to write for a ready slot, now. For a TRACKED.GET this is the moment of truth: cacheable only if its
   * token is still unpoisoned as the reply is written; then `session` is registered as a reader of the key.
   */
  finish(slot: Slot, session: PushTarget): RespValue {
    const { token, read } = slot;
    if (token) this.#ctx.tracker.endRead(token);
    if (!token || !read) return slot.reply;
    const ttlMs = read.pttl >= 0 ? Math.min(read.pttl, read.capMs) : read.capMs;
    const stored = slot.stored;
    const cacheable = ttlMs > 0 && (stored === undefined ? this.#ctx.tracker.isCacheable(token) : setkeyCacheable(this.#ctx.tracker, token, stored));
    if (cacheable) this.#ctx.router.registerRead(session, token.key);
    // The key changed while the read was in flight, and this session was not yet a reader, so the push went to
    // others only. Send it here too, ahead of the reply: a client waiting on the key (a lock holder's store) must
    // wake and read again, not wait for a push that already went by. Flushes and new epochs push to everyone anyway.
    else if (token.hits > 0 && token.epoch === this.#ctx.tracker.epoch) session.queuePush([token.key], true);
    if (stored !== undefined) return [stored, stored ? null : read.value, cacheable ? ttlMs : 0, cacheable];
    return [read.value, cacheable ? ttlMs : 0, cacheable];
  }

  /** The session closed before writing `slot`: release its token. */
  release(slot: Slot): void {
    if (slot.token) this.#ctx.tracker.endRead(slot.token);
  }

  #refuse(message: string): Slot {
    this.#ctx.metrics.command('OTHER');
    this.#ctx.metrics.error('protocol');
    return readySlot(new RespErrorReply(message));
  }

  #trackedGet(key: Uint8Array, capMs: number): Slot {
    // The token exists before the read is sent: an invalidation arriving at any later moment poisons it.
    const token = this.#ctx.tracker.beginRead(latin1(key));
    const slot: Slot = { ready: false, reply: null, token };
    this.#ctx.tracker.readTracked(key).then(
      (result) => {
        if (result instanceof Error) {
          this.#ctx.metrics.error('valkey');
          slot.reply = toRespValue(result, false);
        } else {
          slot.read = { value: result.value, pttl: result.pttl, capMs };
        }
        this.#complete(slot);
      },
      (err: unknown) => this.#fail(slot, err),
    );
    return slot;
  }

  #trackedSetkey(plan: Extract<CommandPlan, { kind: 'tracked-setkey' }>): Slot {
    const token = this.#ctx.tracker.beginRead(latin1(plan.key));
    const slot: Slot = { ready: false, reply: null, token };
    let pending: Promise<Awaited<ReturnType<typeof setkeyTracked>>>;
    try {
      pending = setkeyTracked(this.#ctx.tracker, plan.key, plan.id, plan.value, plan.ttlMs);
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      async (result) => {
        if (result instanceof Error) {
          this.#ctx.metrics.error('valkey');
          slot.reply = toRespValue(result, false);
          this.#complete(slot);
          return;
        }
        // A stored value is a write through the bridge: other readers are pushed before our reply, our token spared.
        if (result.stored) this.#invalidateWritten([plan.key], token);
        await ownInvalidationSeen(token, result.stored);
        slot.stored = result.stored;
        slot.read = { value: result.value, pttl: result.pttl, capMs: plan.capMs };
        this.#complete(slot);
      },
      (err: unknown) => {
        // Like any write: one that may have reached Valkey is treated as applied.
        if (mayHaveRun(err)) this.#invalidateWritten([plan.key]);
        this.#fail(slot, err);
      },
    );
    return slot;
  }

  #run(send: () => Promise<unknown>, statusReply: boolean, write: WritePlan | null): Slot {
    const slot: Slot = { ready: false, reply: null };
    let pending: Promise<unknown>;
    try {
      pending = send();
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (raw) => {
        slot.reply = toRespValue(raw, statusReply);
        if (write && write.changed(slot.reply)) this.#invalidateWritten(write.keys);
        this.#complete(slot);
      },
      (err: unknown) => {
        // A write that may have reached Valkey is treated as applied: a spurious push is harmless, a missed one is not.
        if (write && mayHaveRun(err)) this.#invalidateWritten(write.keys);
        this.#fail(slot, err);
      },
    );
    return slot;
  }

  /** A write through the bridge changed `keys`: poison pending reads and push to every reader now, before the reply. */
  #invalidateWritten(keys: readonly Uint8Array[], own?: PendingRead): void {
    const names = keys.map(latin1);
    this.#ctx.tracker.overwrite(names, own);
    this.#ctx.router.invalidate(names, true);
  }

  #fail(slot: Slot, err: unknown): void {
    const { reply, kind } = failureReply(err, this.#ctx.commandTimeoutMs);
    this.#ctx.metrics.error(kind);
    if (kind === 'internal') this.#ctx.log.error('command failed unexpectedly', { session: this.#sessionId, error: err as Error });
    slot.reply = reply;
    this.#complete(slot);
  }

  #complete(slot: Slot): void {
    slot.ready = true;
    this.#onReady();
  }
}
