// The security boundary: bearer tokens before the upgrade, the session limit, tenant prefixes and the allowlist.
import { Redis } from 'iovalkey';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { RESP_SUBPROTOCOL } from '../../shared/protocol.ts';
import { RespSimple } from '../../shared/resp/index.ts';
import { SCRIPT_SHA } from '../../shared/valkeyaside.ts';
import { httpBase, randomPrefix, startReadyBridge, TEST_TOKEN, waitFor } from '../support/bridge.ts';
import { errorText, RespWsClient, text, trackedGet } from '../support/resp-ws-client.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

const TENANT_TOKEN = 'tenant-a-token-0123456789';
const NOPERM = "NOPERM key outside this token's prefix";
let server: ValkeyServer;
let bridge: Bridge;
let writer: Redis;
const clients: RespWsClient[] = [];

async function connect(token: string, target: Bridge = bridge): Promise<RespWsClient> {
  const client = await RespWsClient.connect(target.url, { token });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  server = await startValkeyServer();
  bridge = await startReadyBridge(server.url, {
    tokens: [{ token: TEST_TOKEN }, { token: TENANT_TOKEN, prefix: 'tenant-a:' }],
  });
  writer = new Redis({ host: server.host, port: server.port, lazyConnect: true, maxRetriesPerRequest: 0 });
  await writer.connect();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  writer?.disconnect();
  await bridge?.close();
  await server?.stop();
});

describe('bridge: authentication before the upgrade', () => {
  it('answers 401 with a JSON error for a missing, malformed or wrong token', async () => {
    const unauthorized = { status: 401, body: { error: 'missing or invalid bearer token' } };
    expect(await RespWsClient.refusal(bridge.url, { token: null })).toEqual(unauthorized);
    expect(await RespWsClient.refusal(bridge.url, { token: 'wrong-token-0123456789abc' })).toEqual(unauthorized);
    expect(await RespWsClient.refusal(bridge.url, { token: TEST_TOKEN.slice(0, -1) })).toEqual(unauthorized);
    expect(await RespWsClient.refusal(bridge.url, { token: null, authorization: `Basic ${TEST_TOKEN}` })).toEqual(unauthorized);
    expect(bridge.stats().sessions).toBe(0);
  });

  it('accepts a valid token and selects the subprotocol when offered', async () => {
    const plain = await connect(TEST_TOKEN);
    expect(plain.protocol).toBe('');
    const versioned = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN, subprotocol: true });
    clients.push(versioned);
    expect(versioned.protocol).toBe(RESP_SUBPROTOCOL);
    expect(await versioned.call('PING')).toEqual(new RespSimple('PONG'));
  });

  it('answers 404 for an upgrade on another path and 503 at the session limit', async () => {
    expect(await RespWsClient.refusal(`${bridge.url}x`, { token: TEST_TOKEN })).toEqual({ status: 404, body: { error: 'not found' } });
    const single = await startReadyBridge(server.url, { maxSessions: 1 });
    try {
      const first = await connect(TEST_TOKEN, single);
      expect(await RespWsClient.refusal(single.url, { token: TEST_TOKEN })).toEqual({
        status: 503, body: { error: 'bridge is at its session limit' },
      });
      await first.close();
      await waitFor(() => single.stats().sessions === 0, 'the bridge to see the session close');
      await connect(TEST_TOKEN, single); // a slot is free again once the session closed
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await single.close();
    }
  });

  it('answers plain HTTP on /resp with 426', async () => {
    const res = await fetch(`${httpBase(bridge)}/resp`);
    expect(res.status).toBe(426);
    expect(await res.json()).toEqual({ error: 'use a WebSocket upgrade (Upgrade: websocket) on this path' });
  });
});

