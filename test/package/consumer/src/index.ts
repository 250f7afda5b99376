// The new user's Worker (test/package/new-user.test.ts copies it into a fresh project that installed the packed
// tarball): every export of `valkeyaside-edge/worker` used once. GET /checks lists the checks, GET /check/<name>
// runs one; /readme/<n> runs the README's Worker examples. Adding an API is one line in CHECKS (and in COVERED).
import * as api from 'valkeyaside-edge/worker';
import {
  BytesCacheAside, CACHE_ASIDE_DEFAULTS, COORDINATOR_DEFAULTS, CacheAside, ConnectionError, PLACEHOLDER_PREFIX, ProtocolError, ReplyError,
  SerializationError, TimeoutError, TypedCacheAside, ValkeyasideError, jsonCodec, nearestRegion,
} from 'valkeyaside-edge/worker';
import type {
  BytesKey, CacheAsideOptions, Codec, CoordinatorEnv, CoordinatorStats, DelOptions, FromEnvOptions, GetOptions, GetOutcome,
  GetResult, LoadMany, LoadManyContext, LoadManyResult, Loader, LoaderContext, LocationHint, Placement, RequestGeography,
} from 'valkeyaside-edge/worker';
import { README_HANDLERS } from './readme-handlers';

export { CacheAsideCoordinator } from 'valkeyaside-edge/worker';

type Check = (cache: CacheAside, key: (name: string) => string, env: Env) => Promise<void>;

function expect(ok: boolean, what: string): void {
  if (!ok) throw new Error(`check failed: ${what}`);
}

async function rejects(promise: Promise<unknown>, test: (err: unknown) => boolean, what: string): Promise<void> {
  try {
    await promise;
  } catch (err) {
    expect(test(err), `${what} (got ${err instanceof Error ? `${err.name} ${err.message}` : String(err)})`);
    return;
  }
  throw new Error(`check failed: ${what} (no error)`);
}

const upper: Loader = (key: string, _ctx: LoaderContext) => key.toUpperCase();
const numberCodec: Codec<number> = { serialize: (n) => String(n), deserialize: (s) => Number(s) };

