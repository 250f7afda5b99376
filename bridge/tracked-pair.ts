// One tracked Valkey connection pair: `data` (default-mode CLIENT TRACKING, redirected; carries the commands) and
// `sub` (subscribed to __redis__:invalidate) on the SAME server. Owns the pair's epoch and its tracking setup; the
// PING checks are valkey-liveness.ts. Why each rule exists: docs/bridge.md, "Epochs" and "Race safety".
import { Redis, ReplyError } from 'iovalkey';
import { SCRIPTS, SCRIPT_SHA } from '../shared/valkeyaside.ts';
import type { ScriptName } from './allowlist.ts';
import type { Logger } from './log.ts';
import type { ValkeyEndpoint } from './options.ts';
import { asBuffer, connectionOptions } from './valkey-connection.ts';
import { ValkeyLiveness, type ConnectionRole } from './valkey-liveness.ts';

export const INVALIDATE_CHANNEL = '__redis__:invalidate';

export interface PairHealth {
  readonly dataReady: boolean;
  readonly subReady: boolean;
  /** CLIENT TRACKING is on and redirected to the live subscriber, for the current epoch. */
  readonly tracking: boolean;
  readonly epoch: number;
}

export interface PairHooks {
  /** Valkey invalidated `keys` (latin1 strings), or everything (null: FLUSHALL/FLUSHDB). */
  onInvalidate(keys: string[] | null): void;
  /** A tracked connection closed: the pair's epoch was bumped. */
  onLost(epoch: number, reason: string): void;
  /** CLIENT TRACKING was (re-)established for `epoch`. */
  onTracking(epoch: number): void;
  /** Health may have changed. */
  onHealth(): void;
}

export interface PairConfig {
  readonly valkey: ValkeyEndpoint;
  readonly subscriber: ValkeyEndpoint;
  readonly pingMs: number;
  readonly commandTimeoutMs: number;
  readonly log: Logger;
  readonly hooks: PairHooks;
}

/** A command the bridge did not send because Valkey is not connected (so it certainly had no effect). */
export class ValkeyUnavailableError extends Error {
  override name = 'ValkeyUnavailableError';
}

/** One command of a transaction: its name and binary arguments. */
export type TransactionCommand = readonly [string, ...Uint8Array[]];

export type TrackedReadResult = { value: Buffer | null; pttl: number } | Error;

export class TrackedPair {
  readonly #data: Redis;
  readonly #sub: Redis;
  #epochValue = 1;
  #trackedEpoch = 0;
  #dataWasReady = false;
  #subWasReady = false;
  #closing = false;
  readonly #liveness: ValkeyLiveness;
  readonly #loggedErrors = new Set<string>();
  #subId: number | null = null;
  /** The data socket while it is corked for the current turn (see corkForTurn). */
  #corked: Redis['stream'] | null = null;

  readonly #config: PairConfig;

