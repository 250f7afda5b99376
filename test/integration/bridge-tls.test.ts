// The bridge serving wss:// itself (tls option / BRIDGE_TLS_CERT_FILE + BRIDGE_TLS_KEY_FILE), with a real client
// that trusts only the test CA; a client without that CA is refused by the TLS handshake.
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Bridge } from '../../bridge/index.ts';
import { RESP_SUBPROTOCOL } from '../../shared/protocol.ts';
import { encodeCommand, RespDecoder, RespSimple } from '../../shared/resp/index.ts';
import { startReadyBridge, TEST_TOKEN } from '../support/bridge.ts';
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
