// Command and prefix abuse beyond bridge-auth.test.ts: every class of command that could change the shared data
// connection's state or reach other keys is refused, and afterwards that connection is provably unchanged (db 0,
// tracking on, not subscribed, not in MULTI); a prefixed token cannot leave its prefix through look-alike bytes,
// multi-key commands, scripts (numkeys tricks, registered bodies) or the valkeyid: marker exception; and an operator
// cannot enable a multi-key command as an extension (it would let a prefixed token name a second key).
import { Redis } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { resolveBridgeOptions } from '../../bridge/options.ts';
import { RespSimple } from '../../shared/resp/index.ts';
import { SCRIPT_SHA, SCRIPTS } from '../../shared/valkeyaside.ts';
import { randomPrefix, startReadyBridge, TEST_TOKEN } from '../support/bridge.ts';
import { errorText, RespWsClient, trackedGet } from '../support/resp-ws-client.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

const TENANT_TOKEN = 'tenant-a-token-0123456789';
const NOPERM = "NOPERM key outside this token's prefix";
let server: ValkeyServer;
let bridge: Bridge;
let writer: Redis;
let admin: RespWsClient;
let tenant: RespWsClient;

beforeAll(async () => {
  server = await startValkeyServer();
  bridge = await startReadyBridge(server.url, { tokens: [{ token: TEST_TOKEN }, { token: TENANT_TOKEN, prefix: 'tenant-a:' }] });
  writer = new Redis({ host: server.host, port: server.port, lazyConnect: true, maxRetriesPerRequest: 0 });
  await writer.connect();
  admin = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
  tenant = await RespWsClient.connect(bridge.url, { token: TENANT_TOKEN });
});

afterAll(async () => {
  await admin?.close();
  await tenant?.close();
  writer?.disconnect();
  await bridge?.close();
  await server?.stop();
});

const REFUSED = [
  ['MULTI'], ['EXEC'], ['DISCARD'], ['WATCH', 'k'], ['SUBSCRIBE', 'c'], ['PSUBSCRIBE', '*'], ['SSUBSCRIBE', 'c'], ['MONITOR'],
  ['CLIENT', 'TRACKING', 'OFF'], ['CLIENT', 'KILL', 'TYPE', 'normal'], ['CLIENT', 'REPLY', 'OFF'], ['SELECT', '1'], ['SWAPDB', '0', '1'],
  ['HELLO', '3'], ['AUTH', 'x'], ['RESET'], ['QUIT'], ['KEYS', '*'], ['SCAN', '0'], ['SCRIPT', 'FLUSH'], ['SCRIPT', 'LOAD', 'return 1'],
  ['FUNCTION', 'FLUSH'], ['FCALL', 'f', '0'], ['EVAL_RO', 'return 1', '0'], ['EVALSHA_RO', SCRIPT_SHA.delkey, '1', 'k', 'x'],
  ['DEBUG', 'SLEEP', '1'], ['SHUTDOWN'], ['REPLICAOF', '127.0.0.1', '1'], ['MIGRATE', '127.0.0.1', '1', 'k', '0', '1'],
  ['RENAME', 'a', 'b'], ['COPY', 'a', 'b'], ['MOVE', 'a', '1'], ['MSET', 'a', '1', 'b', '2'], ['MGET', 'a', 'b'], ['UNLINK', 'a'],
  ['OBJECT', 'ENCODING', 'a'], ['DUMP', 'a'], ['RESTORE', 'a', '0', 'x'], ['BLPOP', 'a', '0'], ['WAIT', '1', '0'], ['CONFIG', 'GET', '*'],
  ['ACL', 'LIST'], ['FLUSHALL'], ['FLUSHDB'], ['SAVE'], ['BGSAVE'], ['INFO'], ['MEMORY', 'USAGE', 'a'], ['GETEX', 'a', 'PERSIST'],
  ['GETDEL', 'a'], ['INCR', 'a'], ['APPEND', 'a', 'b'], ['EXPIRE', 'a', '1'], ['PERSIST', 'a'], ['TYPE', 'a'], ['SORT', 'a', 'STORE', 'b'],
];

describe('abuse: refused command classes', () => {
  it('refuses every command that could change the shared connection or reach other keys, which stays as it was', async () => {
    const p = randomPrefix('classes');
    await writer.set(`${p}k`, 'db0-value');
    const replies = await admin.pipeline(REFUSED);
    replies.forEach((reply, i) => {
      expect(errorText(reply), REFUSED[i]!.join(' ')).toBe(`ERR command '${REFUSED[i]![0]}' is not allowed by this bridge`);
    });
    // Still db 0, not subscribed, not in a transaction, tracking on and pushing, scripts still loaded.
    expect(await trackedGet(admin, `${p}k`, 60_000)).toEqual({ value: 'db0-value', ttlMs: 60_000, cacheable: true });
    expect(await admin.call('SET', `${p}k2`, 'v')).toEqual(new RespSimple('OK'));
    await writer.set(`${p}k`, 'changed');
    expect(await admin.nextPush()).toEqual([`${p}k`]);
    expect(await writer.dbsize()).toBeGreaterThan(0);
    expect(bridge.health().ok).toBe(true);
  });
});