const CHECKS: Record<string, Check> = {
  'get': async (c, k) => expect((await c.get(k('get'), 60_000, upper)) === k('get').toUpperCase(), 'get loads'),
  'get-miss': async (c, k) => expect((await c.get(k('miss'), 60_000)) === null, 'get without loader is null'),
  'outcome': async (c, k) => {
    const first: GetResult<string> = await c.getWithOutcome(k('o'), 60_000, upper);
    const second = await c.getWithOutcome(k('o'), 60_000, upper);
    const outcomes: GetOutcome[] = [first.outcome, second.outcome];
    expect(outcomes.join() === 'loaded,hit', `outcomes ${outcomes.join()}`);
  },
  'del': async (c, k) => {
    await c.get(k('d'), 60_000, () => 'old');
    const options: DelOptions = { timeoutMs: 5_000 };
    await c.del(k('d'), options);
    expect((await c.get(k('d'), 60_000, () => 'new')) === 'new', 'del drops the value');
  },
  'set-ttl': async (c, k) => expect((await c.get(k('t'), 60_000, (_key, ctx) => { ctx.setTtl(1_000); return 'short'; })) === 'short', 'setTtl'),
  'options': async (c, k) => {
    const options: GetOptions = { timeoutMs: 5_000, signal: AbortSignal.timeout(5_000) };
    expect((await c.get(k('opt'), 60_000, upper, options)) === k('opt').toUpperCase(), 'get with options');
  },
  'timeout': async (c, k) => rejects(c.get(k('slow'), 60_000, () => new Promise<string>((r) => setTimeout(() => r('late'), 2_000)), { timeoutMs: 200 }),
    (e) => e instanceof TimeoutError && e instanceof ValkeyasideError && e.code === 'ERR_TIMEOUT', 'a loader slower than timeoutMs is a TimeoutError'),
  'loader-error': async (c, k) => rejects(c.get(k('fail'), 60_000, () => { throw new RangeError('origin down'); }),
    (e) => e instanceof RangeError && e.message === 'origin down', 'the loader\'s own error'),
  'typed': async (c, k) => {
    const users: TypedCacheAside<{ id: number }> = c.typed<{ id: number }>();
    expect(users instanceof TypedCacheAside && (await users.get(k('u'), 60_000, () => ({ id: 7 })))?.id === 7, 'typed json');
    await users.del(k('u'));
    expect((await users.getWithOutcome(k('u'), 60_000, () => ({ id: 8 }))).value?.id === 8, 'typed getWithOutcome');
  },
  'codec': async (c, k) => {
    expect((await c.typed(numberCodec).get(k('n'), 60_000, () => 42)) === 42, 'custom codec');
    expect((await new TypedCacheAside(c, jsonCodec<string[]>()).get(k('j'), 60_000, () => ['a']))?.join() === 'a', 'jsonCodec');
  },
  'serialization': async (c, k) => {
    await c.get(k('raw'), 60_000, () => 'not json');
    await rejects(c.typed<object>().get(k('raw'), 60_000), (e) => e instanceof SerializationError && e.code === 'ERR_DESERIALIZE', 'SerializationError');
  },
  'get-many': async (c, k, env) => {
    const calls: string[][] = [];
    const loadMany: LoadMany = (keys: string[], ctx: LoadManyContext): LoadManyResult<string, string> => {
      calls.push([...ctx.keys]);
      return new Map(keys.filter((key) => !key.endsWith('left')).map((key) => [key, key.toUpperCase()]));
    };
    await c.get(k('m-warm'), 60_000, upper);
    const values = await c.getMany([k('m-warm'), k('m-cold'), k('m-left'), k('m-cold')], 60_000, loadMany);
    expect(values.get(k('m-warm')) === k('m-warm').toUpperCase() && values.get(k('m-cold')) === k('m-cold').toUpperCase() && values.get(k('m-left')) === null,
      'getMany: warm, cold and left-out keys');
    expect(calls.length === 1 && calls[0]!.length === 2, `getMany: one loadMany with the cold keys (${JSON.stringify(calls)})`);
    const outcomes = await c.getManyWithOutcome([k('m-cold')], 60_000);
    expect(outcomes.get(k('m-cold'))?.outcome === 'hit', 'getManyWithOutcome');
    const typed = await c.typed<{ n: number }>().getMany([k('m-t')], 60_000, (keys) => Object.fromEntries(keys.map((key) => [key, { n: 1 }])));
    const bytes = await c.bytes().getMany([k('m-b')], 60_000, (keys) => new Map(keys.map((key) => [key, new Uint8Array([1])])));
    expect(typed.get(k('m-t'))?.n === 1 && bytes.get(k('m-b'))?.[0] === 1, 'typed and bytes getMany');
    const options: CacheAsideOptions = { coalesce: false };
    const alone = await Promise.all([1, 2].map(() => CacheAside.fromEnv(env, options).get(k('m-alone'), 60_000, upper)));
    expect(alone.every((value) => value === k('m-alone').toUpperCase()), 'coalesce: false');
  },
  'ping': async (c) => c.ping(),
  'bytes': async (c, k) => {
    const bytes: BytesCacheAside = c.bytes();
    const key: BytesKey = new TextEncoder().encode(k('b'));
    const loaded = await bytes.getWithOutcome(key, 60_000, () => new Uint8Array([0, 255]));
    expect(loaded.outcome === 'loaded' && (await bytes.get(k('b'), 60_000))?.join() === '0,255', 'bytes: a Uint8Array key and its string form are one key');
    await bytes.del(key);
    expect((await bytes.get(key, 60_000)) === null && bytes.coordinatorFor(key) === c.coordinatorFor(k('b')), 'bytes del');
  },
  'on-unavailable': async (_c, k, env) => {
    const options: CacheAsideOptions = { onUnavailable: 'load', maxBypassLoads: 2 };
    const result = await CacheAside.fromEnv(env, options).getWithOutcome(k('ou'), 60_000, upper);
    const outcome: GetOutcome = result.outcome;
    expect(outcome === 'loaded' || outcome === 'bypass', `onUnavailable: 'load' while available (${outcome})`);
  },
  'from-env-options': async (_c, k, env) => {
    const placement: Placement = (key) => `custom-${key.length % 2}`;
    const options: FromEnvOptions & CacheAsideOptions = { binding: 'CACHE_ASIDE', placement, namePrefix: 'other', timeoutMs: 5_000, delTimeoutMs: 5_000 };
    const cache = CacheAside.fromEnv(env, options);
    expect((await cache.get(k('p'), 60_000, upper)) === k('p').toUpperCase() && cache.coordinatorFor('ab').endsWith('custom-0'), 'placement function');
    await rejects(Promise.resolve().then(() => CacheAside.fromEnv(env, { binding: 'NOPE' })), (e) => e instanceof TypeError, 'a missing binding is a TypeError');
  },
  'region': async (_c, k, env) => {
    const paris: RequestGeography = { cf: { continent: 'EU', country: 'FR', longitude: '2.35' } };
    const hint: LocationHint | undefined = nearestRegion(paris);
    const regional = CacheAside.fromEnv(env, { region: hint });
    expect(hint === 'weur' && regional.coordinatorFor(k('r')).startsWith('valkeyaside@weur:'), `region ${String(hint)}`);
    expect((await regional.get(k('r'), 60_000, upper)) === k('r').toUpperCase(), 'a regional get loads');
    await regional.bytes().del(k('r'));
    expect((await regional.typed<string>().get(k('r'), 60_000)) === null, 'the regional del drops it');
  },
  'constants': async () => {
    const coordinatorEnv: CoordinatorEnv = { BRIDGE_URL: 'ws://x/resp' };
    const connected: CoordinatorStats['connected'] = true;
    expect(CACHE_ASIDE_DEFAULTS.binding === 'CACHE_ASIDE' && COORDINATOR_DEFAULTS.clientTtlMs > 0 && PLACEHOLDER_PREFIX.startsWith('valkeyid:') && connected && coordinatorEnv.BRIDGE_URL !== undefined, 'constants');
  },
  'errors': async () => {
    const errors: ValkeyasideError[] = [new ConnectionError('down'), new ProtocolError('ERR_PROTOCOL', 'bad', 1002), new ReplyError('ERR wrong'), new TimeoutError('late', { value: 'v' })];
    expect(errors.every((e) => e instanceof ValkeyasideError && typeof e.code === 'string'), 'error classes');
  },
};

