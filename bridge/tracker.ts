// The tracked Valkey connection pair: `data` (default-mode CLIENT TRACKING, redirected; carries every session
// command) and `sub` (subscribed to __redis__:invalidate). Owns epochs, pending-read tokens and the PING health
// checks. Why each rule exists: docs/bridge.md, "Epochs" and "Race safety".
import { isIP } from 'node:net';
import { Redis, ReplyError, type RedisOptions } from 'iovalkey';
import { SCRIPTS, SCRIPT_SHA } from '../shared/valkeyaside.ts';
import type { ScriptName } from './allowlist.ts';
import type { Logger } from './log.ts';
import type { ValkeyEndpoint } from './options.ts';
import { PendingReads, type PendingRead } from './pending-reads.ts';

export type { PendingRead } from './pending-reads.ts';

export const INVALIDATE_CHANNEL = '__redis__:invalidate';

export interface TrackerHealth {
  readonly dataReady: boolean;
  readonly subReady: boolean;
  /** CLIENT TRACKING is on and redirected to the live subscriber, for the current epoch. */
  readonly tracking: boolean;
  readonly epoch: number;
}

export interface TrackerHooks {
  /** Valkey invalidated `keys` (latin1 strings), or everything (null: FLUSHALL/FLUSHDB). Pending reads are already poisoned. */
  onInvalidate(keys: string[] | null): void;
  /** A tracked connection closed: a new epoch began; every pending read is already poisoned. */
  onEpoch(epoch: number, reason: string): void;
  /**
   * CLIENT TRACKING was (re-)established for `epoch`. Reads answered while it was down registered no reader, so no
   * push would ever name their keys: the bridge sends everyone the drop-everything push, which wakes their waiters.
   */
  onTracking(epoch: number): void;
  /** Health may have changed. */
  onHealth(): void;
}

export interface TrackerConfig {
  readonly valkey: ValkeyEndpoint;
  readonly subscriber: ValkeyEndpoint;
  readonly pingMs: number;
  readonly commandTimeoutMs: number;
  readonly log: Logger;
  readonly hooks: TrackerHooks;
}

/** A command the bridge did not send because Valkey is not connected (so it certainly had no effect). */
export class ValkeyUnavailableError extends Error {
  override name = 'ValkeyUnavailableError';
}

const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

function connectionOptions(endpoint: ValkeyEndpoint, name: string, extra: RedisOptions): RedisOptions {
  return {
    host: endpoint.host,
    port: endpoint.port,
    username: endpoint.username,
    password: endpoint.password,
    db: endpoint.db,
    tls: endpoint.tls ? { servername: isIP(endpoint.host) ? undefined : endpoint.host, ...endpoint.tlsOptions } : undefined,
    connectionName: name,
    lazyConnect: true,
    // Fail in-flight commands on a disconnect instead of resending them, untracked, on the next connection.
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: (times: number) => Math.min(times * 100, 1000),
    ...extra,
  };
}

export class Tracker {
  private readonly data: Redis;
  private readonly sub: Redis;
  private readonly pending = new PendingReads();
  private epochValue = 1;
  private trackedEpoch = 0;
  private dataWasReady = false;
  private subWasReady = false;
  private closing = false;
  private timer: NodeJS.Timeout | undefined;
  private subPingOutstanding = false;
  private dataPingSentAt: number | null = null;
  /** When bytes last arrived on each connection: replies queued behind others are progress, not a dead socket. */
  private readonly bytesAt = { data: 0, sub: 0 };
  private subBytesAtLastTick = 0;
  private readonly loggedErrors = new Set<string>();
  private subId: number | null = null;
  /** The data socket while it is corked for the current turn (see corkForTurn). */
  private corked: Redis['stream'] | null = null;

