// Opening the coordinator's socket to a bridge: one opening at a time, a jittered exponential backoff between failed
// attempts, each attempt to the next bridge listed (bridge-endpoints.ts), and, while `autoReconnect` is on, a
// reopening in the background after a drop or a failed opening. What the open socket does is bridge-socket.ts's.
import { ConnectionError } from '../shared/errors.ts';
import { BridgeEndpoints } from './bridge-endpoints.ts';
import { upgradeToBridge } from './bridge-upgrade.ts';
import { errorMessage } from './errors.ts';
import { ReconnectBackoff } from './reconnect-backoff.ts';

export interface BridgeConnectorOptions {
  /** The bridges (`http(s)://…/resp`), all in front of one Valkey; `name` picks the first one tried. */
  readonly urls: readonly string[];
  /** The coordinator's name. */
  readonly name: string;
  readonly token: string;
  readonly connectTimeoutMs: number;
  readonly reconnectBaseMs: number;
  readonly reconnectMaxMs: number;
}

export interface BridgeConnectorHooks {
  /** A socket opened (the bridge selected protocol `version`); runs before `open()` resolves with it. */
  connected(ws: WebSocket, version: number): void;
  /** Whether a socket is open now (no reopening is scheduled while one is). */
  isOpen(): boolean;
}

export class BridgeConnector {
  readonly #options: BridgeConnectorOptions;
  readonly #hooks: BridgeConnectorHooks;
  readonly #backoff: ReconnectBackoff;
  readonly #endpoints: BridgeEndpoints;
  #opening: Promise<WebSocket> | null = null;
  /** When the opening in progress sends its upgrade request (after its backoff wait). */
  #attemptAt = 0;
  #lastError: ConnectionError | undefined;
  #autoReconnect = false;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: BridgeConnectorOptions, hooks: BridgeConnectorHooks) {
    this.#options = options;
    this.#hooks = hooks;
    this.#backoff = new ReconnectBackoff(options.reconnectBaseMs, options.reconnectMaxMs);
    this.#endpoints = new BridgeEndpoints(options.urls, options.name);
  }

  /** The bridge the socket is open to, or the one the next attempt goes to. */
  get current(): string {
    return this.#endpoints.current;
  }

  /** While true, a socket that drops or fails to open is reopened in the background (with backoff). */
  set autoReconnect(on: boolean) {
    this.#autoReconnect = on;
    if (!on && this.#reconnectTimer !== undefined) {
      clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = undefined;
    }
  }

  /** The next opening starts at the coordinator's first pick of bridge again (a close on purpose). */
  reset(): void {
    this.#endpoints.reset();
  }

  /** A reply proved the socket works: the next failure starts the backoff afresh. */
  succeeded(): void {
    this.#backoff.succeeded();
  }

  /** The open socket dropped: back off, move to the next bridge, and reopen if asked to. */
  dropped(): void {
    this.#failed();
    this.#scheduleReconnect();
  }

  /**
   * The opening in progress (or a new one, after the backoff wait).
   * @param deadlineAt epoch ms: when the next attempt would start after it, fail at once with the last error.
   */
  open(deadlineAt: number): Promise<WebSocket> {
    if (this.#opening === null) {
      const wait = Math.max(0, this.#backoff.nextAttemptAt - Date.now());
      this.#attemptAt = Date.now() + wait;
      const opening = (async () => {
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        // A bridge that refuses or cannot be reached sends this opening on to the next one listed, once round the list.
        for (let tried = 1; ; tried++) {
          try {
            return await this.#attempt();
          } catch (error) {
            if (tried >= this.#endpoints.count) throw error;
          }
        }
      })();
      this.#opening = opening;
      const clear = () => { if (this.#opening === opening) this.#opening = null; };
      opening.then(clear, () => {
        clear();
        this.#scheduleReconnect();
      });
      opening.catch(() => {});
    }
    if (this.#attemptAt > Date.now() && this.#attemptAt >= deadlineAt) {
      const last = this.#lastError;
      return Promise.reject(new ConnectionError(
        `bridge unavailable${last ? ` (${last.message})` : ''}; next connection attempt in ${Math.ceil(this.#attemptAt - Date.now())} ms`,
        { cause: last }));
    }
    return this.#opening;
  }

  async #attempt(): Promise<WebSocket> {
    const { token, connectTimeoutMs } = this.#options;
    try {
      const { ws, version } = await upgradeToBridge(this.#endpoints.current, token, connectTimeoutMs);
      this.#hooks.connected(ws, version);
      this.#lastError = undefined;
      return ws;
    } catch (error) {
      const failure = error instanceof ConnectionError
        ? error
        : new ConnectionError(`connecting to the bridge failed: ${errorMessage(error)}`, { cause: error });
      this.#failed();
      this.#lastError = failure;
      throw failure;
    }
  }

  /** A failed attempt or a dropped socket: the next attempt waits longer and goes to the next bridge listed. */
  #failed(): void {
    this.#backoff.failed();
    this.#endpoints.failed();
  }

  #scheduleReconnect(): void {
    if (!this.#autoReconnect || this.#reconnectTimer !== undefined || this.#hooks.isOpen() || this.#opening !== null) return;
    const wait = Math.max(0, this.#backoff.nextAttemptAt - Date.now());
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#autoReconnect && !this.#hooks.isOpen()) this.open(Infinity).catch(() => {});
    }, wait);
  }
}
