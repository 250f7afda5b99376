// Cluster-mode start-up against real servers: a seed that is not a cluster node and a cluster whose state is not
// ok are clear errors (the CLI exits 2 for the former), and a seed list whose first node is down still starts.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterConfigError } from '../../bridge/index.ts';
import { runBridgeProcess, startBridge, TEST_TOKEN } from '../support/bridge.ts';
import { freePort } from '../support/free-port.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

let plain: ValkeyServer;
let lone: ValkeyServer;
let dir: string;

beforeAll(async () => {
  plain = await startValkeyServer();
  // A cluster node with no slots: cluster_state:fail until it gets them.
  const bus = await freePort();
  dir = await mkdtemp(join(tmpdir(), 'valkey-lone-'));
  lone = await startValkeyServer({ extraArgs: ['--cluster-enabled', 'yes', '--cluster-port', String(bus), '--cluster-config-file', join(dir, 'nodes.conf'), '--dir', dir] });
});

afterAll(async () => {
  await plain?.stop();
  await lone?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function rejection(valkeyUrl: string): Promise<ClusterConfigError> {
  const err = await startBridge(valkeyUrl, { cluster: true }).then(
    async (b) => { await b.close(); throw new Error('the bridge started'); },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ClusterConfigError);
  return err as ClusterConfigError;
}

describe('bridge: cluster start-up', () => {
  it('refuses a seed that is not a cluster node: typed error, and the CLI exits 2 naming VALKEY_URL', async () => {
    const err = await rejection(plain.url);
    expect(err.code).toBe('ERR_NOT_CLUSTER');
    expect(err.message).toContain(`${plain.url} is not a cluster node`);
    const { code, stderr } = await runBridgeProcess({ BRIDGE_TOKEN: TEST_TOKEN, VALKEY_URL: plain.url, VALKEY_CLUSTER: 'true', BRIDGE_PORT: '0' });
    expect(code).toBe(2);
    expect(stderr.join('\n')).toMatch(/invalid configuration: .*is not a cluster node/);
  });

  it('refuses a cluster whose state is not ok, then starts once it is, past a dead first seed', async () => {
    const err = await rejection(lone.url);
    expect(err.code).toBe('ERR_CLUSTER_STATE');
    expect(err.message).toMatch(/cluster state is not ok/);

    const admin = new Redis({ host: lone.host, port: lone.port });
    try {
      await admin.call('CLUSTER', 'ADDSLOTSRANGE', 0, 16383);
      const deadline = Date.now() + 10_000;
      while (!String(await admin.call('CLUSTER', 'INFO')).includes('cluster_state:ok')) {
        if (Date.now() > deadline) throw new Error('one-node cluster never became ok');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      admin.disconnect();
    }
    const dead = `redis://127.0.0.1:${await freePort()}`;
    const bridge = await startBridge(`${dead},${lone.url}`, { cluster: true });
    try {
      await bridge.waitUntilReady(10_000);
      expect(bridge.health().nodes).toEqual([expect.objectContaining({ node: `127.0.0.1:${lone.port}`, slots: 16384, tracking: true })]);
    } finally {
      await bridge.close();
    }
  });

  it('refuses when no seed answers', async () => {
    const err = await rejection(`redis://127.0.0.1:${await freePort()}`);
    expect(err.code).toBe('ERR_CLUSTER_UNREACHABLE');
  });
});
