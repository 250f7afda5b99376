// Memory under two attacks of issue 11, each beside a bystander session, asserted against the formulas of
// docs/bridge.md ("Memory bound"), never against time: 200 sessions holding messages open as one-byte WebSocket
// fragments (maxFragmentsPerMessage), and 200 TRACKED.GETs of distinct 1 MiB missing keys (maxKeyBytes).
import { Redis } from 'iovalkey';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BRIDGE_DEFAULTS } from '../../bridge/options.ts';
import { encodeCommand, RespErrorReply } from '../../shared/resp/index.ts';
import { bridgeMemory } from '../chaos/fuzz-run.ts';
import { startHealthyBridgeProcess, TEST_TOKEN, type BridgeProcess } from '../support/bridge.ts';
import { errorText, RespWsClient, text } from '../support/resp-ws-client.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const SESSIONS = 200;
const d = BRIDGE_DEFAULTS;
let server: ValkeyServer;
let bridge: BridgeProcess;
let http: string;
let bystander: RespWsClient;

beforeAll(async () => {
  server = await startValkeyServer();
  ({ bridge, http } = await startHealthyBridgeProcess({ VALKEY_URL: server.url, BRIDGE_TOKEN: TEST_TOKEN }));
  bystander = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
});

afterAll(async () => {
  await bystander?.close();
  await bridge?.stop();
  await server?.stop();
});

const connect = () => RespWsClient.connect(bridge.url, { token: TEST_TOKEN });

/** docs/bridge.md: a session holding a message open in fragments costs at most 64 KiB + maxFragmentsPerMessage × 1 KiB. */
const fragmentBoundMiB = (sessions: number) => (sessions * (64 * KiB + d.maxFragmentsPerMessage * KiB)) / MiB + 64;
/** docs/bridge.md: per busy session 2 × maxFrameBytes + maxOwedBytes + maxBufferedBytes, plus 64 MiB. */
const busyBoundMiB = (sessions: number) => (sessions * (2 * d.maxFrameBytes + d.maxOwedBytes + d.maxBufferedBytes)) / MiB + 64;

/**
 * `count` one-byte fragments of one binary message that never ends, as masked client frames (mask key 0, so the
 * payload stays as written), written straight to the socket the way an attacker would, not through ws.
 */
function openFragments(count: number): Buffer {
  const frames = Buffer.alloc(count * 7);
  for (let i = 0; i < count; i++) frames.set([i === 0 ? 0x02 : 0x00, 0x81, 0, 0, 0, 0, 0x2a], i * 7);
  return frames;
}

function writeRaw(client: RespWsClient, bytes: Buffer): void {
  (client.ws as unknown as { _socket: { write(b: Buffer): void } })._socket.write(bytes);
}

/** The bystander's round trips; every one must succeed, and no drop-everything push may arrive. */
async function bystanderRounds(rounds: number): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    expect(text(await bystander.call('PING', `m${i}`)), `bystander PING ${i}`).toBe(`m${i}`);
    const reply = await bystander.call('TRACKED.GET', 'mem:bystander', '10000');
    expect(reply instanceof RespErrorReply ? errorText(reply) : Array.isArray(reply), `bystander TRACKED.GET ${i}`).toBe(true);
  }
  expect(bystander.arrivals.filter((a) => a.kind === 'push' && a.keys === null)).toHaveLength(0);
}

describe('abuse: memory', () => {
  it(`holds ${SESSIONS} sessions with messages open in one-byte fragments under the bound, and closes those past the limit with 1008`, async () => {
    const before = await bridgeMemory(http);
    // Half stay just under the limit (their messages stay open), half try the 16,000 fragments of issue 11.
    const holders = await Promise.all(Array.from({ length: SESSIONS / 2 }, connect));
    const floods = await Promise.all(Array.from({ length: SESSIONS / 2 }, connect));
    for (const h of holders) writeRaw(h, openFragments(d.maxFragmentsPerMessage - 1));
    for (const f of floods) writeRaw(f, openFragments(16_000));
    const closes = await Promise.all(floods.map((f) => f.waitClosed(20_000)));
    expect(closes.every((c) => c.code === 1008), JSON.stringify(closes.slice(0, 3))).toBe(true);
    await bystanderRounds(10);
    const during = await bridgeMemory(http);
    expect(during.sessions).toBe(SESSIONS / 2 + 1);
    expect(during.rssMiB - before.rssMiB, JSON.stringify({ before, during })).toBeLessThan(fragmentBoundMiB(SESSIONS / 2));
    expect(during.heapMiB - before.heapMiB, JSON.stringify({ before, during })).toBeLessThan(fragmentBoundMiB(SESSIONS / 2));
    await Promise.all(holders.map((h) => h.close().catch(() => undefined)));
  });

  it(`refuses ${SESSIONS} TRACKED.GETs of distinct 1 MiB missing keys before Valkey sees them, under the bound`, async () => {
    const admin = new Redis({ host: server.host, port: server.port, lazyConnect: true });
    await admin.connect();
    const trackedKeys = async () => Number(/tracking_total_keys:(\d+)/.exec(await admin.info('stats'))?.[1]);
    try {
      await bystanderRounds(1);
      const keysBefore = await trackedKeys();
      const before = await bridgeMemory(http);
      const attacker = await connect();
      // Pipelined in messages of 4 keys (4 MiB each), under maxFrameBytes.
      for (let i = 0; i < SESSIONS; i += 4) {
        attacker.sendRaw(Buffer.concat([0, 1, 2, 3].map((j) =>
          encodeCommand(['TRACKED.GET', `mem:${i + j}:`.padEnd(MiB, 'k'), '10000']))));
      }
      await bystanderRounds(5);
      const replies = await Promise.all(Array.from({ length: SESSIONS }, (_, i) => attacker.nextReply(`refusal ${i}`, 20_000)));
      expect(new Set(replies.map(errorText))).toEqual(new Set([`ERR key longer than this bridge's limit of ${d.maxKeyBytes} bytes`]));
      const during = await bridgeMemory(http);
      expect(during.rssMiB - before.rssMiB, JSON.stringify({ before, during })).toBeLessThan(busyBoundMiB(1));
      // Valkey never saw a long key, so its tracking table did not grow (issue 11: 204 MiB in Redis).
      expect(await trackedKeys()).toBeLessThanOrEqual(keysBefore);
      await bystanderRounds(2);
      await attacker.close();
    } finally {
      admin.disconnect();
    }
  });
});
