// Budgets per token: one tenant's sessions share its commands in flight and reply bytes owed, so a tenant that
// stops reading or floods from many sessions holds back only its own sessions; another tenant is served meanwhile.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { encodeCommand, RespSimple } from '../../shared/resp/index.ts';
import { startReadyBridge, waitFor } from '../support/bridge.ts';
import { RespWsClient, text } from '../support/resp-ws-client.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

const MiB = 1024 * 1024;
const TOKEN_A = 'tenant-a-token-0123456789';
const TOKEN_B = 'tenant-b-token-0123456789';
let server: ValkeyServer;
let bridge: Bridge;

beforeAll(async () => {
  server = await startValkeyServer();
  bridge = await startReadyBridge(server.url, {
    tokens: [{ token: TOKEN_A, prefix: 'a:', maxInflight: 8, maxOwedBytes: 64 * 1024 }, { token: TOKEN_B, prefix: 'b:' }],
    maxInflightTotal: 64,
  });
});

afterAll(async () => {
  await bridge?.close();
  await server?.stop();
});

const tenant = (label: string) => bridge.stats().tokens.find((t) => t.label === label)!;

describe('abuse: budgets per token', () => {
  it("holds a tenant's other sessions while it is owed more than its maxOwedBytes, and serves another tenant meanwhile", async () => {
    const writer = await RespWsClient.connect(bridge.url, { token: TOKEN_A });
    expect(await writer.call('SET', 'a:big', Buffer.alloc(MiB, 0x61))).toEqual(new RespSimple('OK'));
    const hoarder = await RespWsClient.connect(bridge.url, { token: TOKEN_A });
    hoarder.ws.pause();
    hoarder.sendRaw(Buffer.concat(Array.from({ length: 12 }, () => encodeCommand(['GET', 'a:big']))));
    await waitFor(() => tenant('token#1').owedBytes > 64 * 1024, "tenant A's owed bytes to pass its budget");
    // The same tenant's other session waits; the other tenant's does not, though its PING was sent later.
    const repliesBefore = writer.arrivals.length;
    const held = writer.call('PING', 'held');
    const other = await RespWsClient.connect(bridge.url, { token: TOKEN_B });
    expect(text(await other.call('PING', 'served'))).toBe('served');
    expect(writer.arrivals).toHaveLength(repliesBefore);
    expect(tenant('token#2')).toMatchObject({ owedBytes: 0 });
    // Once the hoarder reads, its owed bytes drain and the held session is answered.
    hoarder.ws.resume();
    expect(text(await held)).toBe('held');
    await Promise.all([writer, hoarder, other].map((c) => c.close()));
  });

  it("never has more of a tenant's commands in flight than its maxInflight, over all its sessions", async () => {
    const flooders = await Promise.all(Array.from({ length: 4 }, () => RespWsClient.connect(bridge.url, { token: TOKEN_A })));
    const frame = Buffer.concat(Array.from({ length: 2_000 }, (_, i) => encodeCommand(['SET', `a:k${i % 50}`, 'v'])));
    let peak = 0;
    // Sampled at every reply any flooder receives: the bound must hold at each of those moments.
    for (const f of flooders) f.ws.on('message', () => { peak = Math.max(peak, tenant('token#1').inflight); });
    const done = flooders.map(async (f) => {
      f.sendRaw(frame);
      for (let i = 0; i < 2_000; i++) expect(await f.nextReply(`reply ${i}`, 20_000)).toEqual(new RespSimple('OK'));
    });
    const other = await RespWsClient.connect(bridge.url, { token: TOKEN_B });
    for (let i = 0; i < 20; i++) expect(text(await other.call('PING', `b${i}`))).toBe(`b${i}`);
    await Promise.all(done);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(8);
    expect(bridge.stats().inflight).toBe(0);
    await Promise.all([...flooders, other].map((c) => c.close()));
  });
});
