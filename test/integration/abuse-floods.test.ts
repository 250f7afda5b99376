// Floods against a bridge *process* (memory read from its /metrics): giant pipelines are refused past
// maxCommandsPerFrame before they are decoded into objects, or answered in order below it; floods of tiny frames
// are answered in order without starving a bystander; thousands of idle sessions cost a bounded amount each; slow
// readers that never drain are closed with 1008 at maxBufferedBytes. Memory stays bounded throughout.
import { Redis } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCommand, RespSimple } from '../../shared/resp/index.ts';
import { bridgeMemory } from '../chaos/fuzz-run.ts';
import { startBridgeProcess, TEST_TOKEN, waitFor, type BridgeProcess } from '../support/bridge.ts';
import { errorText, RespWsClient, text } from '../support/resp-ws-client.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

const MAX_BUFFERED_BYTES = 1024 * 1024;
let server: ValkeyServer;
let bridge: BridgeProcess;
let http: string;
let bystander: RespWsClient;

beforeAll(async () => {
  server = await startValkeyServer();
  bridge = await startBridgeProcess({ VALKEY_URL: server.url, BRIDGE_TOKEN: TEST_TOKEN, BRIDGE_MAX_BUFFERED_BYTES: String(MAX_BUFFERED_BYTES), BRIDGE_MAX_SESSIONS_PER_TOKEN: '5000' });
  http = `http://127.0.0.1:${bridge.port}`;
  bystander = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
});

afterAll(async () => {
  await bystander?.close();
  await bridge?.stop();
  await server?.stop();
});

async function connect(): Promise<RespWsClient> {
  return RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
}

async function expectBystanderServed(): Promise<void> {
  expect(text(await bystander.call('PING', 'still served'))).toBe('still served');
}

describe('abuse: giant pipelines', () => {
  it('refuses a message of more commands than maxCommandsPerFrame with 1009 once the limit is reached, decoding it a slice at a time', async () => {
    const before = await bridgeMemory(http);
    // 8 MiB of empty commands: ~840k commands; decoded whole this took the bridge from ~95 to ~600 MiB RSS.
    const one = Buffer.from('*1\r\n$0\r\n\r\n');
    const frame = Buffer.concat(Array.from({ length: Math.floor((8 * 1024 * 1024 - 64) / one.length) }, () => one));
    const clients = await Promise.all(Array.from({ length: 4 }, connect));
    for (const client of clients) client.sendRaw(frame);
    for (const client of clients) {
      // Decoded lazily: the first 65536 commands are answered (each refused: an empty name), then the 1009.
      expect(await client.waitClosed(20_000)).toEqual({ code: 1009, reason: 'malformed RESP' });
      const replies = client.arrivals.map((a) => (a.kind === 'reply' ? errorText(a.value) : 'push'));
      expect(replies.at(-1)).toBe('ERR protocol: more than 65536 commands in one message');
      expect(replies.slice(0, -1).every((r) => r === "ERR command '' is not allowed by this bridge")).toBe(true);
      expect(replies.length).toBeLessThanOrEqual(65_537);
    }
    const after = await bridgeMemory(http);
    // Per session at most: the frame twice (socket data, joined message) + 65536 decoded commands (~0.5 KiB each).
    const boundMiB = 4 * (2 * 8 + 32) + 32;
    expect(after.rssMiB - before.rssMiB, JSON.stringify({ before, after })).toBeLessThan(boundMiB);
    await expectBystanderServed();
  });

  it('answers a pipeline just under the limit, every reply in order', async () => {
    const client = await connect();
    const n = 60_000;
    client.sendRaw(Buffer.concat(Array.from({ length: n }, (_, i) => encodeCommand(['PING', String(i)]))));
    for (let i = 0; i < n; i++) {
      const reply = await client.nextReply(`reply ${i}`, 20_000);
      if (text(reply) !== String(i)) throw new Error(`reply ${i} was ${text(reply)}`);
    }
    await client.close();
    await expectBystanderServed();
  });
});

describe('abuse: frame floods', () => {
  it('answers 20000 tiny frames in order and keeps serving a bystander meanwhile', async () => {
    const client = await connect();
    const n = 20_000;
    for (let i = 0; i < n; i++) client.sendRaw(encodeCommand(['PING', String(i)]));
    await expectBystanderServed();
    for (let i = 0; i < n; i++) {
      const reply = await client.nextReply(`reply ${i}`, 20_000);
      if (text(reply) !== String(i)) throw new Error(`reply ${i} was ${text(reply)}`);
    }
    await client.close();
  });
});

describe('abuse: idle sessions', () => {
  it('holds 2000 idle sessions at a bounded cost each, serves a new one, and forgets them all on close', async () => {
    const before = await bridgeMemory(http);
    const idle: RespWsClient[] = [];
    try {
      for (let batch = 0; batch < 20; batch++) idle.push(...(await Promise.all(Array.from({ length: 100 }, connect))));
      const during = await bridgeMemory(http);
      expect(during.sessions).toBe(2001);
      const perSessionKiB = ((during.rssMiB - before.rssMiB) * 1024) / 2000;
      expect(perSessionKiB, JSON.stringify({ before, during })).toBeLessThan(64);
      const fresh = await connect();
      expect(await fresh.call('PING')).toEqual(new RespSimple('PONG'));
      await fresh.close();
    } finally {
      await Promise.all(idle.map((c) => c.close()));
    }
    await waitFor(async () => (await bridgeMemory(http)).sessions === 1, 'every idle session to be forgotten');
  });
});

describe('abuse: slow readers', () => {
  it('closes readers that never drain with 1008 at maxBufferedBytes, and memory stays bounded', async () => {
    const writer = new Redis({ host: server.host, port: server.port, lazyConnect: true, maxRetriesPerRequest: 0 });
    await writer.connect();
    const key = 'slow-reader:big';
    await writer.set(key, Buffer.alloc(256 * 1024, 0x61));
    writer.disconnect();
    const before = await bridgeMemory(http);
    const readers = await Promise.all(Array.from({ length: 10 }, connect));
    for (const reader of readers) {
      reader.ws.pause(); // never read: replies pile up in the kernel, then in the bridge
      reader.sendRaw(Buffer.concat(Array.from({ length: 200 }, () => encodeCommand(['GET', key]))));
    }
    await waitFor(async () => /bridge_errors_total\{kind="slow_reader"\} 10$/m.test(await (await fetch(`${http}/metrics`)).text()),
      'the bridge to give up on every slow reader', 20_000);
    const during = await bridgeMemory(http);
    // 10 readers × (maxBufferedBytes + one reply frame) at most, plus noise.
    expect(during.rssMiB - before.rssMiB, JSON.stringify({ before, during })).toBeLessThan(10 * 8 + 64);
    await expectBystanderServed();
    for (const reader of readers) {
      reader.ws.resume();
      expect(await reader.waitClosed(10_000)).toEqual({ code: 1008, reason: 'outbound buffer over maxBufferedBytes' });
    }
  });
});
