// TypedCacheAside: values of type T over a CacheAside, stored as text by a codec (JSON by default), like Go's
// TypedCacheAsideClient. A codec failure is a SerializationError, never a silent null.
import { TimeoutError } from '../shared/errors.ts';
import type { CacheAside, DelOptions, GetOptions, GetResult, LoadMany, Loader } from './cache-aside.ts';
import { SerializationError, errorMessage } from './errors.ts';

/** Converts values to and from the text stored in Valkey. Both functions may throw. */
export interface Codec<T> {
  serialize(value: T, key: string): string;
  deserialize(text: string, key: string): T;
}

/** The default codec: `JSON.stringify` / `JSON.parse`. */
export function jsonCodec<T>(): Codec<T> {
  return {
    serialize: (value) => JSON.stringify(value),
    deserialize: (text) => JSON.parse(text) as T,
  };
}

export class TypedCacheAside<T> {
  readonly #cache: CacheAside;
  readonly #codec: Codec<T>;

  /** @throws TypeError when `codec` lacks serialize/deserialize. */
  constructor(cache: CacheAside, codec: Codec<T> = jsonCodec<T>()) {
    if (typeof codec?.serialize !== 'function' || typeof codec?.deserialize !== 'function') {
      throw new TypeError('codec must have serialize(value, key) and deserialize(text, key) functions');
    }
    this.#cache = cache;
    this.#codec = codec;
  }

  /** The untyped cache underneath (Go's `Client()`). */
  get cache(): CacheAside {
    return this.#cache;
  }

  /**
   * As `CacheAside.get`, for T. The result is always the codec's round trip of the stored text.
   * @throws SerializationError (`ERR_SERIALIZE` / `ERR_DESERIALIZE`), plus everything `CacheAside.get` throws;
   *   a TimeoutError's `.value` is the loader's T.
   */
  async get(key: string, ttlMs: number, loader?: Loader<T>, options?: GetOptions): Promise<T | null> {
    return (await this.getWithOutcome(key, ttlMs, loader, options)).value;
  }

  async getWithOutcome(key: string, ttlMs: number, loader?: Loader<T>, options?: GetOptions): Promise<GetResult<T>> {
    let produced: { value: T } | undefined;
    const textLoader: Loader | undefined = loader && (async (loadKey, ctx) => {
      const value = await loader(loadKey, ctx);
      produced = { value };
      return this.#serialize(value, loadKey);
    });
    let result: GetResult<string>;
    try {
      result = await this.#cache.getWithOutcome(key, ttlMs, textLoader, options);
    } catch (error) {
      if (error instanceof TimeoutError && error.value !== undefined && produced !== undefined) {
        throw new TimeoutError(error.message, { cause: error.cause, value: produced.value });
      }
      throw error;
    }
    if (result.value === null) return { value: null, outcome: result.outcome };
    return { value: this.#deserialize(result.value, key), outcome: result.outcome };
  }

  #serialize(value: T, key: string): string {
    let text: unknown;
    try {
      text = this.#codec.serialize(value, key);
    } catch (error) {
      throw new SerializationError('ERR_SERIALIZE', key, `serializing the value loaded for ${JSON.stringify(key)} failed: ${errorMessage(error)}`, { cause: error });
    }
    if (typeof text !== 'string') {
      throw new SerializationError('ERR_SERIALIZE', key, `serializing the value loaded for ${JSON.stringify(key)} gave ${typeof text}, not a string`);
    }
    return text;
  }

  #deserialize(text: string, key: string): T {
    try {
      return this.#codec.deserialize(text, key);
    } catch (error) {
      throw new SerializationError('ERR_DESERIALIZE', key, `the cached value of ${JSON.stringify(key)} cannot be deserialized: ${errorMessage(error)}`, { cause: error });
    }
  }

  /** As `CacheAside.getMany`, for T: loadMany's values are serialized by the codec, and every result deserialized. */
  async getMany(keys: readonly string[], ttlMs: number, loadMany?: LoadMany<T>, options?: GetOptions): Promise<Map<string, T | null>> {
    const results = await this.getManyWithOutcome(keys, ttlMs, loadMany, options);
    return new Map([...results].map(([key, result]) => [key, result.value]));
  }

  /** As `getMany`, and says how each value was obtained. */
  async getManyWithOutcome(keys: readonly string[], ttlMs: number, loadMany?: LoadMany<T>, options?: GetOptions): Promise<Map<string, GetResult<T>>> {
    const textLoadMany: LoadMany | undefined = loadMany && (async (loadKeys, ctx) => {
      const loaded = await loadMany(loadKeys, ctx);
      const texts = new Map<string, string>();
      for (const key of loadKeys) {
        const value = loaded instanceof Map ? loaded.get(key) : Object.hasOwn(loaded, key) ? (loaded as Record<string, T>)[key] : undefined;
        if (value !== undefined) texts.set(key, this.#serialize(value, key));
      }
      return texts;
    });
    const results = await this.#cache.getManyWithOutcome(keys, ttlMs, textLoadMany, options);
    const typed = new Map<string, GetResult<T>>();
    for (const [key, result] of results) typed.set(key, { value: result.value === null ? null : this.#deserialize(result.value, key), outcome: result.outcome });
    return typed;
  }

  del(key: string, options?: DelOptions): Promise<void> {
    return this.#cache.del(key, options);
  }
}
