// The PING health checks of the tracked connection pair. Any byte received counts as life, so that replies queued
// behind slow commands are progress, not a dead socket; an unanswered PING destroys the socket (→ a new epoch).
import type { Redis } from 'iovalkey';
import type { PairConfig } from './tracked-pair.ts';

export type ConnectionRole = 'data' | 'sub';

export class ValkeyLiveness {
  #timer: NodeJS.Timeout | undefined;
  #subPingOutstanding = false;
  #dataPingSentAt: number | null = null;
  /** When bytes last arrived on each connection: replies queued behind others are progress, not a dead socket. */
  readonly #bytesAt = { data: 0, sub: 0 };
  #subBytesAtLastTick = 0;

  readonly #data: Redis;
  readonly #sub: Redis;
  readonly #config: Pick<PairConfig, 'pingMs' | 'commandTimeoutMs' | 'log'>;
  readonly #isClosing: () => boolean;

  constructor(
    data: Redis,
    sub: Redis,
    config: Pick<PairConfig, 'pingMs' | 'commandTimeoutMs' | 'log'>,
    isClosing: () => boolean,
  ) {
    this.#data = data;
    this.#sub = sub;
    this.#config = config;
    this.#isClosing = isClosing;
  }

  /** Notes every byte `conn` receives, from each of its connects on. */
  watch(role: ConnectionRole, conn: Redis): void {
    conn.on('connect', () => {
      this.#bytesAt[role] = Date.now();
      conn.stream?.on('data', () => { this.#bytesAt[role] = Date.now(); });
    });
  }

  /** Starts the checks, one every `pingMs`. */
  start(): void {
    // Decide after the poll phase (setImmediate), so that a PONG already received during an event-loop stall
    // counts: a busy bridge must not mistake itself for a dead Valkey.
    this.#timer = setInterval(() => setImmediate(() => this.#checkLiveness()), this.#config.pingMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** The connection closed: its PING, if any, will never be answered. */
  reset(role: ConnectionRole): void {
    if (role === 'sub') this.#subPingOutstanding = false;
    else this.#dataPingSentAt = null;
  }

  /** PING both connections; an unanswered PING destroys the socket, which takes the close → new epoch path. */
  #checkLiveness(): void {
    if (this.#isClosing()) return;
    if (this.#sub.status === 'ready') {
      const subSilent = this.#bytesAt.sub === this.#subBytesAtLastTick;
      this.#subBytesAtLastTick = this.#bytesAt.sub;
      if (this.#subPingOutstanding && subSilent) {
        this.#config.log.warn('valkey subscriber missed a PING; reconnecting', { pingMs: this.#config.pingMs });
        this.#subPingOutstanding = false;
        this.#sub.stream?.destroy();
      } else if (!this.#subPingOutstanding) {
        this.#subPingOutstanding = true;
        const stream = this.#sub.stream;
        this.#sub.ping().then(() => {
          if (this.#sub.stream === stream) this.#subPingOutstanding = false;
        }, () => undefined);
      }
    }
    if (this.#data.status === 'ready') {
      // Data replies may queue behind slow commands or big replies, so allow it the command timeout rather than one
      // interval, and count any byte received meanwhile as life: load alone must never start an epoch.
      const sentAt = this.#dataPingSentAt;
      const allowMs = Math.max(this.#config.commandTimeoutMs, this.#config.pingMs);
      const now = Date.now();
      if (sentAt !== null && now - sentAt > allowMs && now - this.#bytesAt.data > allowMs) {
        this.#config.log.warn('valkey data connection missed a PING; reconnecting', {});
        this.#dataPingSentAt = null;
        this.#data.stream?.destroy();
      } else if (sentAt === null) {
        const stream = this.#data.stream;
        this.#dataPingSentAt = Date.now();
        this.#data.ping().then(() => {
          if (this.#data.stream === stream) this.#dataPingSentAt = null;
        }, () => undefined);
      }
    }
  }
}
