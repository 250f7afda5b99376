// A bounded fuzz run against a bridge *process* (so a crash is seen as an exit, not as a dead test runner): several
// fuzzing sessions send RespFuzzer frames, each followed by a PING sentinel, reconnecting whenever the bridge closes
// them; a well-behaved session beside them checks every reply it gets. Memory is read from the bridge's /metrics.
import { encodeCommand } from '../../shared/resp/index.ts';
import { RespWsClient, describeValue, text, trackedGet } from '../support/resp-ws-client.ts';
import { seededRandom } from './random.ts';
import { RespFuzzer } from './resp-fuzz.ts';

export interface FuzzConfig {
  /** The bridge's `ws://…/resp` and `http://host:port`. */
  readonly url: string;
  readonly httpBase: string;
  readonly fuzzToken: string;
  readonly goodToken: string;
  readonly maxFrameBytes: number;
  readonly frames: number;
  readonly durationMs: number;
  readonly sessions: number;
  readonly seed: number;
}

export interface FuzzReport {
  readonly frames: number;
  readonly byKind: Record<string, number>;
  readonly closes: Record<string, number>;
  readonly goodCommands: number;
  readonly goodErrors: string[];
  readonly heapBeforeMiB: number;
  readonly heapAfterMiB: number;
  readonly rssBeforeMiB: number;
  readonly rssAfterMiB: number;
  readonly sessionsAfter: number;
}

export async function bridgeMemory(httpBase: string): Promise<{ heapMiB: number; rssMiB: number; sessions: number }> {
  const metrics = await (await fetch(`${httpBase}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name} ([0-9.e+]+)`, 'm').exec(metrics)?.[1] ?? NaN);
  return {
    heapMiB: Math.round(read('nodejs_heap_size_used_bytes') / 1048576),
    rssMiB: Math.round(read('process_resident_memory_bytes') / 1048576),
    sessions: read('bridge_sessions'),
  };
}

/** Sends `frame` then a sentinel PING; resolves once the sentinel is answered or the session was closed. */
async function exchange(client: RespWsClient, frame: Uint8Array, sentinel: string): Promise<'answered' | 'closed'> {
  client.sendRaw(frame);
  client.sendRaw(encodeCommand(['PING', sentinel]));
  const gone = Symbol('gone');
  for (;;) {
    const reply = await Promise.race([
      client.nextReply('a reply after a fuzz frame', 10_000).catch(() => gone),
      client.closed.then(() => gone),
    ]);
    if (reply === gone) {
      if (client.ws.readyState !== client.ws.OPEN) return 'closed';
      throw new Error(`the bridge neither answered the sentinel nor closed the session within 10 s`);
    }
    if (reply instanceof Uint8Array && text(reply) === sentinel) return 'answered';
  }
}

export async function runFuzz(config: FuzzConfig): Promise<FuzzReport> {
  const before = await bridgeMemory(config.httpBase);
  const endAt = performance.now() + config.durationMs;
  const byKind: Record<string, number> = {};
  const closes: Record<string, number> = {};
  let sent = 0;
  let fuzzing = true;

  const good = await RespWsClient.connect(config.url, { token: config.goodToken });
  const goodErrors: string[] = [];
  let goodCommands = 0;
  const goodLoop = (async () => {
    for (let i = 0; fuzzing && i < 1_000_000; i++) {
      const key = `good:${config.seed}:${i % 16}`;
      try {
        const set = await good.call('SET', key, `value-${i}`);
        const got = await good.call('GET', key);
        const tracked = await trackedGet(good, key, 60_000);
        goodCommands += 3;
        if (text(got) !== `value-${i}` || tracked.value !== `value-${i}`) goodErrors.push(`${key}: ${describeValue(set)} ${describeValue(got)} ${tracked.value}`);
      } catch (error) {
        goodErrors.push((error as Error).message);
        return;
      }
    }
  })();

  const fuzzer = async (lane: number) => {
    const generator = new RespFuzzer(seededRandom(config.seed * 31 + lane), 'fuzz:', config.maxFrameBytes);
    let client: RespWsClient | null = null;
    while (sent < config.frames && performance.now() < endAt) {
      client ??= await RespWsClient.connect(config.url, { token: config.fuzzToken });
      const { kind, bytes } = generator.frame();
      sent++;
      byKind[kind] = (byKind[kind] ?? 0) + 1;
      if ((await exchange(client, bytes, `sentinel-${lane}-${sent}`)) === 'closed') {
        const { code } = await client.closed;
        closes[code] = (closes[code] ?? 0) + 1;
        client = null;
      }
    }
    await client?.close();
  };
  try {
    await Promise.all(Array.from({ length: config.sessions }, (_, lane) => fuzzer(lane)));
  } finally {
    fuzzing = false;
    await goodLoop;
    await good.close();
  }
  const after = await bridgeMemory(config.httpBase);
  return {
    frames: sent, byKind, closes, goodCommands, goodErrors,
    heapBeforeMiB: before.heapMiB, heapAfterMiB: after.heapMiB, rssBeforeMiB: before.rssMiB, rssAfterMiB: after.rssMiB,
    sessionsAfter: after.sessions,
  };
}
