// Benchmark: fairness of the bridge. A bystander's PING and TRACKED.GET round trips, idle and under each attack of
// test/integration/abuse-fairness.test.ts, as p50/p99 and ratios to idle, with the bridge process's RSS.
import { performance } from 'node:perf_hooks';
import { encodeCommand } from '../../shared/resp/index.ts';
import { bridgeMemory } from '../chaos/fuzz-run.ts';
import { startBridgeProcess, TEST_TOKEN, waitFor } from '../support/bridge.ts';
import { RespWsClient } from '../support/resp-ws-client.ts';
import { startValkeyServer } from '../support/valkey-server.ts';
import { ms, ratio, summarize, type BenchContext, type BenchReport, type Benchmark, type Summary } from './stats.ts';

const MiB = 1024 * 1024;

interface Attack {
  readonly name: string;
  start(connect: () => Promise<RespWsClient>): Promise<RespWsClient[]>;
}

const ATTACKS: readonly Attack[] = [
  { name: 'idle', start: async () => [] },
  {
    name: '10 × 8 MiB messages of 65536 GETs',
    async start(connect) {
      const frame = Buffer.concat(Array.from({ length: 65_536 }, () => encodeCommand(['GET', `fair:${'k'.repeat(100)}`])));
      const clients = await Promise.all(Array.from({ length: 10 }, connect));
      for (const c of clients) c.sendRaw(frame);
      return clients;
    },
  },
  {
    name: 'one session, 4 × 65536 PINGs',
    async start(connect) {
      const c = await connect();
      const frame = Buffer.concat(Array.from({ length: 65_536 }, () => encodeCommand(['PING'])));
      for (let i = 0; i < 4; i++) c.sendRaw(frame);
      return [c];
    },
  },
  {
    name: '256 × GET of a 4 MiB value, never read',
    async start(connect) {
      const c = await connect();
      c.ws.pause();
      c.sendRaw(Buffer.concat(Array.from({ length: 256 }, () => encodeCommand(['GET', 'fair:big']))));
      return [c];
    },
  },
];

async function measure(bystander: RespWsClient, rounds: number): Promise<{ ping: Summary; get: Summary; errors: number }> {
  const ping: number[] = [];
  const get: number[] = [];
  let errors = 0;
  for (let i = 0; i < rounds; i++) {
    let t = performance.now();
    await bystander.call('PING').catch(() => errors++);
    ping.push(performance.now() - t);
    t = performance.now();
    const reply = await bystander.call('TRACKED.GET', 'fair:bystander', '10000').catch(() => null);
    if (!Array.isArray(reply)) errors++;
    get.push(performance.now() - t);
  }
  return { ping: summarize(ping), get: summarize(get), errors };
}

export const benchmark: Benchmark = {
  name: 'fairness',
  aliases: ['fairness.ts'],
  title: 'Fairness: a bystander beside one attacking client',
  async run(ctx: BenchContext): Promise<BenchReport> {
    const rounds = ctx.quick ? 20 : 200;
    const server = await startValkeyServer();
    const bridge = await startBridgeProcess({ VALKEY_URL: server.url, BRIDGE_TOKEN: TEST_TOKEN });
    const http = `http://127.0.0.1:${bridge.port}`;
    const connect = () => RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
    const rows: Array<Array<string | number>> = [];
    const figures: Record<string, unknown> = {};
    try {
      await waitFor(async () => (await fetch(`${http}/healthz`)).status === 200, 'the bridge to be ready');
      const writer = await connect();
      await writer.call('SET', 'fair:big', Buffer.alloc(4 * MiB, 0x61));
      await writer.close();
      const bystander = await connect();
      let idle: { ping: Summary; get: Summary } | null = null;
      for (const attack of ATTACKS) {
        ctx.log(`fairness: ${attack.name}`);
        const before = await bridgeMemory(http);
        const attackers = await attack.start(connect);
        const result = await measure(bystander, rounds);
        const after = await bridgeMemory(http);
        await Promise.all(attackers.map((a) => a.close().catch(() => undefined)));
        idle ??= result;
        const flushes = bystander.arrivals.filter((a) => a.kind === 'push' && a.keys === null).length;
        figures[attack.name] = { ...result, rssBeforeMiB: before.rssMiB, rssDuringMiB: after.rssMiB, flushes };
        rows.push([
          attack.name, ms(result.ping.p50), ms(result.ping.p99), ratio(result.ping.p99 / idle.ping.p99),
          ms(result.get.p50), ms(result.get.p99), ratio(result.get.p99 / idle.get.p99), result.errors, flushes, after.rssMiB,
        ]);
      }
      await bystander.close();
    } finally {
      await bridge.stop();
      await server.stop();
    }
    return {
      name: 'fairness',
      title: this.title,
      method: [
        `bystander: ${rounds} sequential PING + TRACKED.GET round trips per case, measured while the attack runs`,
        'bridge as a child process with default budgets; RSS from its /metrics after the case',
      ],
      tables: [{
        title: 'Bystander latency (ms) and ratio of p99 to idle',
        columns: ['case', 'PING p50', 'PING p99', 'PING p99/idle', 'GET p50', 'GET p99', 'GET p99/idle', 'errors', 'flush pushes', 'RSS MiB'],
        rows,
      }],
      targets: [],
      notes: ['Aim: p99 within 3x of idle under every attack; reported, never enforced.'],
      figures,
    };
  },
};
