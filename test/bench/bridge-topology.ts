// Benchmark: invalidation across bridges. Two bridge processes on one Valkey; a session writes a key through
// bridge A, and a reader that tracked it receives the push either from bridge A itself (before A's reply: the
// baseline) or from bridge B, through Valkey's tracking: the window docs/guarantees.md, "Many bridges and regions" names.
import { performance } from 'node:perf_hooks';
import { TEST_TOKEN, randomPrefix } from '../support/bridge.ts';
import { startValkeyServer } from '../support/valkey-server.ts';
import { startBridgeChild, type BridgeChild } from './bridge-process.ts';
import { RespSession } from './resp-session.ts';
import {
  LATENCY_COLUMNS, alternate, bounded, latencyRow, ratio, summarize,
  type BenchContext, type BenchReport, type Benchmark, type Variant,
} from './stats.ts';

const CAP_MS = 600_000;
const WAIT_MS = 10_000;
const SAME = 'reader on the writer\'s bridge (A)';
const OTHER = 'reader on another bridge (B)';

/** The reader tracks `key`, the writer SETs it through its bridge; ms from the writer's reply to the reader's push. */
async function round(writer: RespSession, reader: RespSession, key: string, value: string): Promise<number> {
  const [read] = await bounded(reader.send(RespSession.encode([['TRACKED.GET', key, CAP_MS]]), 1, true), WAIT_MS, 'the tracked read');
  if (!Array.isArray(read) || read[2] !== true) throw new Error(`the tracked read was not cacheable: ${String(read)}`);
  const pushed = new Promise<number>((resolve) => {
    reader.onPush = (keys, at) => {
      if (keys === null || keys.some((k) => Buffer.from(k).toString('latin1') === key)) resolve(at);
    };
  });
  await writer.call('SET', key, value);
  const ackAt = performance.now();
  const at = await bounded(pushed, WAIT_MS, 'the push');
  reader.onPush = null;
  return at - ackAt;
}

async function run(ctx: BenchContext): Promise<BenchReport> {
  const server = await startValkeyServer();
  const bridges: BridgeChild[] = [];
  const sessions: RespSession[] = [];
  try {
    bridges.push(await startBridgeChild(server.url, {}, 'topology-a'), await startBridgeChild(server.url, {}, 'topology-b'));
    const [a, b] = bridges as [BridgeChild, BridgeChild];
    const writer = await RespSession.bridge(a.url, TEST_TOKEN);
    const onA = await RespSession.bridge(a.url, TEST_TOKEN);
    const onB = await RespSession.bridge(b.url, TEST_TOKEN);
    sessions.push(writer, onA, onB);
    const prefix = randomPrefix('topology');
    let n = 0;
    const variant = (name: string, reader: RespSession, key: string): Variant => ({
      name,
      run: async () => [await round(writer, reader, key, `v${n++}`)],
    });
    // Warm both paths (connections, JIT) before measuring.
    for (let i = 0; i < 20; i++) {
      await round(writer, onA, `${prefix}warm`, `w${i}`);
      await round(writer, onB, `${prefix}warm`, `w${i}`);
    }
    const result = await alternate([variant(SAME, onA, `${prefix}same`), variant(OTHER, onB, `${prefix}other`)],
      { rounds: ctx.quick ? 50 : 1_000, budgetMs: ctx.quick ? 5_000 : 30_000 });
    const same = summarize(result.samples.get(SAME)!);
    const other = summarize(result.samples.get(OTHER)!);
    return {
      name: 'topology',
      title: 'Invalidation across bridges',
      method: [
        'Two bridge processes on one valkey-server, all on loopback. Each round one reader session re-reads the key with TRACKED.GET, then a writer ' +
          'session on bridge A SETs it; the time runs from the writer\'s reply to the reader\'s push (performance.now(), one Node process).',
        'The two readers alternate round by round, so machine noise lands in both. Negative: the push arrived before the writer\'s reply (bridge A pushes first).',
      ],
      tables: [{
        title: 'Write through bridge A acknowledged → push received by a reader (ms)',
        columns: [...LATENCY_COLUMNS, 'p50 other − same (ms)'],
        rows: [latencyRow(SAME, same, ''), latencyRow(OTHER, other, (other.p50 - same.p50).toFixed(3))],
      }],
      targets: [],
      figures: { rounds: result.roundsRun, same, other },
      // Latencies near zero (or below) make a p50 ratio meaningless; the tails are where the paths differ.
      notes: [`other / same: p90 ${ratio(other.p90 / same.p90)}, p99 ${ratio(other.p99 / same.p99)}, max ${ratio(other.max / same.max)}`],
    };
  } finally {
    for (const session of sessions) session.close();
    for (const bridge of bridges) await bridge.close();
    await server.stop();
  }
}

export const benchmark: Benchmark = { name: 'topology', aliases: ['bridge-topology'], title: 'Invalidation across bridges', run };