describe('abuse: escaping a token\'s prefix', () => {
  it.each([
    ['another case', Buffer.from('TENANT-A:k')],
    ['a fullwidth colon', Buffer.from('tenant-a\uff1ak')],
    ['an overlong UTF-8 colon', Buffer.concat([Buffer.from('tenant-a'), Buffer.from([0xc0, 0xba]), Buffer.from('k')])],
    ['the prefix without its last byte', Buffer.from('tenant-a')],
    ['a NUL before the colon', Buffer.from('tenant-a\0:k')],
    ['a leading space', Buffer.from(' tenant-a:k')],
    ['the empty key', Buffer.alloc(0)],
  ])('refuses a key with %s', async (_name, key) => {
    const replies = await tenant.pipeline([['GET', key], ['TRACKED.GET', key, 1000], ['SET', key, 'x'], ['DEL', key], ['EXISTS', key]]);
    expect(replies.map(errorText)).toEqual([NOPERM, NOPERM, NOPERM, NOPERM, NOPERM]);
  });

  it('keeps binary keys that start with the prefix inside it, byte for byte', async () => {
    const key = Buffer.concat([Buffer.from('tenant-a:'), Buffer.from([0, 0xff, 0x0d, 0x0a, 0x2e, 0x2e])]);
    expect(await tenant.call('SET', key, 'bin')).toEqual(new RespSimple('OK'));
    expect((await writer.getBuffer(key))?.toString()).toBe('bin');
    expect(await tenant.call('DEL', key)).toBe(1);
  });

  it('refuses a multi-key command as soon as one key is outside, running none of it', async () => {
    const p = randomPrefix('multi');
    const [mine, theirs] = [`tenant-a:${p}k`, `tenant-b:${p}k`];
    await writer.set(mine, 'm');
    await writer.set(theirs, 't');
    expect(errorText(await tenant.call('EXISTS', mine, theirs))).toBe(NOPERM);
    expect(errorText(await tenant.call('DEL', theirs, mine))).toBe(NOPERM);
    expect(await writer.mget(mine, theirs)).toEqual(['m', 't']);
  });

  it('refuses scripts on other keys, numkeys tricks and the registered bodies sent by EVAL', async () => {
    const p = randomPrefix('scripts');
    const [mine, theirs] = [`tenant-a:${p}k`, `tenant-b:${p}k`];
    await writer.set(theirs, 'valkeyid:000000000000000000000000');
    expect(errorText(await tenant.call('EVAL', SCRIPTS.setkey, 1, theirs, 'valkeyid:000000000000000000000000', 'owned', 1000))).toBe(NOPERM);
    expect(errorText(await tenant.call('EVALSHA', SCRIPT_SHA.acquireLock, 1, theirs, 'valkeyid:aa', 1000))).toBe(NOPERM);
    expect(errorText(await tenant.call('EVALSHA', SCRIPT_SHA.delkey.toUpperCase(), 1, theirs, 'valkeyid:000000000000000000000000'))).toBe(NOPERM);
    expect(errorText(await tenant.call('EVALSHA', SCRIPT_SHA.delkey, 2, mine, theirs, 'x')))
      .toBe('ERR syntax error: numkeys must be 1 for the registered scripts');
    expect(errorText(await tenant.call('EVALSHA', SCRIPT_SHA.delkey, 0, theirs, 'x')))
      .toBe('ERR syntax error: numkeys must be 1 for the registered scripts');
    expect(errorText(await tenant.call('EVAL', `${SCRIPTS.delkey} `, 1, mine, 'x'))).toBe('NOSCRIPT script not registered with this bridge');
    expect(await writer.get(theirs)).toBe('valkeyid:000000000000000000000000');
  });

  it('allows the valkeyid: marker exception only for reads, DEL and empty SETs', async () => {
    const marker = `valkeyid:${randomPrefix('m').replace(/[^0-9a-f]/g, '')}`;
    expect(errorText(await tenant.call('SET', marker, 'payload', 'PX', 1000))).toBe(NOPERM);
    expect(errorText(await tenant.call('EVALSHA', SCRIPT_SHA.setkey, 1, marker, 'a', 'b', 1000))).toBe(NOPERM);
    expect(errorText(await tenant.call('EVALSHA', SCRIPT_SHA.acquireLock, 1, marker, 'a', 1000))).toBe(NOPERM);
    expect(await tenant.call('SET', marker, '', 'PX', 1000)).toEqual(new RespSimple('OK'));
    expect(await writer.get(marker)).toBe('');
  });
});

describe('abuse: extension commands', () => {
  it.each(['RENAME', 'COPY', 'MSET', 'MGET', 'SMOVE', 'LMOVE', 'SUNIONSTORE', 'ZUNIONSTORE', 'BITOP', 'PFMERGE', 'SORT', 'GEOSEARCHSTORE'])(
    'refuses %s as an extension: it names a second key the prefix check would not see', (name) => {
      let thrown: unknown;
      try {
        resolveBridgeOptions({ tokens: [{ token: TEST_TOKEN }], extraCommands: [name.toLowerCase()] });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(RangeError);
      expect(thrown).toMatchObject({
        option: 'extraCommands',
        message: `extraCommands must not include ${name}: it would break or escape the bridge's shared connection`,
      });
    });
});
