// Attacks by one client holding a valid token, each beside a bystander session: the bystander must be served with no
// error and no drop-everything push (no new epoch), the attacker bounded (closed or slowed), and the bridge's RSS
// under the bound of docs/bridge.md ("Memory bound"). Bounded in count and time; no wall-clock thresholds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCommand, RespErrorReply, RespSimple } from '../../shared/resp/index.ts';
import { bridgeMemory } from '../chaos/fuzz-run.ts';
import { startHealthyBridgeProcess, TEST_TOKEN, type BridgeProcess } from '../support/bridge.ts';
import { errorText, RespWsClient, text } from '../support/resp-ws-client.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

const MiB = 1024 * 1024;
const FRAME = 8 * MiB;
const OWED = 4 * MiB;
const BUFFERED = 16 * MiB;
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
const epoch = async () => ((await (await fetch(`${http}/healthz`)).json()) as { epoch: number }).epoch;

/** docs/bridge.md "Memory bound": per busy session 2 × maxFrameBytes + maxOwedBytes + maxBufferedBytes, plus 64 MiB. */
const boundMiB = (sessions: number) => (sessions * (2 * FRAME + OWED + BUFFERED)) / MiB + 64;

/** The bystander does `rounds` PING + TRACKED.GET round trips; every one must succeed. */
async function bystanderRounds(rounds: number): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    expect(text(await bystander.call("PING", `b${i}`)), `bystander PING ${i}`).toBe(`b${i}`);
    const reply = await bystander.call('TRACKED.GET', 'fair:bystander', '10000');
    expect(reply instanceof RespErrorReply ? errorText(reply) : Array.isArray(reply), `bystander TRACKED.GET ${i}`).toBe(true);
  }
  expect(bystander.arrivals.filter((a) => a.kind === 'push' && a.keys === null)).toHaveLength(0);
}

describe('abuse: fairness', () => {
  it('serves a bystander while 10 sessions each send one 8 MiB message of 65536 GETs, within the memory bound', async () => {
    const before = await bridgeMemory(http);
    const epochBefore = await epoch();
    const one = encodeCommand(['GET', `fair:${'k'.repeat(100)}`]);
    const frame = Buffer.concat(Array.from({ length: 65_536 }, () => one));
    expect(frame.length).toBeLessThanOrEqual(FRAME);
    const attackers = await Promise.all(Array.from({ length: 10 }, connect));
    for (const attacker of attackers) attacker.sendRaw(frame);
    await bystanderRounds(20);
    const during = await bridgeMemory(http);
    // Fair: the bystander's 40 round trips finished long before the 655,360 GETs ahead of it in bytes.
    const answered = attackers.reduce((n, a) => n + a.arrivals.length, 0);
    expect(answered).toBeLessThan(10 * 65_536);
    expect(during.rssMiB - before.rssMiB, JSON.stringify({ before, during })).toBeLessThan(boundMiB(10));
    expect(await epoch()).toBe(epochBefore);
    await Promise.all(attackers.map((a) => a.close()));
  });

  it('serves a bystander while one session streams messages of 65536 PINGs', async () => {
    const attacker = await connect();
    const frame = Buffer.concat(Array.from({ length: 65_536 }, () => encodeCommand(['PING'])));
    for (let i = 0; i < 4; i++) attacker.sendRaw(frame);
    await bystanderRounds(20);
    // The PINGs never reach Valkey, so without turns the bystander would wait for all 262,144 of them.
    expect(attacker.arrivals.length).toBeLessThan(4 * 65_536);
    await attacker.close();
  });

  it('keeps the shared connection live when a session asks for 256 big values and never reads', async () => {
    const epochBefore = await epoch();
    const writer = await connect();
    expect(await writer.call('SET', 'fair:big', Buffer.alloc(4 * MiB, 0x61))).toEqual(new RespSimple('OK'));
    await writer.close();
    const before = await bridgeMemory(http);
    const attacker = await connect();
    attacker.ws.pause();
    attacker.sendRaw(Buffer.concat(Array.from({ length: 256 }, () => encodeCommand(['GET', 'fair:big']))));
    await bystanderRounds(20);
    const during = await bridgeMemory(http);
    expect(during.rssMiB - before.rssMiB, JSON.stringify({ before, during })).toBeLessThan(boundMiB(1) + 16 * 4);
    attacker.ws.resume();
    // The attacker is slowed (its window shrinks to maxOwedBytes / 4 MiB = 1) or closed when its buffer overflows.
    const outcome = await Promise.race([attacker.waitClosed(20_000), attacker.nextReply('a big value', 20_000).then(() => 'read')]);
    expect(outcome === 'read' || (outcome as { code: number }).code === 1008).toBe(true);
    await attacker.close();
    expect(await epoch()).toBe(epochBefore);
    await bystanderRounds(2);
  });
});