  constructor(private readonly config: TrackerConfig) {
    this.data = new Redis(connectionOptions(config.valkey, 'valkeyaside-bridge:data', {
      commandTimeout: config.commandTimeoutMs,
    }));
    this.sub = new Redis(connectionOptions(config.subscriber, 'valkeyaside-bridge:sub', {
      // Subscribing ourselves lets us run CLIENT ID first on every connection (refused once subscribed).
      autoResubscribe: false,
      // Bounds the handshake (AUTH, the INFO ready check) on a peer that accepted the connection but went silent.
      commandTimeout: config.commandTimeoutMs,
    }));
    for (const [role, conn] of [['data', this.data], ['sub', this.sub]] as const) {
      conn.on('error', (err: Error) => this.onError(role, err));
      conn.on('close', () => this.onClose(role));
      conn.on('connect', () => {
        this.bytesAt[role] = Date.now();
        conn.stream?.on('data', () => { this.bytesAt[role] = Date.now(); });
      });
    }
    this.data.on('ready', () => this.onDataReady());
    this.sub.on('ready', () => void this.onSubReady());
    // `messageBuffer` keeps the key array and null intact; iovalkey's `message` joins keys with "," and turns null into "".
    this.sub.on('messageBuffer', (channel: Buffer, payload: unknown) => this.onMessage(channel, payload));
  }

  get epoch(): number {
    return this.epochValue;
  }

  /** Number of tracked reads in flight (registered, not yet written to their session). */
  get pendingReads(): number {
    return this.pending.size;
  }

  health(): TrackerHealth {
    const dataReady = this.data.status === 'ready';
    const subReady = this.sub.status === 'ready';
    return { dataReady, subReady, tracking: dataReady && subReady && this.trackedEpoch === this.epochValue, epoch: this.epochValue };
  }

  /** Connects both connections (in the background; they retry forever) and starts the PING checks. */
  start(): void {
    this.data.connect().catch(() => undefined);
    this.sub.connect().catch(() => undefined);
    // Decide after the poll phase (setImmediate), so that a PONG already received during an event-loop stall
    // counts: a busy bridge must not mistake itself for a dead Valkey.
    this.timer = setInterval(() => setImmediate(() => this.checkLiveness()), this.config.pingMs);
    this.timer.unref();
  }

  /** Registers a tracked read of `key` BEFORE it is sent (docs/bridge.md, "Race safety"). Release with {@link endRead}. */
  beginRead(key: string): PendingRead {
    return this.pending.begin(key, this.epochValue, this.health().tracking);
  }

  endRead(token: PendingRead): void {
    this.pending.end(token);
  }

  /** True when the read may be cached: tracked, same epoch, and nothing invalidated its key since it was sent. */
  isCacheable(token: PendingRead): boolean {
    return token.tracked && !token.poisoned && token.epoch === this.epochValue;
  }

  /** Poisons pending reads of `keys` (a write through the bridge changed them). */
  poison(keys: Iterable<string>): void {
    this.pending.poison(keys);
  }

