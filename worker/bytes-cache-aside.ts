// BytesCacheAside: the cache for byte keys and values (`Uint8Array`), exactly as Valkey holds them, so binary values
// can be cached and shared with Go clients byte for byte. A string key is its UTF-8 bytes, as in the text view.
import { binaryKey, describeKey } from '../shared/bytes.ts';
import { isPlaceholder } from '../shared/valkeyaside.ts';
import { checkNotReserved } from './coordinator-client.ts';
import type { CoordinatorClient, DelOptions, GetOptions, GetResult, KeyForms, ValueForm } from './coordinator-client.ts';
import { getMany, keyList } from './get-many-client.ts';
import type { LoadMany } from './get-many-client.ts';
import type { Loader } from './loader-call.ts';

/** A key of the bytes view: bytes, or a string standing for its UTF-8 bytes. */
export type BytesKey = string | Uint8Array;

/** @throws TypeError for a key of another type, a string with a lone surrogate, or a reserved key. */
function bytesKey<K extends BytesKey>(key: K): KeyForms<K> {
  const binary = binaryKey(key);
  const display = describeKey(binary);
  checkNotReserved(binary, display);
  return { key, binary, display };
}

const BYTES: ValueForm<Uint8Array, BytesKey> = {
  toBytes(value, key) {
    const display = describeKey(binaryKey(key));
    if (!(value instanceof Uint8Array)) {
      throw new TypeError(`the loader for ${display} returned ${value === null ? 'null' : typeof value}; it must return a Uint8Array`);
    }
    if (isPlaceholder(value)) throw new TypeError(`the loader for ${display} returned a value starting with "valkeyid:", which readers would take for a lock`);
    return value;
  },
  fromBytes: (bytes) => bytes,
  peek: async (stub, binaryKey, staleMs) => {
    const bytes = await (staleMs === undefined ? stub.peekValue(binaryKey) : stub.peekValue(binaryKey, staleMs));
    return bytes instanceof Uint8Array ? bytes : undefined;
  },
};

export class BytesCacheAside {
  readonly #client: CoordinatorClient;

  /** Made by `CacheAside.bytes()`. */
  constructor(client: CoordinatorClient) {
    this.#client = client;
  }

  /** As `CacheAside.get`, for bytes: the stored bytes exactly, or what `loader` returns (stored as is). */
  async get<K extends BytesKey>(key: K, ttlMs: number, loader?: Loader<Uint8Array, K>, options?: GetOptions): Promise<Uint8Array | null> {
    return (await this.getWithOutcome(key, ttlMs, loader, options)).value;
  }

  /** As `get`, and says how the value was obtained. */
  getWithOutcome<K extends BytesKey>(key: K, ttlMs: number, loader?: Loader<Uint8Array, K>, options?: GetOptions): Promise<GetResult<Uint8Array>> {
    return this.#client.get(bytesKey(key), ttlMs, loader, BYTES as ValueForm<Uint8Array, K>, options);
  }

  /**
   * As `CacheAside.getMany`, for bytes. The result is keyed by the keys as given; loadMany answers with a Map keyed
   * by the very keys it was given (or a record, when they are strings).
   */
  async getMany<K extends BytesKey>(keys: readonly K[], ttlMs: number, loadMany?: LoadMany<Uint8Array, K>, options?: GetOptions): Promise<Map<K, Uint8Array | null>> {
    const results = await this.getManyWithOutcome(keys, ttlMs, loadMany, options);
    return new Map([...results].map(([key, result]) => [key, result.value]));
  }

  /** As `getMany`, and says how each value was obtained. */
  getManyWithOutcome<K extends BytesKey>(keys: readonly K[], ttlMs: number, loadMany?: LoadMany<Uint8Array, K>, options?: GetOptions): Promise<Map<K, GetResult<Uint8Array>>> {
    return getMany(this.#client, keyList(keys, bytesKey), ttlMs, loadMany, BYTES as ValueForm<Uint8Array, K>, options);
  }

  /** As `CacheAside.del`. */
  async del(key: BytesKey, options?: DelOptions): Promise<void> {
    await this.#client.del(bytesKey(key), options);
  }

  /** The coordinator (Durable Object name) that serves `key`: the same as the text view's for the same bytes. */
  coordinatorFor(key: BytesKey): string {
    return this.#client.nameFor(bytesKey(key).binary);
  }
}
