// `npx tsx test/bench/profile-miss.ts [gets]`: the miss bench's library cold get (one at a time, a fresh key each)
// with workerd's isolate and the bench bridge both under the CPU profiler, then where one cold get's time goes:
// the isolate's JavaScript (caller and coordinator share it), the bridge's, Valkey's own (INFO commandstats), and
// the rest (sockets, the kernel, workerd's C++ event loop). Bounded by count and time; everything is loopback.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Redis } from 'iovalkey';
import { randomPrefix } from '../support/bridge.ts';
import { startValkeyServer } from '../support/valkey-server.ts';
import { PROFILE_DIR, latestBridgeProfile, startBridgeChild } from './bridge-process.ts';
import { cpuDuring, descendantsNamed } from './process-cpu.ts';
import { isIdle, summarizeProfile, type CpuProfile } from './profile-summary.ts';
import { profileIsolate } from './workerd-profiler.ts';
import { runLoop, startBenchWorkers, type BenchWorkers } from './workerd.ts';

const gets = Math.max(100, Math.min(20_000, Number(process.argv[2] ?? 3_000)));
const TTL_MS = 60_000;
const MAX_MS = 60_000;
const label = 'miss-profile';
/** Cold gets before the measured loops, so that the coordinator's socket, marker and client id exist. */
const WARM_GETS = 200;
process.env.BENCH_PROFILE = '1';

/** Valkey's own time in commands so far (µs), summed over INFO commandstats. */
async function valkeyUsec(redis: Redis): Promise<number> {
  const info = await redis.info('commandstats');
  return [...info.matchAll(/usec=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
}

const server = await startValkeyServer();
const bridge = await startBridgeChild(server.url, {}, label, true);
const redis = new Redis({ host: server.host, port: server.port, lazyConnect: true });
let workers: BenchWorkers | undefined;
let wallUs = 0;
let profiledUs = 0;
let valkeyUsPerGet = 0;
const cpuUsPerGet = new Map<string, number>();
let framesOutPerGet = 0;
let invalidationsPerGet = 0;
let isolateProfile: CpuProfile | undefined;
try {
  await redis.connect();
  workers = await startBenchWorkers(bridge.url, 'http://127.0.0.1:9/unused', [{ name: 'main' }], { inspect: true });
  const w = workers;
  const prefix = randomPrefix('pmiss');
  const loop = (tag: string, n: number) => runLoop(w, 'main', {
    op: 'get', loader: true, keys: Array.from({ length: n }, (_, i) => `${prefix}${tag}:${i}`), concurrency: 1, ttlMs: TTL_MS,
    placement: { kind: 'coord', name: 'profile-miss' }, maxMs: MAX_MS, batchSize: 25,
  });
  await loop('warm', WARM_GETS);
  await bridge.sends();
  const statsBefore = await bridge.stats();
  const before = await valkeyUsec(redis);
  const pids = new Map([['workerd', descendantsNamed('workerd')], ['bridge', [bridge.pid]], ['valkey-server', [server.pid]]]);
  const { result: plain, cpuMs } = await cpuDuring(pids, () => loop('plain', gets));
  valkeyUsPerGet = (await valkeyUsec(redis) - before) / plain.reply.calls;
  wallUs = plain.perCallMs * 1000;
  framesOutPerGet = (await bridge.sends()).count / plain.reply.calls;
  invalidationsPerGet = ((await bridge.stats()).invalidationsReceived - statsBefore.invalidationsReceived) / plain.reply.calls;
  for (const [name, msUsed] of cpuMs) cpuUsPerGet.set(name, (msUsed * 1000) / plain.reply.calls);
  const { result, profile } = await profileIsolate(await w.inspectorUrl('main'), () => loop('profiled', gets));
  profiledUs = result.perCallMs * 1000;
  mkdirSync(PROFILE_DIR, { recursive: true });
  const file = `${PROFILE_DIR}workerd-${label}-${Date.now()}.cpuprofile`;
  writeFileSync(file, JSON.stringify(profile));
  isolateProfile = profile;
  process.stdout.write(`workerd profile: ${file}\n`);
} finally {
  redis.disconnect();
  await workers?.dispose().catch(() => undefined);
  await bridge.close();
  await server.stop();
}
const bridgeFile = latestBridgeProfile(label);
const bridgeSummary = summarizeProfile(JSON.parse(readFileSync(bridgeFile, 'utf8')) as CpuProfile);
process.stdout.write(`bridge profile: ${bridgeFile}\n\n`);

// workerd's sampler skips the time its isolate is not entered (long gaps between samples), so the isolate's shares
// are of samples counted, not of time summed: the CPU figures give the time. Its "(program)" samples are not JS.
const NOT_JS = /^\((idle|program)\)$/;
const us = (v: number) => `${v.toFixed(0).padStart(5)} µs`;
const cpuSum = [...cpuUsPerGet].filter(([name]) => name !== 'load generator').reduce((a, [, v]) => a + v, 0);
process.stdout.write([
  `${gets} cold gets, one at a time (fresh keys, a loader that returns at once)`,
  `wall per cold get      ${us(wallUs)}   (with the isolate under the profiler: ${us(profiledUs)})`,
  ...[...cpuUsPerGet].map(([name, v]) => `CPU ${name.padEnd(18)} ${us(v)}   per get (/proc, 10 ms ticks)`),
  `  of which Valkey's commands ${us(valkeyUsPerGet)}   (INFO commandstats usec)`,
  `wall − CPU of workerd, bridge and Valkey  ${us(wallUs - cpuSum)}   (wake-ups and waits between them; 2 cores shared)`,
  `per get: ${framesOutPerGet.toFixed(2)} frames from the bridge to the coordinator, ${invalidationsPerGet.toFixed(2)} invalidations from Valkey`,
  '',
].join('\n'));
/** Self samples per function, as shares of the JavaScript samples. */
function sampleShares(profile: CpuProfile, top: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const counts = new Map<string, number>();
  let js = 0;
  for (const id of profile.samples) {
    const frame = byId.get(id)!.callFrame;
    const name = frame.functionName || '(anonymous)';
    if (NOT_JS.test(name)) continue;
    js++;
    const key = `${name} ${frame.url.split('/').at(-1) ?? ''}:${frame.lineNumber + 1}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([name, n]) => `${((n / js) * 100).toFixed(1).padStart(5)} %  ${name}`).join('\n') + `\n(${js} JavaScript samples of ${profile.samples.length})\n`;
}
process.stdout.write(`isolate JavaScript, self samples by function:\n${sampleShares(isolateProfile!, 25)}\n`);
process.stdout.write(`bridge, self time by file:\n`);
// The bridge ran the warm-up, the plain and the profiled loops (and started up): µs per get over all of them.
const bridgeGets = WARM_GETS + 2 * gets;
for (const [name, v] of bridgeSummary.files.filter(([n]) => !isIdle(n)).slice(0, 10)) {
  process.stdout.write(`${((v / bridgeSummary.busy) * 100).toFixed(1).padStart(5)} %  ${((v * 1000) / bridgeGets).toFixed(1).padStart(6)} µs/get  ${name}\n`);
}
