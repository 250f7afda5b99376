// The service around the protocol: /healthz and /metrics, and the real CLI (bin and `npm run bridge`) with its
// configuration errors (exit 2, one line naming the setting) and SIGTERM handling (sessions closed 1001, exit 0).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { RespSimple } from '../../shared/resp/index.ts';
import { httpBase, runBridgeProcess, startBridgeProcess, startReadyBridge, TEST_TOKEN, waitFor } from '../support/bridge.ts';
import { RespWsClient } from '../support/resp-ws-client.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

let server: ValkeyServer;
let bridge: Bridge;

beforeAll(async () => {
  server = await startValkeyServer();
  bridge = await startReadyBridge(server.url);
});

afterAll(async () => {
  await bridge?.close();
  await server?.stop();
});

describe('bridge: HTTP endpoints', () => {
  it('reports health as JSON with 200 when it can serve', async () => {
    const res = await fetch(`${httpBase(bridge)}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      ok: true, valkey: { data: true, subscriber: true }, tracking: true, epoch: 1, sessions: 0, shuttingDown: false,
    });
  });

  it('exports Prometheus metrics, process metrics included', async () => {
    const client = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
    try {
      await client.call('PING');
      await client.call('FLUSHALL');
      await RespWsClient.refusal(bridge.url, { token: null });
      const res = await fetch(`${httpBase(bridge)}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      const body = await res.text();
      for (const line of [
        'bridge_sessions 1',
        'bridge_commands_total{command="PING"} 1',
        'bridge_commands_total{command="OTHER"} 1',
        'bridge_errors_total{kind="not_allowed"} 1',
        'bridge_errors_total{kind="auth"} 1',
        'bridge_epoch 1',
        'bridge_epochs_total 0',
        'bridge_tracked_pairs 0',
      ]) {
        expect(body.split('\n')).toContain(line);
      }
      for (const name of ['bridge_invalidations_received_total', 'bridge_invalidations_delivered_total', 'bridge_frame_bytes_in_total',
        'bridge_frame_bytes_out_total', 'bridge_pending_tracked_reads', 'process_cpu_user_seconds_total', 'nodejs_eventloop_lag_seconds']) {
        expect(body).toMatch(new RegExp(`^${name} `, 'm'));
      }
    } finally {
      await client.close();
    }
  });

  it('answers 404 as JSON for unknown paths', async () => {
    const res = await fetch(`${httpBase(bridge)}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'not found' });
  });
});

describe('bridge: the command-line service', () => {
  it('closes sessions with 1001 and exits 0 on SIGTERM', async () => {
    const child = await startBridgeProcess({ VALKEY_URL: server.url, BRIDGE_TOKEN: TEST_TOKEN });
    try {
      // "listening" comes before tracking is up, and until then the bridge answers TRYAGAIN: wait for it first.
      await waitFor(() => child.stderr.some((l) => l.includes('"tracking established"')), 'the child to establish tracking');
      const client = await RespWsClient.connect(child.url, { token: TEST_TOKEN });
      expect(await client.call('PING')).toEqual(new RespSimple('PONG'));
      const closed = client.waitClosed(15_000);
      expect(await child.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(await closed).toEqual({ code: 1001, reason: 'bridge shutting down' });
      for (const line of child.stderr) {
        expect(() => JSON.parse(line)).not.toThrow();
        expect(line).not.toContain(TEST_TOKEN);
      }
      expect(child.stderr.some((l) => l.includes('"bridge closed"'))).toBe(true);
    } finally {
      await child.stop('SIGKILL');
    }
  });

  it('refuses to start without a token: exit 2 and one line naming the setting', async () => {
    const { code, stderr } = await runBridgeProcess({ VALKEY_URL: server.url }, { via: 'npm' });
    expect(code).toBe(2);
    expect(stderr).toHaveLength(1);
    expect(JSON.parse(stderr[0]!)).toMatchObject({ level: 'error', setting: 'BRIDGE_TOKEN (--token)' });
  });

  it('names the setting of an invalid value, from the environment or a flag', async () => {
    const fromEnv = await runBridgeProcess({ BRIDGE_TOKEN: TEST_TOKEN, BRIDGE_MAX_INFLIGHT: '0' });
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toHaveLength(1);
    expect(JSON.parse(fromEnv.stderr[0]!).msg).toBe(
      'invalid configuration: BRIDGE_MAX_INFLIGHT (--max-inflight): maxInflight must be between 1 and 100000, got 0',
    );
    const fromFlag = await runBridgeProcess({ BRIDGE_TOKEN: TEST_TOKEN }, { args: ['--valkey-url', 'http://user:pw@x'] });
    expect(fromFlag.code).toBe(2);
    expect(fromFlag.stderr).toHaveLength(1);
    expect(fromFlag.stderr[0]).toContain('VALKEY_URL (--valkey-url): valkeyUrl must use redis:// or rediss://');
    expect(fromFlag.stderr[0]).not.toContain('pw');
  });
});
