// Go valkeyaside's per-key lock as one coordinator takes it: `SET key id NX GET PX ttl` (or the Lua lock) under the
// client id, one attempt per key shared by the coordinator's gets until a push names the key, released by
// compare-and-delete, and released too when it lands after its get gave up (nobody would ever fill it). Keys are
// binary strings; the holder is the exact bytes the server returned, so it is released by exactly those bytes.
import { binaryBytes, wireKey } from '../shared/bytes.ts';
import { ProtocolError, ReplyError, ValkeyasideError } from '../shared/errors.ts';
import { RespSimple } from '../shared/resp/index.ts';
import type { RespValue } from '../shared/resp/index.ts';
import { SCRIPT_SHA } from '../shared/valkeyaside.ts';
import type { BridgeSocket } from './bridge-socket.ts';
import type { ClientId } from './client-id.ts';
import type { Deadline } from './waiters.ts';

/** `mine` when this get now holds the lock under `id`; else `holder` is the key's value (a placeholder or a value). */
export type LockResult = { mine: true; id: string } | { mine: false; holder: Uint8Array };

/** A lock attempt in flight, shared by the gets of its key in this coordinator until a push names the key. */
interface LockFlight {
  readonly id: string;
  readonly reply: Promise<Uint8Array | null>;
}

function bytesOrNull(reply: RespValue, what: string): Uint8Array | null {
  if (reply === null || reply instanceof Uint8Array) return reply;
  if (reply instanceof RespSimple) return binaryBytes(reply.value);
  throw new ProtocolError('ERR_BRIDGE_REPLY', `unexpected reply to ${what}: expected a string or null`);
}

/** Servers before 7.0 refuse `SET ... NX GET` as a syntax error: say what to turn on instead. */
function lockError(error: unknown): unknown {
  if (!(error instanceof ReplyError) || !/^ERR syntax error/i.test(error.message)) return error;
  return new ValkeyasideError('ERR_LOCK_UNSUPPORTED',
    `the server refused the lock command SET key id NX GET PX ttl (${error.message}); it needs Valkey or Redis >= 7.0. ` +
    'On older servers set VALKEYASIDE_USE_LUA_LOCK=true (Go: UseLuaLock), which takes the lock with a Lua script', { cause: error });
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
  acquire(key: string, ttlMs: number, deadline: Deadline): Promise<LockResult> {
    const shared = this.#flights.get(key);
    if (shared !== undefined) return this.#join(shared, deadline);
    // Sent before this returns (with the marker, on a first lock), so a caller can pipeline it with a read.
    return this.#tryLock(key, this.#clientId.claim(deadline), ttlMs, deadline);
  }

  async #join(shared: LockFlight, deadline: Deadline): Promise<LockResult> {
    const holder = await deadline.race(shared.reply);
    return { mine: false, holder: holder ?? binaryBytes(shared.id) };
  }

  /** Compare-and-delete of our lock, in the background: nobody waits for it. */
  release(key: string, id: string): void {
    this.#bridge.command(['EVALSHA', SCRIPT_SHA.delkey, 1, wireKey(key), id]).catch(() => {});
  }

  /** Stops sharing the key's attempt: the next get of the key sends its own. */
  forget(key: string): void {
    this.#flights.delete(key);
  }

  /** Stops sharing every attempt (a flush, a disconnect, going idle). */
  clear(): void {
    this.#flights.clear();
  }

  async #tryLock(key: string, claim: { id: string; ready: Promise<string> }, ttlMs: number, deadline: Deadline): Promise<LockResult> {
    const { id } = claim;
    const args = this.#useLuaLock
      ? ['EVALSHA', SCRIPT_SHA.acquireLock, 1, wireKey(key), id, ttlMs]
      : ['SET', wireKey(key), id, 'NX', 'GET', 'PX', ttlMs];
    const sent = this.#bridge.command(args, deadline.at).then((r) => bytesOrNull(r, 'the lock'), (error: unknown) => { throw lockError(error); });
    // The lock counts only once its marker is set too: a lock under an id replaced meanwhile is released.
    const reply = Promise.all([sent, claim.ready]).then(([holder]) => holder, (error: unknown) => {
      sent.then((late) => { if (late === null) this.release(key, id); }, () => {});
      throw error;
    });
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
