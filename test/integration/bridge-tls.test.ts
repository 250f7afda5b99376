// The bridge serving wss:// itself (tls option / BRIDGE_TLS_CERT_FILE + BRIDGE_TLS_KEY_FILE), with a real client
// that trusts only the test CA; a client without that CA is refused by the TLS handshake. And rediss:// to a real TLS
// Valkey: ACL user, a wrong CA or hostname reported clearly, client certificates with --tls-auth-clients yes.
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Bridge } from '../../bridge/index.ts';
import { RESP_SUBPROTOCOL } from '../../shared/protocol.ts';
import { encodeCommand, RespDecoder, RespSimple } from '../../shared/resp/index.ts';
import { startBridge, startReadyBridge, TEST_TOKEN, waitFor } from '../support/bridge.ts';
import { freePort } from '../support/free-port.ts';
import { RespWsClient } from '../support/resp-ws-client.ts';
import { makeTestCerts, type TestCerts } from '../support/tls-certs.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

let server: ValkeyServer;
let bridge: Bridge;
let certs: TestCerts;

beforeAll(async () => {
  certs = makeTestCerts();
  server = await startValkeyServer();
  bridge = await startReadyBridge(server.url, { tls: { cert: certs.cert, key: certs.key } });
});

afterAll(async () => {
  await bridge?.close();
  await server?.stop();
});

describe('bridge: wss', () => {
  it('serves RESP over wss:// to a client that trusts the CA', async () => {
    expect(bridge.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/resp$/);
    const ws = new WebSocket(bridge.url, [RESP_SUBPROTOCOL], { headers: { authorization: `Bearer ${TEST_TOKEN}` }, ca: certs.ca });
    await once(ws, 'open');
    ws.send(encodeCommand(['PING']));
    const [data] = (await once(ws, 'message')) as [Buffer];
    expect(new RespDecoder().feed(data)).toEqual([new RespSimple('PONG')]);
    ws.close();
    await once(ws, 'close');
  });

  it('fails the handshake for a client without the CA', async () => {
    const ws = new WebSocket(bridge.url, [RESP_SUBPROTOCOL], { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    const [err] = (await once(ws, 'error').catch((e: unknown) => [e])) as [Error & { code?: string }];
    expect(err.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });
});

/** A TLS-only Valkey on a free port with `serverCerts`, trusting the test CA for client certificates. */
async function startTlsValkey(serverCerts: TestCerts, authClients: 'optional' | 'yes', extraArgs: string[] = []): Promise<{ port: number; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'valkey-tls-'));
  const file = (name: string, content: string) => {
    writeFileSync(join(dir, name), content);
    return join(dir, name);
  };
  const port = await freePort('127.0.0.1');
  const tlsServer = await startValkeyServer({
    port,
    extraArgs: ['--port', '0', '--tls-port', String(port), '--tls-cert-file', file('s.crt', serverCerts.cert),
      '--tls-key-file', file('s.key', serverCerts.key), '--tls-ca-cert-file', file('ca.crt', serverCerts.ca),
      '--tls-auth-clients', authClients, ...extraArgs],
  });
  return {
    port,
    async stop() {
      await tlsServer.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts a bridge that must fail to reach Valkey, and resolves with the log line naming why (never ready). */
async function tlsFailure(url: string, valkeyTls: { ca?: string; cert?: string; key?: string }, pattern: RegExp): Promise<string> {
  const lines: string[] = [];
  const failing = await startBridge(url, { valkeyTls, logLevel: 'warn', logSink: (l) => lines.push(l) });
  try {
    await waitFor(() => lines.some((l) => pattern.test(l)), `a log line matching ${pattern}`);
    expect(failing.health().ok).toBe(false);
    return lines.find((l) => pattern.test(l))!;
  } finally {
    await failing.close();
  }
}

describe('bridge: rediss:// to a TLS Valkey with an ACL user', () => {
  it('connects with the test CA and user + password, and reports a wrong CA clearly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'valkey-tls-'));
    const file = (name: string, content: string) => {
      writeFileSync(join(dir, name), content);
      return join(dir, name);
    };
    const port = await freePort('127.0.0.1');
    const tlsServer = await startValkeyServer({
      port,
      extraArgs: ['--port', '0', '--tls-port', String(port), '--tls-cert-file', file('s.crt', certs.cert),
        '--tls-key-file', file('s.key', certs.key), '--tls-ca-cert-file', file('ca.crt', certs.ca), '--tls-auth-clients', 'optional',
        '--user', 'bridge', 'on', '>bridge-password', '~*', '&*', '+@all', '--user', 'default', 'off'],
    });
    try {
      const url = `rediss://bridge:bridge-password@127.0.0.1:${port}`;
      const good = await startReadyBridge(url, { valkeyTls: { ca: certs.ca } });
      const client = await RespWsClient.connect(good.url, { token: TEST_TOKEN });
      expect(await client.call('SET', 'tls:k', 'v')).toEqual(new RespSimple('OK'));
      expect(await client.call('TRACKED.GET', 'tls:k', '1000')).toEqual([new TextEncoder().encode('v'), 1000, true]);
      await client.close();
      await good.close();
      const lines: string[] = [];
      const wrong = await startBridge(url, { logLevel: 'warn', logSink: (l) => lines.push(l) });
      try {
        await waitFor(() => lines.some((l) => l.includes('self-signed certificate') || l.includes('unable to verify')), 'a TLS error in the log');
        expect(wrong.health().ok).toBe(false);
      } finally {
        await wrong.close();
      }
    } finally {
      await tlsServer.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bridge: rediss:// names and client certificates', () => {
  it('fails clearly when the server certificate does not name the host in the URL', async () => {
    const otherName = makeTestCerts('DNS:cache.example.internal');
    const tlsServer = await startTlsValkey(otherName, 'optional');
    try {
      const line = await tlsFailure(`rediss://127.0.0.1:${tlsServer.port}`, { ca: otherName.ca }, /altnames/);
      expect(line).toContain("Hostname/IP does not match certificate's altnames");
      expect(line).toContain('127.0.0.1');
    } finally {
      await tlsServer.stop();
    }
  });

  it('presents a client certificate to a server started with --tls-auth-clients yes, and fails clearly without one', async () => {
    const tlsServer = await startTlsValkey(certs, 'yes');
    try {
      const url = `rediss://127.0.0.1:${tlsServer.port}`;
      const good = await startReadyBridge(url, { valkeyTls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } });
      try {
        const client = await RespWsClient.connect(good.url, { token: TEST_TOKEN });
        expect(await client.call('SET', 'mtls:k', 'v')).toEqual(new RespSimple('OK'));
        expect(await client.call('TRACKED.GET', 'mtls:k', '1000')).toEqual([new TextEncoder().encode('v'), 1000, true]);
        await client.close();
      } finally {
        await good.close();
      }
      // Without a certificate the server ends the handshake; the bridge logs why and never becomes ready.
      const line = await tlsFailure(url, { ca: certs.ca }, /certificate required/);
      expect(line).toContain('"msg":"valkey connection error"');
      expect(line).toContain('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    } finally {
      await tlsServer.stop();
    }
  });
});
