// Limits one token cannot get past: sessions per token (another tenant still connects), key length, marker PX,
// WebSocket fragments per message, and a repeated Authorization header (400, never first-wins).
import { connect as tcpConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { resolveBridgeOptions } from '../../bridge/options.ts';
import { RespSimple } from '../../shared/resp/index.ts';
import { startReadyBridge } from '../support/bridge.ts';
import { errorText, RespWsClient } from '../support/resp-ws-client.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

const TOKEN_A = 'tenant-a-token-0123456789';
const TOKEN_B = 'tenant-b-token-0123456789';
let server: ValkeyServer;
let bridge: Bridge;

beforeAll(async () => {
  server = await startValkeyServer();
  bridge = await startReadyBridge(server.url, {
    tokens: [{ token: TOKEN_A, prefix: 'a:', maxSessions: 2 }, { token: TOKEN_B, prefix: 'b:' }],
    maxKeyBytes: 1024,
    maxMarkerTtlMs: 60_000,
    maxFragmentsPerMessage: 8,
  });
});

afterAll(async () => {
  await bridge?.close();
  await server?.stop();
});

describe('abuse: limits', () => {
  it('refuses a token over its own maxSessions with 503 while another tenant still connects', async () => {
    const held = [await RespWsClient.connect(bridge.url, { token: TOKEN_A }), await RespWsClient.connect(bridge.url, { token: TOKEN_A })];
    const refused = await RespWsClient.refusal(bridge.url, { token: TOKEN_A });
    expect(refused).toEqual({ status: 503, body: { error: 'this token is at its session limit' } });
    const other = await RespWsClient.connect(bridge.url, { token: TOKEN_B });
    expect(await other.call('PING')).toEqual(new RespSimple('PONG'));
    await Promise.all([...held, other].map((c) => c.close()));
  });

  it('answers keys over maxKeyBytes with an error reply and keeps the session', async () => {
    const client = await RespWsClient.connect(bridge.url, { token: TOKEN_A });
    const long = 'a:' + 'x'.repeat(1024);
    expect(errorText(await client.call('TRACKED.GET', long, '1000'))).toBe("ERR key longer than this bridge's limit of 1024 bytes");
    expect(errorText(await client.call('GET', long))).toBe("ERR key longer than this bridge's limit of 1024 bytes");
    expect(await client.call('GET', 'a:short')).toBeNull();
    await client.close();
  });

  it('requires PX of at most maxMarkerTtlMs on a marker SET', async () => {
    const client = await RespWsClient.connect(bridge.url, { token: TOKEN_B });
    const refusal = 'ERR syntax error: a marker SET needs PX of at most 60000 ms';
    expect(errorText(await client.call('SET', 'valkeyid:x', ''))).toBe(refusal);
    expect(errorText(await client.call('SET', 'valkeyid:x', '', 'PX', '60001'))).toBe(refusal);
    expect(await client.call('SET', 'valkeyid:x', '', 'PX', '60000')).toEqual(new RespSimple('OK'));
    await client.close();
  });

  it('closes a message held open in more fragments than maxFragmentsPerMessage with 1008', async () => {
    const client = await RespWsClient.connect(bridge.url, { token: TOKEN_B });
    for (let i = 0; i < 20; i++) client.ws.send(Buffer.from('*'), { binary: true, fin: false });
    expect((await client.waitClosed()).code).toBe(1008);
  });

  it('answers a repeated Authorization header with 400', async () => {
    const socket = tcpConnect(bridge.port, bridge.host);
    let response = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => { response += chunk; });
    const ended = new Promise((resolve) => socket.once('close', resolve));
    socket.write(
      `GET /resp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${TOKEN_A}\r\nAuthorization: Bearer ${TOKEN_B}\r\n\r\n`,
    );
    await ended;
    expect(response.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
  });

  it('refuses nested tenant prefixes at start-up', () => {
    expect(() => resolveBridgeOptions({ tokens: [{ token: TOKEN_A, prefix: 'a:' }, { token: TOKEN_B, prefix: 'a:b:' }] }))
      .toThrow(expect.objectContaining({
        name: 'RangeError',
        option: 'tokens',
        message: 'token#2.prefix overlaps token#1.prefix (one starts with the other); tenant prefixes must be disjoint',
      }));
  });
});

describe('abuse: operations surface', () => {
  it('keeps /metrics behind the metrics token and /healthz to ok / not ok without it; counts failed upgrades by reason', async () => {
    const metricsToken = 'metrics-token-0123456789';
    const lines: string[] = [];
    const guarded = await startReadyBridge(server.url, { metricsToken, logLevel: 'warn', logSink: (line) => lines.push(line) });
    try {
      const base = `http://${guarded.host}:${guarded.port}`;
      const auth = { authorization: `Bearer ${metricsToken}` };
      expect((await fetch(`${base}/metrics`)).status).toBe(401);
      expect((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401);
      expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ ok: true });
      expect(await (await fetch(`${base}/healthz`, { headers: auth })).json()).toMatchObject({ ok: true, tracking: true });
      for (let i = 0; i < 5; i++) expect((await RespWsClient.refusal(guarded.url, { token: 'not-a-valid-token-000000' })).status).toBe(401);
      expect((await RespWsClient.refusal(guarded.url, { token: null })).status).toBe(401);
      const text = await (await fetch(`${base}/metrics`, { headers: auth })).text();
      expect(text).toMatch(/^bridge_auth_failures_total\{reason="invalid"\} 5$/m);
      expect(text).toMatch(/^bridge_auth_failures_total\{reason="missing"\} 1$/m);
      // Rate-limited: six failures within a second log once; the token never appears.
      const logged = lines.filter((l) => l.includes('authentication failed'));
      expect(logged.length).toBeGreaterThanOrEqual(1);
      expect(logged.length).toBeLessThan(6);
      expect(lines.join('')).not.toContain('not-a-valid-token');
    } finally {
      await guarded.close();
    }
  });
});
