// The coordinator's client id (`valkeyid:…`) and its liveness marker, with Go valkeyaside's lifecycle: created with
// `SET id "" PX clientTtlMs` on first lock, refreshed every half ttl, replaced when the socket drops or a null push
// arrives (so the old id's locks look abandoned), and the replaced ids' markers deleted once a socket is open.
import { newClientId } from '../shared/valkeyaside.ts';
import { droppedError } from './bridge-errors.ts';
import type { BridgeSocket } from './bridge-socket.ts';
import type { Deadline } from './waiters.ts';

export class ClientId {
  readonly #bridge: BridgeSocket;
  readonly #clientTtlMs: number;
  #id: string | null = null;
  /** The id whose marker is being created, and that creation. */
  #creating: { id: string; promise: Promise<string> } | null = null;
  /** Bumped whenever the client id is replaced, so a marker created across the change is not adopted. */
  #generation = 0;
  /** Markers of replaced ids, deleted as soon as a socket is open. */
  readonly #staleIds = new Set<string>();
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(bridge: BridgeSocket, clientTtlMs: number) {
    this.#bridge = bridge;
    this.#clientTtlMs = clientTtlMs;
  }

  /** The current id, or null until the next `ensure` creates one. */
  get current(): string | null {
    return this.#id;
  }

  /** The client id, creating it (and its marker, `SET id "" PX clientTtlMs`) on first use. */
  ensure(deadline: Deadline): Promise<string> {
    return deadline.race(this.claim(deadline).ready);
  }

  /**
   * The id at once, with `ready` settling when its marker is set: a lock sent in the same turn as the marker's SET
   * travels in the same message, right behind it, so a first lock costs one round trip, not two. `ready` rejects
   * (dropped) when the id was replaced while its marker was being created; a lock taken under it must be released.
   */
  claim(deadline: Deadline): { id: string; ready: Promise<string> } {
    if (this.#id !== null) return { id: this.#id, ready: Promise.resolve(this.#id) };
    if (this.#creating === null) {
      const generation = this.#generation;
      const id = newClientId();
      const creating = this.#bridge.command(['SET', id, '', 'PX', this.#clientTtlMs], deadline.at).then(() => {
        if (generation !== this.#generation) {
          this.#staleIds.add(id);
          this.deleteStale();
          throw droppedError('the client id was replaced while its marker was being created');
        }
        this.#id = id;
        this.#scheduleRefresh(id);
        return id;
      });
      this.#creating = { id, promise: creating };
      const clear = () => { if (this.#creating?.promise === creating) this.#creating = null; };
      creating.then(clear, clear);
    }
    return { id: this.#creating.id, ready: this.#creating.promise };
  }

  /** Go's onInvalidation(nil): a new id for new locks; the old marker goes, so its locks look abandoned. */
  replace(): void {
    this.#generation++;
    if (this.#id !== null) this.#staleIds.add(this.#id);
    this.#id = null;
    this.#creating = null;
    if (this.#refreshTimer !== undefined) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
  }

  /** Deletes the markers of replaced ids, in the background, if a socket is open (else on the next open). */
  deleteStale(): void {
    if (this.#staleIds.size === 0 || !this.#bridge.isOpen) return;
    const ids = [...this.#staleIds];
    this.#staleIds.clear();
    this.#bridge.command(['DEL', ...ids]).catch(() => {});
  }

  /** Going idle: replaces the id and hands back every marker left to delete (the replaced ones and the current one). */
  retire(): string[] {
    const ids = [...this.#staleIds];
    if (this.#id !== null) ids.push(this.#id);
    this.replace();
    this.#staleIds.clear();
    return ids;
  }

  /** Refreshes the marker every half of its ttl while the id lives (Go's refresh goroutine). */
  #scheduleRefresh(id: string): void {
    if (this.#refreshTimer !== undefined) clearTimeout(this.#refreshTimer);
    const clientTtlMs = this.#clientTtlMs;
    this.#refreshTimer = setTimeout(() => {
      if (this.#id !== id) return;
      this.#bridge.command(['SET', id, '', 'PX', clientTtlMs]).catch(() => {});
      this.#scheduleRefresh(id);
    }, Math.max(1, Math.floor(clientTtlMs / 2)));
  }
}