describe('bridge: tenant prefixes', () => {
  it('lets a prefixed token touch only its keys (and valkeyid: markers for reads, DEL and empty SET)', async () => {
    const tenant = await connect(TENANT_TOKEN);
    const p = randomPrefix('tenant-a');
    const mine = `tenant-a:${p}k`;
    const theirs = `tenant-b:${p}k`;
    await writer.set(theirs, 'secret');

    expect(await tenant.call('SET', mine, 'v')).toEqual(new RespSimple('OK'));
    expect((await trackedGet(tenant, mine, 1000)).value).toBe('v');
    expect(errorText(await tenant.call('GET', theirs))).toBe(NOPERM);
    expect(errorText(await tenant.call('TRACKED.GET', theirs, 1000))).toBe(NOPERM);
    expect(errorText(await tenant.call('DEL', mine, theirs))).toBe(NOPERM);
    expect(errorText(await tenant.call('SET', theirs, 'overwritten'))).toBe(NOPERM);
    expect(errorText(await tenant.call('EVALSHA', SCRIPT_SHA.delkey, 1, theirs, 'secret'))).toBe(NOPERM);
    expect(await writer.get(theirs)).toBe('secret');
    expect(await writer.get(mine)).toBe('v');

    const marker = `valkeyid:${p.replace(/[^0-9a-f]/g, '')}`;
    expect(await tenant.call('SET', marker, '', 'NX', 'PX', 10_000)).toEqual(new RespSimple('OK'));
    expect(await trackedGet(tenant, marker, 1000)).toMatchObject({ value: '' });
    expect(errorText(await tenant.call('SET', marker, 'not-empty'))).toBe(NOPERM);
    expect(await tenant.call('DEL', marker)).toBe(1);
  });
});

describe('bridge: allowlist', () => {
  it('refuses FLUSHALL, CONFIG SET and unregistered scripts, leaving the data intact', async () => {
    const client = await connect(TEST_TOKEN);
    const k = `${randomPrefix('allow')}k`;
    await writer.set(k, 'keep me');
    const before = await writer.dbsize();
    expect(errorText(await client.call('FLUSHALL'))).toBe("ERR command 'FLUSHALL' is not allowed by this bridge");
    expect(errorText(await client.call('flushdb', 'ASYNC'))).toBe("ERR command 'flushdb' is not allowed by this bridge");
    expect(errorText(await client.call('CONFIG', 'SET', 'maxmemory', '1'))).toBe("ERR command 'CONFIG' is not allowed by this bridge");
    expect(errorText(await client.call('EVAL', 'return redis.call("FLUSHALL")', 0))).toBe('NOSCRIPT script not registered with this bridge');
    expect(errorText(await client.call('EVAL', 'redis.call("DEL", KEYS[1])', 1, k))).toBe('NOSCRIPT script not registered with this bridge');
    expect(errorText(await client.call('SET', k, 'x', 'EX', 10))).toBe("ERR syntax error: SET option 'EX' is not allowed by this bridge (only NX, GET, PX)");
    expect(await writer.get(k)).toBe('keep me');
    expect(await writer.dbsize()).toBe(before);
    expect(await writer.config('GET', 'maxmemory')).toEqual(['maxmemory', '0']);
  });

  it('runs the registered scripts by EVALSHA, loading them itself on NOSCRIPT', async () => {
    const client = await connect(TEST_TOKEN);
    const k = `${randomPrefix('scripts')}k`;
    await writer.script('FLUSH');
    expect(await client.call('EVALSHA', SCRIPT_SHA.acquireLock, 1, k, 'valkeyid:aa', 10_000)).toBeNull();
    expect(text(await client.call('EVALSHA', SCRIPT_SHA.acquireLock, 1, k, 'valkeyid:bb', 10_000))).toBe('valkeyid:aa');
    expect(await client.call('EVALSHA', SCRIPT_SHA.setkey, 1, k, 'valkeyid:aa', 'loaded', 10_000)).toEqual(new RespSimple('OK'));
    expect(await writer.get(k)).toBe('loaded');
    expect(await client.call('EVALSHA', SCRIPT_SHA.delkey, 1, k, 'valkeyid:aa')).toBe(0);
    expect(await writer.get(k)).toBe('loaded');
  });

  it('passes operator extension commands through', async () => {
    const extended = await startReadyBridge(server.url, { extraCommands: ['hset'] });
    try {
      const client = await connect(TEST_TOKEN, extended);
      const k = `${randomPrefix('ext')}h`;
      expect(await client.call('HSET', k, 'f', 'v')).toBe(1);
      expect(await writer.hget(k, 'f')).toBe('v');
      expect(errorText(await client.call('HGET', k, 'f'))).toBe("ERR command 'HGET' is not allowed by this bridge");
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await extended.close();
    }
  });
});
