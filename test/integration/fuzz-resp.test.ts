// Fuzzing the bridge's input: random and mutated RESP (valid prefixes, broken lengths, deep nesting, huge declared
// sizes, RESP3 types, oversize frames) from several sessions against a bridge *process*, in a bounded loop. The
// bridge must never crash, must answer or close every fuzzing session (never hang it), keep its heap bounded, and a
// well-behaved session running beside the fuzzer must see no error and only correct values.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFuzz } from '../chaos/fuzz-run.ts';
import { startBridgeProcess, TEST_TOKEN, type BridgeProcess } from '../support/bridge.ts';
import { startValkeyServer, type ValkeyServer } from '../support/valkey-server.ts';

const FUZZ_TOKEN = 'fuzz-token-0123456789abcdef';
const MAX_FRAME_BYTES = 64 * 1024;
let server: ValkeyServer;
let bridge: BridgeProcess;

beforeAll(async () => {
  server = await startValkeyServer();
  bridge = await startBridgeProcess({
    VALKEY_URL: server.url,
    BRIDGE_TOKENS: JSON.stringify([{ token: TEST_TOKEN }, { token: FUZZ_TOKEN, prefix: 'fuzz:' }]),
    BRIDGE_MAX_FRAME_BYTES: String(MAX_FRAME_BYTES),
  });
});

afterAll(async () => {
  await bridge?.stop();
  await server?.stop();
});

describe('fuzz: the bridge survives hostile RESP', () => {
  it('never crashes, answers or closes every session, keeps memory bounded, and serves a bystander correctly', async () => {
    const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const report = await runFuzz({
      url: bridge.url, httpBase: `http://127.0.0.1:${bridge.port}`, fuzzToken: FUZZ_TOKEN, goodToken: TEST_TOKEN,
      maxFrameBytes: MAX_FRAME_BYTES, frames: 1_500, durationMs: 20_000, sessions: 4, seed,
    });
    const context = `seed ${seed}: ${JSON.stringify(report)}`;
    expect(bridge.child.exitCode, context).toBeNull();
    expect(report.frames, context).toBeGreaterThan(200);
    expect(report.goodErrors, context).toEqual([]);
    expect(report.goodCommands, context).toBeGreaterThan(0);
    // Only the documented close codes: malformed (1002), too big (1009).
    expect(Object.keys(report.closes).filter((code) => !['1002', '1009'].includes(code)), context).toEqual([]);
    expect(report.heapAfterMiB - report.heapBeforeMiB, context).toBeLessThan(64);
    expect(report.sessionsAfter, context).toBe(0);
    expect((await fetch(`http://127.0.0.1:${bridge.port}/healthz`)).status).toBe(200);
  });
});
