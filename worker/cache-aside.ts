// CacheAside: the caller-side API for text values (valid UTF-8, exactly: a BOM is kept, invalid bytes are an error,
// never a silently altered string), and the entry point to the bytes and typed views. The RPC, deadlines and the
// loader callback live in CoordinatorClient.
import { binaryKey, utf8Bytes, utf8Text } from '../shared/bytes.ts';
import { PLACEHOLDER_PREFIX } from '../shared/valkeyaside.ts';
import { BytesCacheAside } from './bytes-cache-aside.ts';
import type { CacheAsideCoordinator } from './coordinator.ts';
import { CoordinatorClient, checkNotReserved } from './coordinator-client.ts';
import type { DelOptions, GetOptions, GetResult, KeyForms, ValueForm } from './coordinator-client.ts';
import { resolveCoordinatorSettings } from './coordinator-settings.ts';
import type { CoordinatorEnv } from './coordinator-settings.ts';
import { SerializationError } from './errors.ts';
import { getMany, keyList } from './get-many-client.ts';
import type { LoadMany } from './get-many-client.ts';
import type { Loader } from './loader-call.ts';
import { CACHE_ASIDE_DEFAULTS, resolveCacheAsideOptions } from './options.ts';
import type { CacheAsideOptions, FromEnvOptions } from './options.ts';
import { TypedCacheAside } from './typed-cache-aside.ts';
import type { Codec } from './typed-cache-aside.ts';

export type { DelOptions, GetOptions, GetResult } from './coordinator-client.ts';
export type { Loader, LoaderContext } from './loader-call.ts';
export type { LoadMany, LoadManyContext, LoadManyResult } from './get-many-client.ts';

/** A string key's forms. @throws TypeError for a non-string, a lone surrogate, or a reserved key. */
function textKey(key: unknown): KeyForms<string> {
  if (typeof key !== 'string') throw new TypeError(`key must be a string; got ${key === null ? 'null' : typeof key} (use cache.bytes() for byte keys)`);
  const display = JSON.stringify(key);
  const binary = binaryKey(key);
  checkNotReserved(binary, display);
  return { key, binary, display };
}

/** Text values: a loader's string is stored as its UTF-8 bytes; stored bytes come back as text only if valid UTF-8. */
const TEXT: ValueForm<string, string> = {
  toBytes(value, key) {
    if (typeof value !== 'string') {
      throw new TypeError(`the loader for ${JSON.stringify(key)} returned ${value === null ? 'null' : typeof value}; it must return a string (use cache.typed() or cache.bytes() for other values)`);
    }
    if (value.startsWith(PLACEHOLDER_PREFIX)) {
      throw new TypeError(`the loader for ${JSON.stringify(key)} returned a value starting with "${PLACEHOLDER_PREFIX}", which readers would take for a lock`);
    }
    return utf8Bytes(value, `the value the loader for ${JSON.stringify(key)} returned`);
  },
  fromBytes(bytes, key) {
    const text = utf8Text(bytes);
    if (text === undefined) {
      throw new SerializationError('ERR_DESERIALIZE', key,
        `the cached value of ${JSON.stringify(key)} (${bytes.length} bytes) is not valid UTF-8; read it with cache.bytes()`);
    }
    return text;
  },
  peek: async (stub, binaryKey, staleMs) => {
    const text = await (staleMs === undefined ? stub.peekText(binaryKey) : stub.peekText(binaryKey, staleMs));
    return typeof text === 'string' ? text : undefined;
  },
};

function isNamespace(value: unknown): value is DurableObjectNamespace<CacheAsideCoordinator> {
  return typeof value === 'object' && value !== null && typeof (value as { getByName?: unknown }).getByName === 'function';
}

/**
 * Cache-aside backed by Valkey through the bridge, with a local copy per coordinator kept fresh by invalidation
 * pushes and one loader per key across every isolate (Go valkeyaside's algorithm, byte-compatible with it).
 * Keys and values are text here (UTF-8 on the wire); `bytes()` gives the same cache for byte keys and values.
 *
 * @example
 * export { CacheAsideCoordinator } from 'valkeyaside-edge/worker';
 * export default {
 *   async fetch(request, env) {
 *     const cache = CacheAside.fromEnv(env);
 *     const user = await cache.get('user:1', 60_000, async (key, ctx) => {
 *       const res = await fetch(`https://origin.example.com/${key}`, { signal: ctx.signal });
 *       return res.text();
 *     });
 *     return new Response(user);
 *   },
 * };
 */
export class CacheAside {
  readonly #client: CoordinatorClient;

  /** @throws TypeError or RangeError for an invalid option. */
  constructor(namespace: DurableObjectNamespace<CacheAsideCoordinator>, options?: CacheAsideOptions) {
    if (!isNamespace(namespace)) throw new TypeError('CacheAside needs a Durable Object namespace bound to CacheAsideCoordinator');
    this.#client = new CoordinatorClient(namespace, resolveCacheAsideOptions(options));
  }

