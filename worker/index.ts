// Public entry of the Workers library (`valkeyaside-edge/worker`): re-exports only.
export { CacheAside } from './cache-aside.ts';
export type { DelOptions, GetOptions, GetResult, LoadMany, LoadManyContext, LoadManyResult, Loader, LoaderContext } from './cache-aside.ts';
export { BytesCacheAside } from './bytes-cache-aside.ts';
export type { BytesKey } from './bytes-cache-aside.ts';
export { TypedCacheAside, jsonCodec } from './typed-cache-aside.ts';
export type { Codec } from './typed-cache-aside.ts';
export { CacheAsideCoordinator } from './coordinator.ts';
export type { CoordinatorStats, GetOutcome } from './rpc.ts';
export { CACHE_ASIDE_DEFAULTS } from './options.ts';
export { COORDINATOR_DEFAULTS } from './coordinator-settings.ts';
export { nearestRegion } from './region.ts';
export type { LocationHint, RequestGeography } from './region.ts';
export type { CacheAsideOptions, FromEnvOptions, Placement, WaitUntilContext } from './options.ts';
export type { CoordinatorEnv } from './coordinator-settings.ts';
export { SerializationError } from './errors.ts';
export { ConnectionError, ProtocolError, ReplyError, TimeoutError, ValkeyasideError } from '../shared/errors.ts';
export { PLACEHOLDER_PREFIX } from '../shared/valkeyaside.ts';