  constructor(config: PairConfig) {
    this.#config = config;
    this.#data = new Redis(connectionOptions(config.valkey, 'valkeyaside-bridge:data', {
      commandTimeout: config.commandTimeoutMs,
    }));
    this.#sub = new Redis(connectionOptions(config.subscriber, 'valkeyaside-bridge:sub', {
      // Subscribing ourselves lets us run CLIENT ID first on every connection (refused once subscribed).
      autoResubscribe: false,
      // Bounds the handshake (AUTH, the INFO ready check) on a peer that accepted the connection but went silent.
      commandTimeout: config.commandTimeoutMs,
    }));
    this.#liveness = new ValkeyLiveness(this.#data, this.#sub, config, () => this.#closing);
    for (const [role, conn] of [['data', this.#data], ['sub', this.#sub]] as const) {
      conn.on('error', (err: Error) => this.#onError(role, err));
      conn.on('close', () => this.#onClose(role));
      this.#liveness.watch(role, conn);
    }
    this.#data.on('ready', () => this.#onDataReady());
    this.#sub.on('ready', () => void this.#onSubReady());
    // `messageBuffer` keeps the key array and null intact; iovalkey's `message` joins keys with "," and turns null into "".
    this.#sub.on('messageBuffer', (channel: Buffer, payload: unknown) => this.#onMessage(channel, payload));
  }

  get epoch(): number {
    return this.#epochValue;
  }

  get endpoint(): ValkeyEndpoint {
    return this.#config.valkey;
  }

  health(): PairHealth {
    const dataReady = this.#data.status === 'ready';
    const subReady = this.#sub.status === 'ready';
    return { dataReady, subReady, tracking: dataReady && subReady && this.#trackedEpoch === this.#epochValue, epoch: this.#epochValue };
  }

  /** Connects both connections (in the background; they retry forever) and starts the PING checks. */
  start(): void {
    this.#data.connect().catch(() => undefined);
    this.#sub.connect().catch(() => undefined);
    this.#liveness.start();
  }

  /** `MULTI PTTL GET EXEC` on the tracked connection; `asking` prefixes ASKING (a cluster slot being imported here). */
  async readTracked(key: Uint8Array, asking = false): Promise<TrackedReadResult> {
    this.#assertReady();
    this.#corkForTurn();
    const k = asBuffer(key);
    // Written back to back in one tick, so nothing can interleave inside the transaction (ASKING lasts through it).
    const sent = asking ? [this.#data.callBuffer('asking')] : [];
    sent.push(this.#data.callBuffer('multi'), this.#data.callBuffer('pttl', k), this.#data.callBuffer('get', k));
    const exec = this.#data.callBuffer('exec');
    const results = await Promise.allSettled([...sent, exec]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const reply = (results[results.length - 1] as PromiseFulfilledResult<unknown>).value;
    if (!Array.isArray(reply) || reply.length !== 2) throw new Error('unexpected EXEC reply to the tracked read');
    const [pttl, value] = reply as [unknown, unknown];
    if (value instanceof Error) return value;
    if (pttl instanceof Error) return pttl;
    return { value: value === null ? null : (value as Buffer), pttl: Number(pttl) };
  }

  /** `MULTI <commands> EXEC` written in one tick; the EXEC reply (errors in place). `asking` prefixes ASKING. */
  async transaction(commands: readonly TransactionCommand[], asking = false): Promise<unknown[]> {
    this.#assertReady();
    this.#corkForTurn();
    const sent = asking ? [this.#data.callBuffer('asking')] : [];
    sent.push(this.#data.callBuffer('multi'), ...commands.map(([name, ...args]) => this.#data.callBuffer(name, ...args.map(asBuffer))));
    const exec = this.#data.callBuffer('exec');
    const results = await Promise.allSettled([...sent, exec]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const reply = (results[results.length - 1] as PromiseFulfilledResult<unknown>).value;
    if (!Array.isArray(reply) || reply.length !== commands.length) throw new Error('unexpected EXEC reply to a bridge transaction');
    return reply;
  }

  /** Sends one command on the data connection with binary-safe replies; `asking` prefixes ASKING. */
  call(command: string, args: readonly Uint8Array[], asking = false): Promise<unknown> {
    this.#assertReady();
    this.#corkForTurn();
    if (asking) this.#data.callBuffer('asking').catch(() => undefined);
    return this.#data.callBuffer(command, ...args.map(asBuffer));
  }

  /**
   * EVALSHA of a registered script; on NOSCRIPT (a fresh or flushed server) SCRIPT LOAD it and retry once. The SHA the
   * server computes must be the constant's: a wrong constant fails loudly here instead of hiding behind EVAL.
   */
  async evalScript(script: ScriptName, keyAndArgs: readonly Uint8Array[], asking = false): Promise<unknown> {
    const args = [Buffer.from(SCRIPT_SHA[script]), Buffer.from('1'), ...keyAndArgs.map(asBuffer)];
    try {
      return await this.call('evalsha', args, asking);
    } catch (err) {
      if (!(err instanceof ReplyError) || !String((err as Error).message).startsWith('NOSCRIPT')) throw err;
      await this.loadScript(script);
      return this.call('evalsha', args, asking);
    }
  }

  /** SCRIPT LOAD on this server; @throws ReplyError when the server's SHA is not the constant's (Go valkeyaside's). */
  async loadScript(script: ScriptName): Promise<void> {
    const loaded = String(await this.call('script', [Buffer.from('LOAD'), Buffer.from(SCRIPTS[script])]));
    if (loaded !== SCRIPT_SHA[script]) {
      throw new ReplyError(`ERR bridge: script ${script} loaded as ${loaded}, not ${SCRIPT_SHA[script]} (Go valkeyaside's SHA)`);
    }
  }

  /** Stops the checks and closes both connections; no further hooks run. */
  async close(): Promise<void> {
    this.#closing = true;
    this.#liveness.stop();
    // Only a live socket emits 'end' after disconnect(); one waiting to reconnect just stops (iovalkey quirk).
    const ended = [this.#data, this.#sub].map((conn) =>
      ['connecting', 'connect', 'ready'].includes(conn.status)
        ? new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 2_000);
            conn.once('end', () => { clearTimeout(timer); resolve(); });
          })
        : Promise.resolve(),
    );
    this.#data.disconnect();
    this.#sub.disconnect();
    await Promise.all(ended);
  }

  #assertReady(): void {
    if (this.#closing || this.#data.status !== 'ready') throw new ValkeyUnavailableError('valkey is unavailable');
  }

  /**
   * Holds the data socket's writes until the end of this turn, so that the commands of one client message (four per
   * TRACKED.GET) reach Valkey in one writev instead of a write() each. Not iovalkey's enableAutoPipelining: it sends
   * MULTI outside the pipeline and would split the TRACKED.GET transaction.
   */
  #corkForTurn(): void {
    const stream = this.#data.stream;
    if (!stream || this.#corked === stream) return;
    this.#corked = stream;
    stream.cork();
    process.nextTick(() => {
      if (this.#corked === stream) this.#corked = null;
      stream.uncork();
    });
  }

  #onError(role: string, err: Error): void {
    // iovalkey repeats connection errors on every retry; log each distinct one once per outage.
    const key = `${role}:${err.message}`;
    if (this.#loggedErrors.has(key)) return;
    this.#loggedErrors.add(key);
    this.#config.log.warn('valkey connection error', { role, valkey: this.#config.valkey.display, error: err });
  }

  #onClose(role: ConnectionRole): void {
    this.#liveness.reset(role);
    if (role === 'sub') this.#subId = null;
    const wasReady = role === 'data' ? this.#dataWasReady : this.#subWasReady;
    if (role === 'data') this.#dataWasReady = false;
    else this.#subWasReady = false;
    if (this.#closing || !wasReady) return;
    // Tracking state lived on this connection (the data side: redis#11767, nobody is told): start a new epoch.
    this.#epochValue++;
    this.#config.log.warn('valkey connection lost; new epoch', { role, valkey: this.#config.valkey.display, epoch: this.#epochValue });
    this.#config.hooks.onLost(this.#epochValue, `${role} connection closed`);
    this.#config.hooks.onHealth();
  }

  #onDataReady(): void {
    this.#dataWasReady = true;
    this.#loggedErrors.clear();
    this.#config.log.info('valkey data connection ready', { valkey: this.#config.valkey.display });
    this.#establish();
  }

  async #onSubReady(): Promise<void> {
    this.#subWasReady = true;
    this.#loggedErrors.clear();
    this.#subId = null;
    const epoch = this.#epochValue;
    try {
      // CLIENT ID must come before SUBSCRIBE: afterwards the connection only accepts subscriber commands.
      const id = Number(await this.#sub.client('ID'));
      await this.#sub.subscribe(INVALIDATE_CHANNEL);
      if (epoch !== this.#epochValue || this.#closing) return;
      this.#subId = id;
      this.#config.log.info('valkey subscriber ready', { valkey: this.#config.valkey.display, clientId: id });
      this.#establish();
    } catch (err) {
      if (!this.#closing) this.#config.log.warn('subscriber setup failed; waiting for the next connection', { error: err as Error });
    }
  }

  /** `CLIENT TRACKING ON REDIRECT <sub id>` on data, on every ready of either side (iovalkey never re-runs it). */
  #establish(): void {
    const subId = this.#subId;
    if (subId === null || this.#data.status !== 'ready' || this.#closing) return;
    const epoch = this.#epochValue;
    this.#data.client('TRACKING', 'ON', 'REDIRECT', subId).then(
      () => {
        if (epoch !== this.#epochValue || subId !== this.#subId || this.#closing) return;
        this.#trackedEpoch = epoch;
        this.#config.log.info('tracking established', { valkey: this.#config.valkey.display, epoch, subscriberId: subId });
        this.#config.hooks.onTracking(epoch);
        this.#config.hooks.onHealth();
      },
      (err: Error) => {
        // "The client ID you want redirect to does not exist": the subscriber died and has not closed yet;
        // its next ready retries.
        if (!this.#closing) this.#config.log.warn('CLIENT TRACKING failed; waiting for the next subscriber', { error: err });
      },
    );
  }

  #onMessage(channel: Buffer, payload: unknown): void {
    if (this.#closing || channel.toString('latin1') !== INVALIDATE_CHANNEL) return;
    if (payload === null) {
      this.#config.hooks.onInvalidate(null);
      return;
    }
    const items = Array.isArray(payload) ? payload : [payload];
    const keys: string[] = [];
    for (const item of items) if (Buffer.isBuffer(item)) keys.push(item.toString('latin1'));
    this.#config.hooks.onInvalidate(keys);
  }
}
