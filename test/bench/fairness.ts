// Benchmark: fairness of the bridge. A bystander's PING and TRACKED.GET round trips idle and under each attack of
// test/integration/abuse-fairness.test.ts, as p50/p99 and ratios to an idle run taken just before each attack (the
// machine is shared: one idle run for all would compare against whatever load it happened to meet), with bridge RSS.
import { performance } from 'node:perf_hooks';
import { BRIDGE_DEFAULTS } from '../../bridge/options.ts';
import { encodeCommand } from '../../shared/resp/index.ts';
import { bridgeMemory } from '../chaos/fuzz-run.ts';
import { startBridgeProcess, TEST_TOKEN, waitFor } from '../support/bridge.ts';
import { RespWsClient } from '../support/resp-ws-client.ts';
import { startValkeyServer } from '../support/valkey-server.ts';
import { ms, ratio, summarize, type BenchContext, type BenchReport, type Benchmark, type Summary } from './stats.ts';

const MiB = 1024 * 1024;

/** An attacking client; its replies are counted, never decoded, so this process measures the bridge, not itself. */
interface Attacker {
  readonly client: RespWsClient;
  received: number;
}

interface Attack {
  readonly name: string;
  /** Reply bytes the attack would receive in full (null: it never reads); tells whether it outlasted the measurement. */
  readonly expectedBytes: number | null;
  start(connect: () => Promise<Attacker>, maxFrameBytes: number): Promise<Attacker[]>;
}

/** `commands` copies of `command` as messages of at most `maxFrameBytes` each. */
function messages(command: Uint8Array, commands: number, maxFrameBytes: number): Buffer[] {
  const perMessage = Math.min(commands, Math.floor(maxFrameBytes / command.length));
  const out: Buffer[] = [];
  for (let left = commands; left > 0; left -= perMessage) {
    out.push(Buffer.concat(Array.from({ length: Math.min(perMessage, left) }, () => command)));
  }
  return out;
}

const GET_FLOOD = 65_536;
const PING_FLOOD = 16 * 65_536;

const ATTACKS: readonly Attack[] = [
  {
    name: `10 sessions × ${GET_FLOOD} GETs (8 MiB each) in messages at the frame limit`,
    expectedBytes: 10 * GET_FLOOD * '$-1\r\n'.length,
    async start(connect, maxFrameBytes) {
      const frames = messages(encodeCommand(['GET', `fair:${'k'.repeat(100)}`]), GET_FLOOD, maxFrameBytes);
      const attackers = await Promise.all(Array.from({ length: 10 }, connect));
      for (const a of attackers) for (const frame of frames) a.client.sendRaw(frame);
      return attackers;
    },
  },
  {
    name: `one session, ${PING_FLOOD} PINGs in messages of 65536`,
    expectedBytes: PING_FLOOD * '+PONG\r\n'.length,
    async start(connect, maxFrameBytes) {
      const a = await connect();
      for (const frame of messages(encodeCommand(['PING']), PING_FLOOD, Math.min(maxFrameBytes, 65_536 * 14))) a.client.sendRaw(frame);
      return [a];
    },
  },
  {
    name: '256 × GET of a big value (4 MiB, or half the frame limit), never read',
    expectedBytes: null,
    async start(connect) {
      const a = await connect();
      a.client.ws.pause();
      a.client.sendRaw(Buffer.concat(Array.from({ length: 256 }, () => encodeCommand(['GET', 'fair:big']))));
      return [a];
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
    const rounds = ctx.quick ? 20 : 400;
    const server = await startValkeyServer();
    // FAIR_ENV: JSON of BRIDGE_* settings to try (e.g. '{"BRIDGE_MAX_INFLIGHT_TOTAL":"256"}'); default: the defaults.
    const tuning = JSON.parse(process.env.FAIR_ENV ?? '{}') as Record<string, string>;
    const maxFrameBytes = Number(tuning.BRIDGE_MAX_FRAME_BYTES ?? BRIDGE_DEFAULTS.maxFrameBytes);
    const bridge = await startBridgeProcess({ VALKEY_URL: server.url, BRIDGE_TOKEN: TEST_TOKEN, ...tuning });
    const http = `http://127.0.0.1:${bridge.port}`;
    const connect = async (): Promise<Attacker> => {
      const attacker = { client: await RespWsClient.connect(bridge.url, { token: TEST_TOKEN }), received: 0 };
      attacker.client.ws.removeAllListeners('message');
      attacker.client.ws.on('message', (data: Buffer) => { attacker.received += data.length; });
      return attacker;
    };
    const rows: Array<Array<string | number>> = [];
    const figures: Record<string, unknown> = { tuning, maxFrameBytes };
    try {
      await waitFor(async () => (await fetch(`${http}/healthz`)).status === 200, 'the bridge to be ready');
      const writer = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
      await writer.call('SET', 'fair:big', Buffer.alloc(Math.min(4 * MiB, maxFrameBytes / 2), 0x61));
      await writer.close();
      const bystander = await RespWsClient.connect(bridge.url, { token: TEST_TOKEN });
      for (const attack of ATTACKS) {
        ctx.log(`fairness: idle, then ${attack.name}`);
        const idle = await measure(bystander, rounds);
        const before = await bridgeMemory(http);
        const attackers = await attack.start(connect, maxFrameBytes);
        const result = await measure(bystander, rounds);
        const received = attackers.reduce((n, a) => n + a.received, 0);
        const after = await bridgeMemory(http);
        await Promise.all(attackers.map((a) => a.client.close().catch(() => undefined)));
        const flushes = bystander.arrivals.filter((a) => a.kind === 'push' && a.keys === null).length;
        const done = attack.expectedBytes === null ? '–' : `${Math.round((100 * received) / attack.expectedBytes)}%`;
        figures[attack.name] = { idle, ...result, attackDone: done, rssBeforeMiB: before.rssMiB, rssDuringMiB: after.rssMiB, flushes };
        rows.push([
          attack.name, ms(idle.ping.p50), ms(result.ping.p50), ms(idle.ping.p99), ms(result.ping.p99),
          ratio(result.ping.p50 / idle.ping.p50), ratio(result.ping.p99 / idle.ping.p99),
          ms(idle.get.p50), ms(result.get.p50), ms(idle.get.p99), ms(result.get.p99),
          ratio(result.get.p50 / idle.get.p50), ratio(result.get.p99 / idle.get.p99),
          result.errors, flushes, done, after.rssMiB,
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
        `bystander: ${rounds} sequential PING + TRACKED.GET round trips idle, then as many while the attack runs`,
        'bridge as a child process (defaults unless FAIR_ENV); RSS from its /metrics after the case; attackers count their reply bytes undecoded',
        '"attack done" is the share of the attack\'s replies received when the bystander finished: under 100% means it ran throughout',
      ],
      tables: [{
        title: 'Bystander latency (ms): idle → under attack, and the ratios',
        columns: [
          'case', 'PING p50 idle', 'PING p50', 'PING p99 idle', 'PING p99', 'PING p50×', 'PING p99×',
          'GET p50 idle', 'GET p50', 'GET p99 idle', 'GET p99', 'GET p50×', 'GET p99×', 'errors', 'flush pushes', 'attack done', 'RSS MiB',
        ],
        rows,
      }],
      targets: [],
      notes: ['Aim: p99 within 3x of idle under every attack; reported, never enforced.'],
      figures,
    };
  },
};
