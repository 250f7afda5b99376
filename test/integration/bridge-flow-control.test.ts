// Flow control and shutdown: a session past maxInflight is paused (TCP backpressure) without delaying others, gets
// every reply in order, and on close in-flight commands finish before the 1001 close. Valkey's replies are held
// by a proxy so that "meanwhile" is exact.
import { Redis } from 'iovalkey';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../bridge/index.ts';
import { encodeCommand, RespSimple, type RespValue } from '../../shared/resp/index.ts';
import { randomPrefix, startReadyBridge, TEST_TOKEN, waitFor } from '../support/bridge.ts';
import { errorText, RespWsClient, text, type CommandArg } from '../support/resp-ws-client.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

const MAX_INFLIGHT = 4;
let server: ValkeyServer;
let proxy: TcpProxy;
let bridge: Bridge;
let writer: Redis;
const clients: RespWsClient[] = [];

async function connect(target: Bridge = bridge): Promise<RespWsClient> {
  const client = await RespWsClient.connect(target.url, { token: TEST_TOKEN });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  server = await startValkeyServer();
  proxy = await startTcpProxy(server.host, server.port);
  bridge = await startReadyBridge(proxy.url, { subscriberUrl: server.url, maxInflight: MAX_INFLIGHT });
  writer = new Redis({ host: server.host, port: server.port, lazyConnect: true, maxRetriesPerRequest: 0 });
  await writer.connect();
});

afterEach(async () => {
  proxy.release('fromServer');
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  writer?.disconnect();
  await bridge?.close();
  await proxy?.close();
  await server?.stop();
});

/** 3 × n commands mixing plain reads, tracked reads and local PINGs, and a checker for their replies. */
function mixedCommands(p: string, n: number): { commands: CommandArg[][]; check(replies: RespValue[]): void } {
  const commands: CommandArg[][] = [];
  for (let i = 0; i < n; i++) commands.push(['GET', `${p}${i}`], ['TRACKED.GET', `${p}${i}`, 60_000], ['PING', `ping-${i}`]);
  return {
    commands,
    check(replies) {
      expect(replies).toHaveLength(3 * n);
      for (let i = 0; i < n; i++) {
        expect(text(replies[3 * i]!)).toBe(`v${i}`);
        const tracked = replies[3 * i + 1] as RespValue[];
        expect(text(tracked[0]!)).toBe(`v${i}`);
        expect(text(replies[3 * i + 2]!)).toBe(`ping-${i}`);
      }
    },
  };
}

describe('bridge: flow control', () => {
  it('pauses a session past maxInflight, answers every command in order, and serves others meanwhile', async () => {
    const p = randomPrefix('flood');
    const n = 100;
    await writer.mset(Object.fromEntries(Array.from({ length: n }, (_, i) => [`${p}${i}`, `v${i}`])));
    const [flooder, other] = [await connect(), await connect()];
    const { commands, check } = mixedCommands(p, n);
    proxy.hold('fromServer');
    const replies = flooder.pipeline(commands, 15_000);
    await waitFor(() => bridge.stats().pausedSessions === 1, 'the flooding session to be paused');
    // Valkey's replies are still held, yet another session is answered.
    expect(await other.call('PING')).toEqual(new RespSimple('PONG'));
    expect(flooder.arrivals).toHaveLength(0);
    proxy.release('fromServer');
    check(await replies);
    await waitFor(() => bridge.stats().pausedSessions === 0, 'the session to be resumed');
  });

  it('keeps order across many small messages', async () => {
    const p = randomPrefix('frames');
    const n = 40;
    await writer.mset(Object.fromEntries(Array.from({ length: n }, (_, i) => [`${p}${i}`, `v${i}`])));
    const client = await connect();
    const { commands, check } = mixedCommands(p, n);
    const replies = Promise.all(commands.map((c) => client.call(...c)));
    check(await replies);
  });

  it('answers -TIMEOUT when Valkey does not reply within commandTimeoutMs, and stays usable', async () => {
    const fast = await startReadyBridge(proxy.url, { subscriberUrl: server.url, commandTimeoutMs: 100, valkeyPingMs: 60_000 });
    try {
      const client = await connect(fast);
      proxy.hold('fromServer');
      const reply = client.call('GET', `${randomPrefix('slow')}k`);
      expect(errorText(await reply)).toBe('TIMEOUT valkey did not reply within 100 ms');
      proxy.release('fromServer');
      expect(await client.call('PING')).toEqual(new RespSimple('PONG'));
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await fast.close();
    }
  });
});

describe('bridge: slow readers', () => {
  it('closes a session that stops reading its replies with 1008, and serves others', async () => {
    const strict = await startReadyBridge(server.url, { maxBufferedBytes: 1024 });
    try {
      const k = `${randomPrefix('slow')}big`;
      await writer.set(k, Buffer.alloc(256 * 1024, 0x61));
      const [reader, other] = [await connect(strict), await connect(strict)];
      reader.ws.pause(); // stop reading: replies pile up in the kernel, then in the bridge's socket buffer
      reader.sendRaw(Buffer.concat(Array.from({ length: 200 }, () => encodeCommand(['GET', k]))));
      await waitFor(
        async () => (await strict.metricsText()).includes('bridge_errors_total{kind="slow_reader"} 1'),
        'the bridge to give up on the slow reader',
      );
      expect(await other.call('PING')).toEqual(new RespSimple('PONG'));
      reader.ws.resume();
      expect(await reader.waitClosed(10_000)).toEqual({ code: 1008, reason: 'outbound buffer over maxBufferedBytes' });
      expect(reader.arrivals.length).toBeLessThan(200);
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await strict.close();
    }
  });
});

describe('bridge: heartbeat', () => {
  it('terminates a session that stops answering pings', async () => {
    const beating = await startReadyBridge(server.url, { heartbeatMs: 250 });
    try {
      const silent = await connect(beating);
      silent.ws.pause(); // pings are not read, so never answered
      await waitFor(async () => (await beating.metricsText()).includes('bridge_errors_total{kind="heartbeat"} 1'), 'the heartbeat to give up');
      silent.ws.resume();
      expect((await silent.waitClosed()).code).toBe(1006);
      expect(await (await connect(beating)).call('PING')).toEqual(new RespSimple('PONG'));
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await beating.close();
    }
  });
});

describe('bridge: shutdown', () => {
  it('lets in-flight commands finish, then closes every session with 1001', async () => {
    const closing = await startReadyBridge(proxy.url, { subscriberUrl: server.url });
    const k = `${randomPrefix('shutdown')}k`;
    await writer.set(k, 'answered-before-close');
    const [busy, idle] = [await connect(closing), await connect(closing)];
    proxy.hold('fromServer');
    const reply = busy.call('GET', k);
    await proxy.waitForHeld('fromServer', (t) => t.includes('answered-before-close'));
    const closed = closing.close();
    expect(await idle.waitClosed()).toEqual({ code: 1001, reason: 'bridge shutting down' });
    expect(closing.health()).toMatchObject({ ok: false, shuttingDown: true });
    proxy.release('fromServer');
    expect(text(await reply)).toBe('answered-before-close');
    expect(await busy.waitClosed()).toEqual({ code: 1001, reason: 'bridge shutting down' });
    await closed;
  });
});