/** Every runtime export, and the check that covers it: a new export fails the new user's type check until listed. */
const COVERED = {
  CacheAside: 'get', BytesCacheAside: 'bytes', CacheAsideCoordinator: 'wrangler.toml binding', TypedCacheAside: 'typed', jsonCodec: 'codec',
  CACHE_ASIDE_DEFAULTS: 'constants', COORDINATOR_DEFAULTS: 'constants', PLACEHOLDER_PREFIX: 'constants',
  SerializationError: 'serialization', ConnectionError: 'errors', ProtocolError: 'errors', ReplyError: 'errors',
  TimeoutError: 'timeout', ValkeyasideError: 'errors', nearestRegion: 'region',
} satisfies Record<keyof typeof api, string>;

export default {
  async fetch(request, env, _ctx): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/checks') return Response.json({ checks: Object.keys(CHECKS), covered: COVERED });
    const readme = /^\/readme\/(\d+)$/.exec(url.pathname);
    if (readme) return README_HANDLERS[Number(readme[1])]!.fetch!(request as never, env, _ctx);
    const check = CHECKS[url.pathname.replace(/^\/check\//, '')];
    if (!check) return new Response('no such check\n', { status: 404 });
    const run = crypto.randomUUID();
    try {
      await check(CacheAside.fromEnv(env), (name) => `new-user:${run}:${name}`, env);
      return Response.json({ ok: true });
    } catch (err) {
      return Response.json({ ok: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }, { status: 500 });
    }
  },
} satisfies ExportedHandler<Env>;
