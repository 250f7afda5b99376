// Authentication abuse beyond bridge-auth.test.ts: every malformed credential shape is refused with 401 before the
// upgrade, a wrong token learns nothing from a full bridge (401, not 503), refused attempts hold no session and
// are counted, and a broken WebSocket handshake with a valid token is refused without hurting the bridge.
import { connect as tcpConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { RespSimple } from '../../shared/resp/index.ts';
import { startReadyBridge, TEST_TOKEN } from '../support/bridge.ts';
import { RespWsClient } from '../support/resp-ws-client.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

const UNAUTHORIZED = { status: 401, body: { error: 'missing or invalid bearer token' } };
let server: ValkeyServer;
let bridge: Bridge;

beforeAll(async () => {
  server = await startValkeyServer();
  bridge = await startReadyBridge(server.url, { maxSessions: 2 });
});

afterAll(async () => {
  await bridge?.close();
  await server?.stop();
});

/** Sends raw bytes to the bridge's port and resolves with the first response line (bounded). */
async function rawRequest(request: string): Promise<string> {
  return (await rawHead(request)).split('\r\n')[0]!;
}

/** Sends raw bytes to a bridge's port (from `localAddress`) and resolves with the response head (bounded). */
function rawHead(request: string, to: Bridge = bridge, localAddress?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ port: to.port, host: to.host, localAddress });
    let received = '';
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer to a raw request: ${JSON.stringify(received)}`)); }, 5_000);
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (received.includes('\r\n\r\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(received.split('\r\n\r\n')[0]!);
      }
    });
    socket.on('error', (err) => { clearTimeout(timer); reject(err); });
    socket.write(request);
  });
}

describe('abuse: credentials', () => {
  it.each([
    ['an empty bearer', 'Bearer '],
    ['the scheme alone', 'Bearer'],
    ['a token with a space inside', `Bearer ${TEST_TOKEN.slice(0, 8)} ${TEST_TOKEN.slice(8)}`],
    ['two tokens', `Bearer ${TEST_TOKEN} ${TEST_TOKEN}`],
    ['the token with one extra character', `Bearer ${TEST_TOKEN}x`],
    ['the token as a prefix of another', `Bearer ${TEST_TOKEN.slice(0, 16)}`],
    ['a 5000-character token', `Bearer ${'a'.repeat(5_000)}`],
    ['no space after the scheme', `Bearer${TEST_TOKEN}`],
    ['another scheme', `Token ${TEST_TOKEN}`],
    ['the token without a scheme', TEST_TOKEN],
  ])('refuses %s with 401 before the upgrade', async (_name, authorization) => {
    expect(await RespWsClient.refusal(bridge.url, { token: null, authorization })).toEqual(UNAUTHORIZED);
  });

  it('refuses a token sent anywhere but the Authorization header', async () => {
    expect(await RespWsClient.refusal(`${bridge.url}?token=${TEST_TOKEN}`, { token: null })).toEqual(UNAUTHORIZED);
    const status = await rawRequest(`GET /resp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nProxy-Authorization: Bearer ${TEST_TOKEN}\r\nCookie: token=${TEST_TOKEN}\r\n\r\n`);
    expect(status).toBe('HTTP/1.1 401 Unauthorized');
  });

  it('accepts the scheme in any case and trailing spaces', async () => {
    for (const authorization of [`bearer ${TEST_TOKEN}`, `BEARER ${TEST_TOKEN}`, `Bearer   ${TEST_TOKEN}  `]) {
      const client = await RespWsClient.connect(bridge.url, { token: null, authorization });
      expect(await client.call('PING')).toEqual(new RespSimple('PONG'));
      await client.close();
    }
  });

  it('answers a wrong token 401 even when the bridge is full, so it learns nothing about capacity', async () => {
    const held = [await RespWsClient.connect(bridge.url, { token: TEST_TOKEN }), await RespWsClient.connect(bridge.url, { token: TEST_TOKEN })];
    try {
      expect((await RespWsClient.refusal(bridge.url, { token: TEST_TOKEN })).status).toBe(503);
      expect(await RespWsClient.refusal(bridge.url, { token: 'wrong-token-0123456789abcdef' })).toEqual(UNAUTHORIZED);
    } finally {
      await Promise.all(held.map((c) => c.close()));
    }
  });

  it('holds no session for refused attempts, counts them, and keeps serving', async () => {
    const before = Number(/bridge_errors_total\{kind="auth"\} (\d+)/.exec(await bridge.metricsText())?.[1] ?? 0);
    const attempts = 200;
    const results = await Promise.all(Array.from({ length: attempts }, (_, i) =>
      RespWsClient.refusal(bridge.url, { token: `wrong-token-${i}-0123456789abcdef` })));
    expect(results.every((r) => r.status === 401)).toBe(true);
    expect(bridge.stats().sessions).toBe(0);
    const after = Number(/bridge_errors_total\{kind="auth"\} (\d+)/.exec(await bridge.metricsText())?.[1]);
    expect(after - before).toBe(attempts);
    const client = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
    expect(await client.call('PING')).toEqual(new RespSimple('PONG'));
    await client.close();
  });

  it('throttles an address past maxAuthFailuresPerAddress with 429, without looking at the token, and keeps serving others', async () => {
    const throttled = await startReadyBridge(server.url, { maxAuthFailuresPerAddress: 3, authFailureWindowMs: 600_000 });
    try {
      const bystander = await RespWsClient.connect(throttled.url, { token: TEST_TOKEN });
      for (let i = 0; i < 3; i++) expect(await RespWsClient.refusal(throttled.url, { token: `wrong-token-${i}-0123456789abcdef` })).toEqual(UNAUTHORIZED);
      expect(await RespWsClient.refusal(throttled.url, { token: 'wrong-token-x-0123456789abcdef' }))
        .toEqual({ status: 429, body: { error: 'too many failed authentications from this address; retry later' } });
      const upgrade = (token: string) => `GET /resp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${token}\r\n\r\n`;
      // Not verified: even the valid token is refused from this address until the window ends.
      const head = await rawHead(upgrade(TEST_TOKEN), throttled);
      expect(head.split('\r\n')[0]).toBe('HTTP/1.1 429 Too Many Requests');
      const retryAfter = Number(/^Retry-After: (\d+)$/m.exec(head)?.[1]);
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(600);
      // Another source address is not throttled (loopback has all of 127/8).
      expect((await rawHead(upgrade('wrong-token-y-0123456789abcdef'), throttled, '127.0.0.2')).split('\r\n')[0]).toBe('HTTP/1.1 401 Unauthorized');
      expect((await rawHead(upgrade(TEST_TOKEN), throttled, '127.0.0.3')).split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
      // The session opened before is served as before, and the refusals are counted.
      expect(await bystander.call('PING')).toEqual(new RespSimple('PONG'));
      expect(bystander.arrivals.filter((a) => a.kind === 'push')).toHaveLength(0);
      const text = await throttled.metricsText();
      expect(text).toMatch(/^bridge_auth_failures_total\{reason="throttled"\} 2$/m);
      expect(text).toMatch(/^bridge_auth_failures_total\{reason="invalid"\} 4$/m);
      await bystander.close();
    } finally {
      await throttled.close();
    }
  });

  it('refuses a broken WebSocket handshake that carries a valid token, and stays up', async () => {
    const noKey = await rawRequest(`GET /resp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Version: 13\r\nAuthorization: Bearer ${TEST_TOKEN}\r\n\r\n`);
    expect(noKey).toBe('HTTP/1.1 400 Bad Request');
    const badVersion = await rawRequest(`GET /resp HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Version: 99\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${TEST_TOKEN}\r\n\r\n`);
    expect(badVersion).toMatch(/^HTTP\/1\.1 (400|426) /);
    expect(bridge.stats().sessions).toBe(0);
    const client = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
    expect(await client.call('PING')).toEqual(new RespSimple('PONG'));
    await client.close();
  });
});
