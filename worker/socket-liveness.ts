// How a coordinator finds a half-open bridge socket, which never closes by itself and delivers nothing: a reply
// watchdog while commands wait, and a heartbeat PING when the socket has been quiet (so a coordinator serving only
// local hits finds it too, and its close empties the local cache instead of stale copies living to their ttl).

export interface LivenessProbe {
  /** Commands sent and not yet answered. */
  waiting(): number;
  /** Sends a PING (the watchdog then watches its reply). */
  ping(): void;
  /** Nothing arrived for `silentMs` while commands waited: the socket is dead. */
  dead(silentMs: number): void;
}

export class SocketLiveness {
  readonly #replyTimeoutMs: number;
  readonly #heartbeatMs: number;
  readonly #probe: LivenessProbe;
  /** When the socket last showed life: a message received, or a command queued while none was waiting. */
  #lastProgressAt = Date.now();
  #watchdog: ReturnType<typeof setTimeout> | undefined;
  #heartbeat: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  /** Starts the heartbeat for a socket that just opened. */
  constructor(replyTimeoutMs: number, heartbeatMs: number, probe: LivenessProbe) {
    this.#replyTimeoutMs = replyTimeoutMs;
    this.#heartbeatMs = heartbeatMs;
    this.#probe = probe;
    this.#scheduleHeartbeat();
  }

  /** Something arrived. */
  progress(): void {
    this.#lastProgressAt = Date.now();
  }

  /** A command is about to be sent; `wasIdle` when none was waiting (its wait starts now). */
  commandQueued(wasIdle: boolean): void {
    if (wasIdle) this.#lastProgressAt = Date.now();
    this.#armWatchdog();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#heartbeat !== undefined) clearTimeout(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  /** The bridge answers every command within its own command timeout (with `-TIMEOUT` at worst). */
  #armWatchdog(): void {
    if (this.#watchdog !== undefined) return;
    this.#watchdog = setTimeout(() => {
      this.#watchdog = undefined;
      if (this.#stopped || this.#probe.waiting() === 0) return;
      const silentMs = Date.now() - this.#lastProgressAt;
      if (silentMs >= this.#replyTimeoutMs) {
        this.#probe.dead(silentMs);
        return;
      }
      this.#armWatchdog();
    }, Math.max(1, Math.ceil(this.#replyTimeoutMs / 4)));
  }

  #scheduleHeartbeat(): void {
    const heartbeatMs = this.#heartbeatMs;
    const quietMs = Date.now() - this.#lastProgressAt;
    this.#heartbeat = setTimeout(() => {
      this.#heartbeat = undefined;
      if (this.#stopped) return;
      if (Date.now() - this.#lastProgressAt >= heartbeatMs && this.#probe.waiting() === 0) this.#probe.ping();
      this.#scheduleHeartbeat();
    }, Math.max(1, heartbeatMs - Math.max(0, Math.min(quietMs, heartbeatMs))));
  }
}
