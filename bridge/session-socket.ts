// A session's WebSocket as the session drives it: reading paused for backpressure, the heartbeat that terminates a
// peer that stopped answering pings, the close handshake, and socket errors counted by kind. What is read and
// written is session.ts's.
import type { WebSocket } from 'ws';
import type { Logger } from './log.ts';
import type { BridgeMetrics } from './metrics.ts';

export class SessionSocket {
  readonly #ws: WebSocket;
  readonly #sessionId: number;
  readonly #metrics: BridgeMetrics;
  readonly #log: Logger;
  /** Set false when the heartbeat pings; a pong sets it back. */
  #alive = true;
  #paused = false;

  constructor(ws: WebSocket, sessionId: number, metrics: BridgeMetrics, log: Logger) {
    this.#ws = ws;
    this.#sessionId = sessionId;
    this.#metrics = metrics;
    this.#log = log;
    ws.on('pong', () => { this.#alive = true; });
    ws.on('error', (err: Error) => {
      // ws closes the session itself: 1009 over maxPayload, 1002/1007 for WebSocket-level violations.
      const code = (err as { code?: string }).code;
      if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') metrics.error('too_big');
      else if (code?.startsWith('WS_ERR_')) metrics.error('protocol');
      log.debug('session socket error', { session: sessionId, error: err });
    });
  }

  get isOpen(): boolean {
    return this.#ws.readyState === this.#ws.OPEN;
  }

  get isPaused(): boolean {
    return this.#paused;
  }

  /** Bytes written and not yet handed to the kernel. */
  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  /** Stops or resumes reading (TCP backpressure to the peer). */
  setPaused(paused: boolean): void {
    if (paused === this.#paused) return;
    this.#paused = paused;
    if (paused) this.#ws.pause();
    else this.#ws.resume();
  }

  /** Heartbeat tick: terminates when the previous ping got no pong (true), else pings again (false). */
  heartbeat(): boolean {
    if (!this.#alive) {
      this.#metrics.error('heartbeat');
      this.#log.info('session missed a heartbeat; terminating', { session: this.#sessionId });
      this.#ws.terminate();
      return true;
    }
    this.#alive = false;
    try {
      this.#ws.ping();
    } catch {
      // Closing already.
    }
    return false;
  }

  /** Starts the close handshake, reading again so that the peer's close frame is seen. */
  close(code: number, reason: string): void {
    if (!this.isOpen) return;
    this.#paused = false;
    this.#ws.resume();
    this.#ws.close(code, reason);
  }

  /** Kills the socket without a close handshake. */
  terminate(): void {
    this.#ws.terminate();
  }
}
