// Go valkeyaside's per-key lock as one coordinator takes it: `SET key id NX GET PX ttl` (or the Lua lock) under the
// client id, one attempt per key shared by the coordinator's gets until a push names the key, released by
// compare-and-delete, and released too when it lands after its get gave up (nobody would ever fill it).
import { ProtocolError } from '../shared/errors.ts';
import { RespSimple } from '../shared/resp/index.ts';
import type { RespValue } from '../shared/resp/index.ts';
import { SCRIPT_SHA } from '../shared/valkeyaside.ts';
import type { BridgeSocket } from './bridge-socket.ts';
import type { ClientId } from './client-id.ts';
import type { Deadline } from './waiters.ts';

/** `mine` when this get now holds the lock under `id`; else `holder` is the key's value (a placeholder or a value). */
export type LockResult = { mine: true; id: string } | { mine: false; holder: string };

/** A lock attempt in flight, shared by the gets of its key in this coordinator until a push names the key. */
interface LockFlight {
  readonly id: string;
  readonly reply: Promise<string | null>;
}

const decoder = new TextDecoder();

function stringOrNull(reply: RespValue, what: string): string | null {
  if (reply === null) return null;
  if (reply instanceof Uint8Array) return decoder.decode(reply);
  if (reply instanceof RespSimple) return reply.value;
  throw new ProtocolError('ERR_BRIDGE_REPLY', `unexpected reply to ${what}: expected a string or null`);
}

export class Locks {
  readonly #bridge: BridgeSocket;
  readonly #clientId: ClientId;
  readonly #useLuaLock: boolean;
  readonly #flights = new Map<string, LockFlight>();

  constructor(bridge: BridgeSocket, clientId: ClientId, useLuaLock: boolean) {
    this.#bridge = bridge;
    this.#clientId = clientId;
    this.#useLuaLock = useLuaLock;
  }

  /**
   * Takes the lock. Concurrent gets of a key here share one attempt: only its sender can hold the lock; the others
   * see our own id as the holder and wait for the push like any waiter (one command per coordinator, not per get).
   */
  async acquire(key: string, ttlMs: number, deadline: Deadline): Promise<LockResult> {
    let shared = this.#flights.get(key);
    if (shared === undefined) {
      const id = await this.#clientId.ensure(deadline);
      shared = this.#flights.get(key);
      if (shared === undefined) return this.#tryLock(key, id, ttlMs, deadline);
    }
    const holder = await deadline.race(shared.reply);
    return { mine: false, holder: holder ?? shared.id };
  }

  /** Compare-and-delete of our lock, in the background: nobody waits for it. */
  release(key: string, id: string): void {
    this.#bridge.command(['EVALSHA', SCRIPT_SHA.delkey, 1, key, id]).catch(() => {});
  }

  /** Stops sharing the key's attempt: the next get of the key sends its own. */
  forget(key: string): void {
    this.#flights.delete(key);
  }

  /** Stops sharing every attempt (a flush, a disconnect, going idle). */
  clear(): void {
    this.#flights.clear();
  }

  async #tryLock(key: string, id: string, ttlMs: number, deadline: Deadline): Promise<LockResult> {
    const args = this.#useLuaLock
      ? ['EVALSHA', SCRIPT_SHA.acquireLock, 1, key, id, ttlMs]
      : ['SET', key, id, 'NX', 'GET', 'PX', ttlMs];
    const reply = this.#bridge.command(args, deadline.at).then((r) => stringOrNull(r, 'the lock'));
    const flight: LockFlight = { id, reply };
    this.#flights.set(key, flight);
    const done = () => { if (this.#flights.get(key) === flight) this.#flights.delete(key); };
    reply.then(done, done);
    try {
      const holder = await deadline.race(reply);
      return holder === null ? { mine: true, id } : { mine: false, holder };
    } catch (error) {
      // The lock may still land after we gave up; then nobody would fill it, so release it.
      if (deadline.expired) reply.then((late) => { if (late === null) this.release(key, id); }, () => {});
      throw error;
    }
  }
}