  /**
   * A CacheAside on `env.CACHE_ASIDE` (or `options.binding`). When `env` holds BRIDGE_URL or BRIDGE_TOKEN they are
   * checked here too, so a misconfiguration fails in the caller with the coordinator's own message.
   * @throws TypeError when the binding is missing or an env var is invalid.
   */
  static fromEnv(env: object, options: FromEnvOptions = {}): CacheAside {
    const binding = options.binding ?? CACHE_ASIDE_DEFAULTS.binding;
    const namespace = (env as Record<string, unknown>)[binding];
    if (!isNamespace(namespace)) {
      throw new TypeError(`env.${binding} is not a Durable Object namespace: bind the class in wrangler.toml ` +
        `([[durable_objects.bindings]] name = "${binding}", class_name = "CacheAsideCoordinator") and re-export it from your Worker`);
    }
    if ('BRIDGE_URL' in env || 'BRIDGE_TOKEN' in env) resolveCoordinatorSettings(env as CoordinatorEnv);
    return new CacheAside(namespace, options);
  }

  /** The coordinator (Durable Object name) that serves `key`. */
  coordinatorFor(key: string): string {
    return this.#client.nameFor(textKey(key).binary);
  }

  /**
   * The value of `key`: the local copy, Valkey's, or (on a miss) what `loader` returns, stored with PX `ttlMs`.
   * Without a loader a miss resolves to null. Concurrent gets of one key run one loader between them.
   * @throws whatever the loader threw (the same object); TimeoutError when the deadline (the ttl, or the caller's
   *   tighter `timeoutMs`/`signal`) passes, with `.value` set when the loader had already returned;
   *   ConnectionError when the cache cannot serve (no bridge, or the bridge cannot reach Valkey), unless
   *   `onUnavailable: 'load'`; ReplyError for a command error; SerializationError when the stored value is not
   *   valid UTF-8; TypeError/RangeError for invalid arguments.
   */
  async get(key: string, ttlMs: number, loader?: Loader, options?: GetOptions): Promise<string | null> {
    return (await this.getWithOutcome(key, ttlMs, loader, options)).value;
  }

  /** As `get`, and says how the value was obtained (see `GetOutcome`). */
  getWithOutcome(key: string, ttlMs: number, loader?: Loader, options?: GetOptions): Promise<GetResult<string>> {
    return this.#client.get(textKey(key), ttlMs, loader, TEXT, options);
  }

  /**
   * The values of `keys`, each with `get`'s semantics: hits come back without loading, keys another client (edge or
   * Go) holds the lock of are waited for, and the keys this call locks are loaded in ONE `loadMany(keys, ctx)` call
   * holding exactly those keys, even when they live on several coordinators (which are asked in parallel). Its Map
   * or record is stored key by key with compare-and-set; a key it leaves out is not cached and comes back null.
   * Duplicate keys are asked for once. A key locked only after a wait (the holder released it without storing) is
   * loaded by a further loadMany call holding the keys locked at that point.
   * @throws as `get`: what the loader threw, TimeoutError at the deadline, ConnectionError (`onUnavailable` does not
   *   apply to getMany), ReplyError, SerializationError; the first error of any key fails the whole call.
   * @example const users = await cache.getMany(['user:1', 'user:2'], 60_000, async (keys) => new Map(keys.map((k) => [k, `${k} loaded`])));
   */
  async getMany(keys: readonly string[], ttlMs: number, loadMany?: LoadMany, options?: GetOptions): Promise<Map<string, string | null>> {
    const results = await this.getManyWithOutcome(keys, ttlMs, loadMany, options);
    return new Map([...results].map(([key, result]) => [key, result.value]));
  }

  /** As `getMany`, and says how each value was obtained. */
  getManyWithOutcome(keys: readonly string[], ttlMs: number, loadMany?: LoadMany, options?: GetOptions): Promise<Map<string, GetResult<string>>> {
    return getMany(this.#client, keyList(keys, textKey), ttlMs, loadMany, TEXT, options);
  }

  /**
   * Deletes `key` in Valkey. The key's coordinator drops its copy at once (a later get there never sees the old
   * value); every other coordinator drops its copy on the bridge's push.
   * @throws TimeoutError past `timeoutMs` (default 10000) or on abort; ConnectionError/ReplyError from the bridge.
   */
  async del(key: string, options?: DelOptions): Promise<void> {
    await this.#client.del(textKey(key), options);
  }

  /**
   * Checks that the cache can serve: a PING through the coordinator serving `options.key` (default: the empty
   * key's), its bridge and the bridge's tracked connection to Valkey. For health checks.
   * @throws ConnectionError when any part is down; TimeoutError as `del`.
   */
  async ping(options: DelOptions & { key?: string } = {}): Promise<void> {
    const keys = textKey(options.key ?? '');
    await this.#client.call('ping', keys.binary, options, (stub, timeoutMs) => stub.pingBridge({ timeoutMs }));
  }

  /**
   * This cache for byte keys and values (`Uint8Array`), the form other Valkey clients share byte for byte.
   * @example const png = await cache.bytes().get('img:1', 60_000, async () => new Uint8Array(await (await fetch(url)).arrayBuffer()));
   */
  bytes(): BytesCacheAside {
    return new BytesCacheAside(this.#client);
  }

  /**
   * A view of this cache for values of type T, stored as text by `codec` (JSON by default).
   * @example const users = cache.typed<User>(); const user = await users.get('user:1', 60_000, loadUser);
   */
  typed<T>(codec?: Codec<T>): TypedCacheAside<T> {
    return new TypedCacheAside<T>(this, codec);
  }
}