  /** `MULTI PTTL GET EXEC` on the tracked connection. */
  async readTracked(key: Uint8Array): Promise<{ value: Buffer | null; pttl: number } | Error> {
    this.assertReady();
    this.corkForTurn();
    const k = asBuffer(key);
    // Written back to back in one tick, so nothing can interleave inside the transaction.
    const queued = [this.data.callBuffer('multi'), this.data.callBuffer('pttl', k), this.data.callBuffer('get', k)];
    const exec = this.data.callBuffer('exec');
    const results = await Promise.allSettled([...queued, exec]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const reply = (results[3] as PromiseFulfilledResult<unknown>).value;
    if (!Array.isArray(reply) || reply.length !== 2) throw new Error('unexpected EXEC reply to the tracked read');
    const [pttl, value] = reply as [unknown, unknown];
    if (value instanceof Error) return value;
    if (pttl instanceof Error) return pttl;
    return { value: value === null ? null : (value as Buffer), pttl: Number(pttl) };
  }

  /** Sends one command on the data connection with binary-safe replies. */
  call(command: string, args: readonly Uint8Array[]): Promise<unknown> {
    this.assertReady();
    this.corkForTurn();
    return this.data.callBuffer(command, ...args.map(asBuffer));
  }

  /**
   * EVALSHA of a registered script; on NOSCRIPT (a fresh or flushed server) SCRIPT LOAD it and retry once. The SHA the
   * server computes must be the constant's: a wrong constant fails loudly here instead of hiding behind EVAL.
   */
  async evalScript(script: ScriptName, keyAndArgs: readonly Uint8Array[]): Promise<unknown> {
    const args = [Buffer.from(SCRIPT_SHA[script]), Buffer.from('1'), ...keyAndArgs.map(asBuffer)];
    try {
      return await this.call('evalsha', args);
    } catch (err) {
      if (!(err instanceof ReplyError) || !String((err as Error).message).startsWith('NOSCRIPT')) throw err;
      const loaded = String(await this.call('script', [Buffer.from('LOAD'), Buffer.from(SCRIPTS[script])]));
      if (loaded !== SCRIPT_SHA[script]) {
        throw new ReplyError(`ERR bridge: script ${script} loaded as ${loaded}, not ${SCRIPT_SHA[script]} (Go valkeyaside's SHA)`);
      }
      return this.call('evalsha', args);
    }
  }

  /** Stops the checks and closes both connections; no further hooks run. */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.timer);
    // Only a live socket emits 'end' after disconnect(); one waiting to reconnect just stops (iovalkey quirk).
    const ended = [this.data, this.sub].map((conn) =>
      ['connecting', 'connect', 'ready'].includes(conn.status)
        ? new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 2_000);
            conn.once('end', () => { clearTimeout(timer); resolve(); });
          })
        : Promise.resolve(),
    );
    this.data.disconnect();
    this.sub.disconnect();
    await Promise.all(ended);
  }

  private assertReady(): void {
    if (this.data.status !== 'ready') throw new ValkeyUnavailableError('valkey is unavailable');
  }

  /**
   * Holds the data socket's writes until the end of this turn, so that the commands of one client message (four per
   * TRACKED.GET) reach Valkey in one writev instead of a write() each. Not iovalkey's enableAutoPipelining: it sends
   * MULTI outside the pipeline and would split the TRACKED.GET transaction.
   */
  private corkForTurn(): void {
    const stream = this.data.stream;
    if (!stream || this.corked === stream) return;
    this.corked = stream;
    stream.cork();
    process.nextTick(() => {
      if (this.corked === stream) this.corked = null;
      stream.uncork();
    });
  }

  private onError(role: string, err: Error): void {
    // iovalkey repeats connection errors on every retry; log each distinct one once per outage.
    const key = `${role}:${err.message}`;
    if (this.loggedErrors.has(key)) return;
    this.loggedErrors.add(key);
    this.config.log.warn('valkey connection error', { role, error: err });
  }

  private onClose(role: 'data' | 'sub'): void {
    if (role === 'sub') {
      this.subPingOutstanding = false;
      this.subId = null;
    } else {
      this.dataPingSentAt = null;
    }
    const wasReady = role === 'data' ? this.dataWasReady : this.subWasReady;
    if (role === 'data') this.dataWasReady = false;
    else this.subWasReady = false;
    if (this.closing || !wasReady) return;
    // Tracking state lived on this connection (the data side: redis#11767, nobody is told): start a new epoch.
    this.epochValue++;
    this.pending.poisonAll();
    this.config.log.warn('valkey connection lost; new epoch', { role, epoch: this.epochValue });
    this.config.hooks.onEpoch(this.epochValue, `${role} connection closed`);
    this.config.hooks.onHealth();
  }

  private onDataReady(): void {
    this.dataWasReady = true;
    this.loggedErrors.clear();
    this.config.log.info('valkey data connection ready', { valkey: this.config.valkey.display });
    this.establish();
  }

  private async onSubReady(): Promise<void> {
    this.subWasReady = true;
    this.loggedErrors.clear();
    this.subId = null;
    const epoch = this.epochValue;
    try {
      // CLIENT ID must come before SUBSCRIBE: afterwards the connection only accepts subscriber commands.
      const id = Number(await this.sub.client('ID'));
      await this.sub.subscribe(INVALIDATE_CHANNEL);
      if (epoch !== this.epochValue || this.closing) return;
      this.subId = id;
      this.config.log.info('valkey subscriber ready', { clientId: id });
      this.establish();
    } catch (err) {
      if (!this.closing) this.config.log.warn('subscriber setup failed; waiting for the next connection', { error: err as Error });
    }
  }

  /** `CLIENT TRACKING ON REDIRECT <sub id>` on data, on every ready of either side (iovalkey never re-runs it). */
  private establish(): void {
    const subId = this.subId;
    if (subId === null || this.data.status !== 'ready' || this.closing) return;
    const epoch = this.epochValue;
    this.data.client('TRACKING', 'ON', 'REDIRECT', subId).then(
      () => {
        if (epoch !== this.epochValue || subId !== this.subId) return;
        this.trackedEpoch = epoch;
        this.config.log.info('tracking established', { epoch, subscriberId: subId });
        this.config.hooks.onTracking(epoch);
        this.config.hooks.onHealth();
      },
      (err: Error) => {
        // "The client ID you want redirect to does not exist": the subscriber died and has not closed yet;
        // its next ready retries.
        if (!this.closing) this.config.log.warn('CLIENT TRACKING failed; waiting for the next subscriber', { error: err });
      },
    );
  }

  private onMessage(channel: Buffer, payload: unknown): void {
    if (channel.toString('latin1') !== INVALIDATE_CHANNEL) return;
    if (payload === null) {
      this.pending.poisonAll();
      this.config.hooks.onInvalidate(null);
      return;
    }
    const items = Array.isArray(payload) ? payload : [payload];
    const keys: string[] = [];
    for (const item of items) if (Buffer.isBuffer(item)) keys.push(item.toString('latin1'));
    this.poison(keys);
    this.config.hooks.onInvalidate(keys);
  }

  /** PING both connections; an unanswered PING destroys the socket, which takes the close → new epoch path. */
  private checkLiveness(): void {
    if (this.closing) return;
    if (this.sub.status === 'ready') {
      const subSilent = this.bytesAt.sub === this.subBytesAtLastTick;
      this.subBytesAtLastTick = this.bytesAt.sub;
      if (this.subPingOutstanding && subSilent) {
        this.config.log.warn('valkey subscriber missed a PING; reconnecting', { pingMs: this.config.pingMs });
        this.subPingOutstanding = false;
        this.sub.stream?.destroy();
      } else if (!this.subPingOutstanding) {
        this.subPingOutstanding = true;
        const stream = this.sub.stream;
        this.sub.ping().then(() => {
          if (this.sub.stream === stream) this.subPingOutstanding = false;
        }, () => undefined);
      }
    }
    if (this.data.status === 'ready') {
      // Data replies may queue behind slow commands or big replies, so allow it the command timeout rather than one
      // interval, and count any byte received meanwhile as life: load alone must never start an epoch.
      const sentAt = this.dataPingSentAt;
      const allowMs = Math.max(this.config.commandTimeoutMs, this.config.pingMs);
      const now = Date.now();
      if (sentAt !== null && now - sentAt > allowMs && now - this.bytesAt.data > allowMs) {
        this.config.log.warn('valkey data connection missed a PING; reconnecting', {});
        this.dataPingSentAt = null;
        this.data.stream?.destroy();
      } else if (sentAt === null) {
        const stream = this.data.stream;
        this.dataPingSentAt = Date.now();
        this.data.ping().then(() => {
          if (this.data.stream === stream) this.dataPingSentAt = null;
        }, () => undefined);
      }
    }
  }
}
