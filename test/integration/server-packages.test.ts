// The pinned server packages (test/support/server-packages.mjs) start and are the versions we claim to test
// against; Redis 6.0 shows why the Lua lock exists (no SET NX GET) and that its shared Lua loads.
import { Redis } from 'iovalkey';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACQUIRE_LOCK_SCRIPT, newClientId } from '../../shared/valkeyaside.ts';
import { serverBinary, startValkeyServer, type ServerPackageName, type ValkeyServer } from '../support/valkey-server.ts';

const EXPECTED: Record<ServerPackageName, { field: string; version: string }> = {
  'redis-6.0': { field: 'redis_version', version: '6.0.16' },
  'redis-7.0': { field: 'redis_version', version: '7.0.15' },
  'valkey-8.0': { field: 'valkey_version', version: '8.0.1' },
};

function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)\\r?$`, 'm').exec(info)?.[1]?.trim();
}

async function connect(server: ValkeyServer): Promise<Redis> {
  const client = new Redis({ host: server.host, port: server.port, lazyConnect: true, maxRetriesPerRequest: 0 });
  await client.connect();
  return client;
}

describe.each(Object.keys(EXPECTED) as ServerPackageName[])('server package %s', (name) => {
  let server: ValkeyServer;
  let client: Redis;
  beforeAll(async () => {
    server = await startValkeyServer({ server: name });
    client = await connect(server);
  });
  afterAll(async () => {
    client?.disconnect();
    await server?.stop();
  });

  it('reports the pinned version in INFO server and --version', async () => {
    const { field, version } = EXPECTED[name];
    expect(infoField(await client.info('server'), field)).toBe(version);
    const pkg = await serverBinary(name);
    expect(pkg.version).toBe(version);
    // The wrapper runs without any environment of ours: that is what Go tests and VALKEY_SERVER_BIN rely on.
    const out = execFileSync(pkg.bin, ['--version'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    expect(out).toMatch(new RegExp(`^(Redis|Valkey) server v=${version.replaceAll('.', '\\.')} `));
  });

  it('has client tracking and runs the Lua lock script', async () => {
    expect(await client.call('CLIENT', 'TRACKING', 'ON')).toBe('OK');
    const key = `pkg:${newClientId()}`;
    const id = newClientId();
    expect(await client.eval(ACQUIRE_LOCK_SCRIPT, 1, key, id, '10000')).toBeNull();
    expect(await client.eval(ACQUIRE_LOCK_SCRIPT, 1, key, newClientId(), '10000')).toBe(id);
  });
});

describe('redis-6.0: the reason for the Lua lock', () => {
  let server: ValkeyServer;
  let client: Redis;
  beforeAll(async () => {
    server = await startValkeyServer({ server: 'redis-6.0' });
    client = await connect(server);
  });
  afterAll(async () => {
    client?.disconnect();
    await server?.stop();
  });

  it('refuses SET key value NX GET with a syntax error', async () => {
    await expect(client.call('SET', `pkg:${newClientId()}`, 'v', 'NX', 'GET')).rejects.toThrow(/^ERR syntax error/);
  });

  // Debian links 6.0 against the shared liblua5.1 from the package cache (its cjson/bit globals are not exposed).
  it('runs Lua through Debian\'s shared Lua 5.1', async () => {
    expect(await client.eval('return 1', 0)).toBe(1);
    expect(await client.eval('return redis.call("PING")', 0)).toBe('PONG');
  });
});
